"""Shared schema types. Every string an API accepts forbids NUL (PostgreSQL cannot store it)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

NO_NUL = r"^[^\x00]*$"


def text(max_length: int, min_length: int = 0) -> type[str]:
    return Annotated[str, Field(pattern=NO_NUL, min_length=min_length, max_length=max_length)]  # type: ignore[return-value]
