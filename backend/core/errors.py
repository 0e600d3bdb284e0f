"""Domain errors: one envelope (``code``, ``message``, ``detail``) for every failure.

Services raise these; the API layer renders them. ``message`` is patient- or
staff-facing zh-hans text, ``code`` is a stable machine-readable identifier.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status = 400
    code = "bad_request"
    default_message = _("请求无法处理")

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 detail: Any = None, status: int | None = None) -> None:
        self.message = str(message or self.default_message)
        if code:
            self.code = code
        if status:
            self.status = status
        self.detail = detail if detail is not None else {}
        super().__init__(self.message)


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    default_message = _("提交的信息有误")


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"
    default_message = _("请先登录")


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    default_message = _("没有权限执行此操作")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = _("记录不存在")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = _("操作与当前状态冲突")


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_message = _("当前状态不允许此操作")


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"
    default_message = _("操作过于频繁，请稍后再试")


class UpstreamUnavailable(DomainError):
    status = 503
    code = "upstream_unavailable"
    default_message = _("外部服务暂时不可用，请稍后再试")
