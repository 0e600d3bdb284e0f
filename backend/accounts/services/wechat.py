"""Mini-program login (code → code2Session → account) and phone binding.

Gateway calls happen before any transaction is opened (DESIGN rule 3).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import Role, User, UserRole, WeChatIdentity
from backend.accounts.services.tokens import TokenPair, token_family_start
from backend.core.audit import audit_record
from backend.core.errors import DomainError, NotAuthenticated, UpstreamUnavailable, ValidationFailed
from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from backend.gateways.factory import wechat_gateway


def _upstream(exc: GatewayRetryable) -> UpstreamUnavailable:
    return UpstreamUnavailable(_("微信服务暂时不可用，请稍后重试"), code="wechat_unavailable",
                               detail={"reason": exc.code})


def _identity_for(openid: str, unionid: str | None, session_key: str) -> tuple[WeChatIdentity, bool]:
    appid = settings.WECHAT_APPID
    identity = WeChatIdentity.objects.select_related("user").filter(appid=appid, openid=openid).first()
    created = identity is None
    if created:
        user = User(username=f"wx_{uuid.uuid4().hex[:20]}")
        user.set_unusable_password()
        user.save()
        UserRole.objects.create(user=user, role=Role.PATIENT)
        identity = WeChatIdentity(user=user, appid=appid, openid=openid)
    if unionid:
        identity.unionid = unionid
    identity.session_key = session_key
    identity.session_key_updated_at = timezone.now()
    identity.save()
    return identity, created


def wechat_login(*, code: str, ip: str = "", user_agent: str = "") -> tuple[TokenPair, User, bool]:
    """Exchange a ``wx.login`` code for our tokens; the account is created on first login."""
    try:
        session = wechat_gateway().code_to_session(code)
    except GatewayTerminal as exc:
        audit_record(action="auth.wechat_login_failed", ip=ip, detail={"reason": exc.code})
        raise NotAuthenticated(_("微信登录凭证无效或已过期，请重新进入小程序"),
                               code="wechat_code_invalid") from exc
    except GatewayRetryable as exc:
        raise _upstream(exc) from exc
    for attempt in range(2):
        try:
            with transaction.atomic():
                identity, created = _identity_for(session.openid, session.unionid, session.session_key)
                if not identity.user.is_active:
                    raise NotAuthenticated(_("账户已停用"), code="account_disabled")
                pair = token_family_start(user=identity.user, ip=ip, user_agent=user_agent)
                audit_record(action="auth.wechat_login", actor=identity.user, ip=ip,
                             detail={"new_account": created})
            return pair, identity.user, created
        except IntegrityError:
            if attempt:  # two first logins raced; the second attempt finds the winner's row
                raise
    raise AssertionError("unreachable")


def _bind_phone(user: User, phone: str, source: str) -> User:
    with transaction.atomic():
        user.phone = phone
        user.phone_verified_at = timezone.now()
        user.save(update_fields=["phone", "phone_index", "phone_verified_at"])
        audit_record(action="account.phone_bound", actor=user, obj=user, detail={"source": source})
    return user


def phone_bind_from_code(*, user: User, code: str) -> User:
    """The current form: ``getPhoneNumber`` gives a code, exchanged server-side."""
    try:
        phone = wechat_gateway().get_phone_number(code)
    except GatewayTerminal as exc:
        raise ValidationFailed(_("手机号授权已失效，请重新授权"), code="phone_code_invalid") from exc
    except GatewayRetryable as exc:
        raise _upstream(exc) from exc
    return _bind_phone(user, phone.pure_phone_number, "code")


def phone_bind_from_encrypted(*, user: User, encrypted_data: str, iv: str) -> User:
    """The older form: data encrypted with the session key of the user's last login."""
    identity = (WeChatIdentity.objects.filter(user=user, appid=settings.WECHAT_APPID)
                .order_by("-session_key_updated_at").first())
    if identity is None or not identity.session_key:
        raise DomainError(_("请先通过微信登录"), code="wechat_session_missing", status=409)
    try:
        phone = wechat_gateway().decrypt_phone(identity.session_key, encrypted_data, iv)
    except GatewayTerminal as exc:
        raise ValidationFailed(_("手机号数据无法解密，请重新授权"), code="phone_data_invalid") from exc
    return _bind_phone(user, phone.pure_phone_number, "encrypted_data")
