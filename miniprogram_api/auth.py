"""Bearer authentication for the mini-program: our short-lived signed access token."""

from __future__ import annotations

from ninja.security import HttpBearer

from backend.accounts.services.tokens import access_token_authenticate


class AccessTokenAuth(HttpBearer):
    openapi_description = "Access token from /api/auth/wechat-login or /api/auth/refresh"

    def authenticate(self, request, token: str):
        user = access_token_authenticate(token)  # raises NotAuthenticated (401 envelope)
        request.user = user
        return user


access_token_auth = AccessTokenAuth()
