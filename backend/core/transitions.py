"""Compare-and-swap status changes (DESIGN rule 2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from backend.core.errors import InvalidTransition


def transition(model: type[models.Model], *, pk: Any, source: Iterable[str], target: str, **fields: Any) -> bool:
    """``UPDATE … SET status=target WHERE pk=pk AND status IN source``.

    True when this call made the change; False when the row was already in ``target`` (a replay);
    ``InvalidTransition`` otherwise (a race lost to another state, or a wrong source).
    """
    if model._default_manager.filter(pk=pk, status__in=list(source)).update(status=target, **fields):
        return True
    current = model._default_manager.filter(pk=pk).values_list("status", flat=True).first()
    if current == target:
        return False
    raise InvalidTransition(detail={"from": current, "to": target})
