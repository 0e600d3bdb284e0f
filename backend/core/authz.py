"""Object-level authorization helpers (DESIGN rule 11).

Another account's object answers 404, not 403: its existence is not disclosed.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import models

from backend.core.errors import NotFound

M = TypeVar("M", bound=models.Model)


def get_owned_or_404(queryset: models.QuerySet[M], *, pk: object, owner_field: str, owner: object) -> M:
    """The object with ``pk`` if ``owner`` owns it through ``owner_field``; else ``NotFound``."""
    try:
        return queryset.get(pk=pk, **{owner_field: owner})
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound() from exc


def client_ip(request) -> str:
    """The client address as Django saw it (a trusted proxy sets REMOTE_ADDR via the ASGI server)."""
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR", "")[:45]
