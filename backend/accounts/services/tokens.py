"""API tokens for the mini-program.

A short-lived signed access token (no database row) and a rotating refresh token
stored only as its SHA-256. Every refresh spends the presented token and issues the
next one in the same family; presenting a spent token again means it was stolen or
replayed, so the whole family (that login on that device) is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import RefreshToken, TokenFamily, User
from backend.core.audit import audit_record
from backend.core.errors import NotAuthenticated

ACCESS_SALT = "qihuang.api.access"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_in: int
    refresh_token: str
    refresh_expires_in: int
    family_id: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_refresh(family: TokenFamily) -> str:
    raw = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        family=family, token_hash=_hash(raw),
        expires_at=timezone.now() + timedelta(seconds=settings.REFRESH_TOKEN_TTL_SECONDS),
    )
    return raw


def _pair(family: TokenFamily, refresh: str) -> TokenPair:
    access = signing.dumps({"u": str(family.user_id), "f": str(family.id)}, salt=ACCESS_SALT)
    return TokenPair(access, settings.ACCESS_TOKEN_TTL_SECONDS, refresh,
                     settings.REFRESH_TOKEN_TTL_SECONDS, str(family.id))


@transaction.atomic
def token_family_start(*, user: User, ip: str = "", user_agent: str = "") -> TokenPair:
    family = TokenFamily.objects.create(user=user, ip=ip, user_agent=user_agent[:200])
    return _pair(family, _issue_refresh(family))


def token_family_revoke(*, family_id: object, reason: str) -> int:
    return TokenFamily.objects.filter(pk=family_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason)


def tokens_refresh(*, refresh_token: str, ip: str = "") -> TokenPair:
    """Spend ``refresh_token`` and return the next pair; a replayed token revokes its family."""
    with transaction.atomic():
        row = RefreshToken.objects.select_related("family__user").filter(token_hash=_hash(refresh_token)).first()
        if row is None:
            raise NotAuthenticated(_("登录已失效，请重新登录"), code="refresh_token_invalid")
        family = row.family
        spent = RefreshToken.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=timezone.now())
        active = family.user.is_active
        if family.revoked_at is None and spent and row.expires_at > timezone.now() and active:
            return _pair(family, _issue_refresh(family))
        if not active:
            token_family_revoke(family_id=family.id, reason="account_disabled")
        reused = not spent
        if reused:
            token_family_revoke(family_id=family.id, reason="refresh_token_reuse")
            audit_record(action="auth.refresh_token_reuse", object_type="accounts.tokenfamily",
                         object_id=str(family.id), ip=ip, detail={"user": str(family.user_id)})
    if reused:
        raise NotAuthenticated(_("登录凭证已被使用，为保护账户安全，请重新登录"), code="refresh_token_reused")
    raise NotAuthenticated(_("登录已失效，请重新登录"), code="refresh_token_expired")


def tokens_logout(*, refresh_token: str) -> None:
    row = RefreshToken.objects.filter(token_hash=_hash(refresh_token)).only("family_id").first()
    if row is not None:
        token_family_revoke(family_id=row.family_id, reason="logout")


def access_token_authenticate(token: str) -> User:
    """The active user behind a valid, unexpired access token of a live family."""
    try:
        claims = signing.loads(token, salt=ACCESS_SALT, max_age=settings.ACCESS_TOKEN_TTL_SECONDS)
        user_id, family_id = claims["u"], claims["f"]
    except (signing.BadSignature, KeyError, TypeError) as exc:
        raise NotAuthenticated(_("登录已过期，请重新登录"), code="access_token_invalid") from exc
    user = User.objects.filter(pk=user_id, is_active=True, token_families__id=family_id,
                               token_families__revoked_at__isnull=True).first()
    if user is None:
        raise NotAuthenticated(_("登录已失效，请重新登录"), code="access_token_revoked")
    return user
