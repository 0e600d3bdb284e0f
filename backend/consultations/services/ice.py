"""ICE servers for a video visit's participants: STUN, and TURN with time-limited credentials.

coturn's REST scheme (``use-auth-secret``): the username is ``<expiry unix time>:<user id>`` and the
password is base64(HMAC-SHA1(shared secret, username)); coturn recomputes it and refuses it after expiry,
so no per-user state is kept anywhere and a leaked credential dies on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from backend.consultations.services.reads import consultation_of_party
from backend.consultations.states import ConsultKind, ConsultStatus
from backend.core.errors import Conflict


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int


def turn_credential(*, user_id: object, now: float | None = None) -> TurnCredential:
    expiry = int(now if now is not None else time.time()) + settings.TURN_CREDENTIAL_TTL_SECONDS
    username = f"{expiry}:{user_id}"
    digest = hmac.new(settings.TURN_SHARED_SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username=username, credential=base64.b64encode(digest).decode(), expires_at=expiry)


def ice_servers(*, user_id: object) -> tuple[list[dict], int | None]:
    """The RTCPeerConnection ``iceServers`` list (empty on a loopback-only demo with nothing configured) and
    when its TURN credential expires."""
    servers: list[dict] = [{"urls": list(settings.STUN_URLS)}] if settings.STUN_URLS else []
    if not settings.TURN_URLS:
        return servers, None
    cred = turn_credential(user_id=user_id)
    servers.append({"urls": list(settings.TURN_URLS), "username": cred.username, "credential": cred.credential})
    return servers, cred.expires_at


def ice_servers_for_visit(*, user, consultation_id: object) -> tuple[list[dict], int | None]:
    """Only the two parties of a video visit that is still open get TURN credentials (relaying costs)."""
    c, _role = consultation_of_party(user=user, consultation_id=consultation_id)
    if c.kind != ConsultKind.VIDEO:
        raise Conflict(_("该复诊不是视频复诊"), code="consultation_not_video")
    if c.status not in (ConsultStatus.WAITING, ConsultStatus.IN_PROGRESS):
        raise Conflict(_("当前复诊状态不能发起视频"), code="consultation_not_open", detail={"status": c.status})
    return ice_servers(user_id=user.pk)
