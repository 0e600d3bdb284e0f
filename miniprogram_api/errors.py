"""The one error envelope: ``{"code", "message", "detail"}`` for every failure, 422 included."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from backend.core.errors import DomainError

logger = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 422: "validation_error",
              429: "too_many_requests", 503: "upstream_unavailable"}
HTTP_MESSAGES = {400: _("请求格式有误"), 401: _("请先登录"), 403: _("没有权限执行此操作"), 404: _("记录不存在"),
                 405: _("不支持的请求方法"), 409: _("操作与当前状态冲突"), 413: _("请求内容过大"),
                 422: _("提交的信息有误"), 429: _("操作过于频繁，请稍后再试"), 503: _("服务暂时不可用")}


class ErrorOut(Schema):
    code: str
    message: str
    detail: dict[str, Any] | list[Any]


ERROR_STATUSES = frozenset({400, 401, 403, 404, 409, 422, 429, 503})
ERRORS: dict[frozenset[int], type[Schema]] = {ERROR_STATUSES: ErrorOut}


def envelope(api: NinjaAPI, request, status: int, code: str, message: str, detail: Any = None):
    safe = json.loads(json.dumps(detail if detail is not None else {}, default=str, ensure_ascii=False))
    return api.create_response(request, {"code": code, "message": str(message), "detail": safe}, status=status)


def _validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def domain_error(request, exc: DomainError):
        return envelope(api, request, exc.status, exc.code, exc.message, exc.detail)

    @api.exception_handler(ValidationError)
    def validation_error(request, exc: ValidationError):
        return envelope(api, request, 422, "validation_error", HTTP_MESSAGES[422], _validation_detail(exc.errors))

    @api.exception_handler(AuthenticationError)
    def authentication_error(request, exc: AuthenticationError):
        return envelope(api, request, 401, "not_authenticated", HTTP_MESSAGES[401])

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        status = exc.status_code
        return envelope(api, request, status, HTTP_CODES.get(status, "error"),
                        HTTP_MESSAGES.get(status, str(exc)))

    @api.exception_handler(MultiPartParserError)
    def bad_multipart(request, exc: MultiPartParserError):
        return envelope(api, request, 400, "bad_multipart", _("上传内容格式错误，请使用 multipart/form-data 上传文件"))

    @api.exception_handler(Http404)
    def not_found(request, exc: Http404):
        return envelope(api, request, 404, "not_found", HTTP_MESSAGES[404])

    @api.exception_handler(Exception)
    def server_error(request, exc: Exception):
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return envelope(api, request, 500, "server_error", _("服务器开小差了，请稍后再试"))
