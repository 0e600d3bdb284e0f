"""Accounts, roles, WeChat identities and API tokens."""

from __future__ import annotations

import unicodedata
import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from backend.core.crypto import mask_phone
from backend.core.fields import BlindIndexField, EncryptedTextField


def normalize_phone(value: str) -> str:
    """NFKC, then ASCII digits only (and a leading +86 dropped): one spelling per number."""
    value = unicodedata.normalize("NFKC", value or "")
    digits = "".join(ch for ch in value if ch in "0123456789+")
    return digits[3:] if digits.startswith("+86") else digits


class Role(models.TextChoices):
    PATIENT = "patient", _("患者")
    DOCTOR = "doctor", _("医生")
    PHARMACIST = "pharmacist", _("药师")
    DISPENSER = "dispenser", _("调剂/煎药人员")
    COURIER = "courier", _("配送员")
    OPERATOR = "operator", _("运营人员")


STAFF_ROLES = frozenset({Role.DOCTOR, Role.PHARMACIST, Role.DISPENSER, Role.COURIER, Role.OPERATOR})


class User(AbstractUser):
    """One account. Patients arrive through WeChat; staff log in with a password. Roles stack."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    display_name = models.CharField(_("显示名称"), max_length=64, blank=True)
    phone = EncryptedTextField(_("手机号（加密）"), blank=True, null=True)
    phone_index = BlindIndexField(source="phone", purpose="phone", normalize=normalize_phone)
    phone_verified_at = models.DateTimeField(_("手机号绑定时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone or "")

    def has_role(self, role: str) -> bool:
        return self.role_grants.filter(role=role).exists()

    @property
    def is_staff_member(self) -> bool:
        """Holds a staff role (doctor, pharmacist, dispenser, courier, operator)."""
        return self.is_superuser or self.role_grants.filter(role__in=STAFF_ROLES).exists()


class UserRole(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_grants")
    role = models.CharField(_("角色"), max_length=16, choices=Role.choices)
    granted_at = models.DateTimeField(_("授予时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("角色")
        verbose_name_plural = _("角色")
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="uniq_user_role")]

    def __str__(self) -> str:
        return self.get_role_display()


class WeChatIdentity(models.Model):
    """The mini-program's openid (per appid) and the open-platform unionid of an account."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="wechat_identities")
    appid = models.CharField(max_length=32)
    openid = models.CharField(max_length=64)
    unionid = models.CharField(max_length=64, blank=True, db_index=True)
    session_key = EncryptedTextField(blank=True, null=True)
    session_key_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("微信身份")
        verbose_name_plural = _("微信身份")
        constraints = [models.UniqueConstraint(fields=["appid", "openid"], name="uniq_wechat_openid")]

    def __str__(self) -> str:
        return f"{self.appid}:{self.openid[:6]}…"


class TokenFamily(models.Model):
    """One login on one device; every rotated refresh token of that login belongs to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_families")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("登录会话")
        verbose_name_plural = _("登录会话")

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class RefreshToken(models.Model):
    """A refresh token, stored only as its SHA-256; spent when used once."""

    id = models.BigAutoField(primary_key=True)
    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("刷新令牌")
        verbose_name_plural = _("刷新令牌")

    def __str__(self) -> str:
        return f"refresh token #{self.pk}"
