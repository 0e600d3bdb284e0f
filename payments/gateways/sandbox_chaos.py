"""Seeded chaos for the payment sandboxes' notifications (shared by WeChat Pay and Alipay)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Chaos:
    """Per-notice probabilities (0..1; True = 1) of each flag, drawn from a seeded generator."""

    names: tuple[str, ...] = ()
    rates: dict[str, float] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def of(cls, names: tuple[str, ...], seed: int | None = None, **flags: float | bool) -> Chaos:
        unknown = set(flags) - set(names)
        if unknown:
            raise ValueError(f"unknown chaos flags {sorted(unknown)}; known: {names}")
        rates = {name: float(flags.get(name, 0.0)) for name in names}
        if any(not 0.0 <= rate <= 1.0 for rate in rates.values()):
            raise ValueError("chaos rates must be between 0 and 1")
        return cls(names, rates, random.Random(seed))

    def draw(self) -> frozenset[str]:
        """One draw per flag, always, so a seed gives the same sequence whatever the rates."""
        return frozenset(name for name in self.names if self.rng.random() < self.rates.get(name, 0.0))
