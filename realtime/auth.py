"""WebSocket authentication: a staff session cookie, or a mini-program access token.

The mini-program and the H5 page pass ``?access_token=...`` (browsers cannot set
headers on a WebSocket); staff consoles use their Django session.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings

from backend.accounts.services.tokens import access_token_authenticate
from backend.core.errors import NotAuthenticated


@database_sync_to_async
def _user_for_token(token: str):
    try:
        return access_token_authenticate(token)
    except NotAuthenticated:
        return None


class AccessTokenMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        token = parse_qs(scope.get("query_string", b"").decode()).get("access_token", [""])[0]
        if token:
            user = await _user_for_token(token)
            if user is not None:
                scope = dict(scope, user=user)
        return await super().__call__(scope, receive, send)


def auth_stack(inner):
    return AuthMiddlewareStack(AccessTokenMiddleware(inner))


class BrowserOriginValidator(OriginValidator):
    """Browsers always send Origin: it must be one of ALLOWED_HOSTS (no cross-site socket hijacking).
    The mini-program's wx.connectSocket is not a browser and may send none; it authenticates by token."""

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or super().valid_origin(parsed_origin)


def origin_checked(inner):
    return BrowserOriginValidator(inner, settings.ALLOWED_HOSTS)
