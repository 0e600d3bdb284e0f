"""Yuan ↔ fen and Asia/Shanghai times, exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payments.gateways.alipay import SHANGHAI, fen_to_yuan, parse_shanghai, shanghai_text, yuan_to_fen


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00"), (1, "0.01"), (10, "0.10"), (29, "0.29"), (8800, "88.00"), (123456, "1234.56"),
     (-2000, "-20.00"), (-1, "-0.01"), (100_000_000_00, "100000000.00")],
)
def test_fen_to_yuan_and_back(fen: int, text: str) -> None:
    assert fen_to_yuan(fen) == text
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize(("text", "fen"), [("88", 8800), ("88.5", 8850), (" 0.10\t", 10), ("1234.56", 123456)])
def test_yuan_to_fen_accepts_alipay_variants(text: str, fen: int) -> None:
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["", "abc", "1.234", "1e3", "1,000.00", "０.01", "+1.00", ".5", "1.", None])
def test_yuan_to_fen_rejects_anything_else(text: object) -> None:
    with pytest.raises(ValueError):
        yuan_to_fen(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1.5, True, "100"])
def test_fen_to_yuan_takes_integers_only(value: object) -> None:
    with pytest.raises(TypeError):
        fen_to_yuan(value)  # type: ignore[arg-type]


def test_times_are_shanghai_wall_clock() -> None:
    moment = datetime(2026, 1, 5, 2, 0, 30, tzinfo=UTC)
    assert shanghai_text(moment) == "2026-01-05 10:00:30"
    assert parse_shanghai("2026-01-05 10:00:30") == moment
    assert parse_shanghai("2026-01-05 10:00:30.320") == datetime(2026, 1, 5, 2, 0, 30, 320000, tzinfo=UTC)
    assert parse_shanghai("2026-01-05 10:00:30").tzinfo is SHANGHAI  # type: ignore[union-attr]
    assert parse_shanghai("") is None and parse_shanghai(None) is None


def test_naive_or_garbled_times_are_refused() -> None:
    with pytest.raises(ValueError):
        shanghai_text(datetime(2026, 1, 5, 10, 0))
    with pytest.raises(ValueError):
        parse_shanghai("2026/01/05 10:00")
