"""Mini-program login, token refresh and logout, the account, phone binding."""

from __future__ import annotations

from uuid import UUID

from ninja import Router, Schema, Status

from backend.accounts.selectors import user_roles
from backend.accounts.services.tokens import TokenPair, tokens_logout, tokens_refresh
from backend.accounts.services.wechat import phone_bind_from_code, phone_bind_from_encrypted, wechat_login
from backend.core.authz import client_ip
from miniprogram_api.auth import access_token_auth
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text

router = Router(tags=["auth"])


class WeChatLoginIn(Schema):
    code: text(128, 1)


class RefreshIn(Schema):
    refresh_token: text(256, 1)


class PhoneCodeIn(Schema):
    code: text(128, 1)


class PhoneEncryptedIn(Schema):
    encrypted_data: text(4096, 1)
    iv: text(64, 1)


class MeOut(Schema):
    id: UUID
    display_name: str
    phone_masked: str
    has_phone: bool
    roles: list[str]


class TokenOut(Schema):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class LoginOut(TokenOut):
    is_new_account: bool
    user: MeOut


def _me(user) -> MeOut:
    return MeOut(id=user.id, display_name=user.display_name, phone_masked=user.phone_masked,
                 has_phone=bool(user.phone), roles=sorted(user_roles(user)))


def _tokens(pair: TokenPair) -> dict[str, object]:
    return {"access_token": pair.access_token, "expires_in": pair.access_expires_in,
            "refresh_token": pair.refresh_token, "refresh_expires_in": pair.refresh_expires_in}


@router.post("/auth/wechat-login", response={200: LoginOut, **ERRORS}, auth=None,
             summary="Log in with a wx.login code")
def login(request, payload: WeChatLoginIn):
    pair, user, created = wechat_login(code=payload.code, ip=client_ip(request),
                                       user_agent=request.headers.get("User-Agent", ""))
    return LoginOut(**_tokens(pair), is_new_account=created, user=_me(user))


@router.post("/auth/refresh", response={200: TokenOut, **ERRORS}, auth=None,
             summary="Rotate the refresh token")
def refresh(request, payload: RefreshIn):
    return TokenOut(**_tokens(tokens_refresh(refresh_token=payload.refresh_token, ip=client_ip(request))))


@router.post("/auth/logout", response={204: None, **ERRORS}, auth=None, summary="Revoke this login")
def logout(request, payload: RefreshIn):
    tokens_logout(refresh_token=payload.refresh_token)
    return Status(204, None)


@router.get("/me", response={200: MeOut, **ERRORS}, auth=access_token_auth, summary="The current account")
def me(request):
    return _me(request.auth)


@router.post("/me/phone", response={200: MeOut, **ERRORS}, auth=access_token_auth,
             summary="Bind the phone number from a getPhoneNumber code")
def bind_phone(request, payload: PhoneCodeIn):
    return _me(phone_bind_from_code(user=request.auth, code=payload.code))


@router.post("/me/phone/encrypted", response={200: MeOut, **ERRORS}, auth=access_token_auth,
             summary="Bind the phone number from encryptedData + iv (older form)")
def bind_phone_encrypted(request, payload: PhoneEncryptedIn):
    user = phone_bind_from_encrypted(user=request.auth, encrypted_data=payload.encrypted_data, iv=payload.iv)
    return _me(user)
