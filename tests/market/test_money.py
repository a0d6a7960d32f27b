"""Tests of Money: tick conversion at the boundary between currency units and integer ticks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesa_llm.market import Money, OffTickError


@pytest.mark.parametrize(
    ("tick", "decimals"),
    [
        (0.01, 2),
        ("0.01", 2),
        (0.5, 1),
        (1, 0),
        (0.25, 2),
        (5, 0),
        (10.0, 0),
        (1e-5, 5),
        ("0.10", 1),
    ],
)
def test_decimals_of_the_tick(tick: float | str, decimals: int) -> None:
    money = Money(tick)
    assert money.decimals == decimals
    assert money.tick_size == float(tick)


@pytest.mark.parametrize("tick", [0, -0.01, float("nan"), float("inf"), "abc"])
def test_bad_tick_sizes_are_rejected(tick: float | str) -> None:
    with pytest.raises(ValueError):
        Money(tick)


def test_known_conversions() -> None:
    money = Money(0.01)
    assert money.to_ticks(1.23) == 123
    assert money.to_ticks(0.1 + 0.2) == 30  # float noise within tolerance
    assert money.to_ticks(0.07) == 7
    assert money.to_ticks(5) == 500
    assert money.to_ticks("12.34") == 1234
    assert money.to_ticks("-0.05") == -5
    assert money.to_ticks(np.float64(2.5)) == 250
    assert money.to_ticks(np.int64(3)) == 300  # type: ignore[arg-type]
    assert money.to_units(7) == 0.07
    assert repr(money.to_units(7)) == "0.07"
    assert money.to_units(123456) == 1234.56


def test_integer_and_odd_ticks() -> None:
    five = Money(5)
    assert five.to_ticks(15) == 3
    assert five.to_ticks(15.0) == 3
    assert five.to_units(3) == 15.0
    with pytest.raises(OffTickError):
        five.to_ticks(12)
    third = Money("0.3")
    assert third.to_ticks(3) == 10
    assert third.to_ticks("0.9") == 3
    assert third.to_units(3) == 0.9
    with pytest.raises(OffTickError):
        third.to_ticks(1)


@pytest.mark.parametrize("amount", [1.234, "1.234", 0.005, 100.001])
def test_off_tick_amounts_are_rejected_with_a_clear_message(amount: float | str) -> None:
    with pytest.raises(OffTickError) as info:
        Money(0.01).to_ticks(amount)
    message = str(info.value)
    assert str(amount) in message and "0.01" in message


@pytest.mark.parametrize(
    "amount", [float("nan"), float("inf"), -float("inf"), "nan", "Infinity", "x1"]
)
def test_non_finite_amounts_are_value_errors(amount: float | str) -> None:
    with pytest.raises(ValueError):
        Money(0.01).to_ticks(amount)


@pytest.mark.parametrize("amount", [True, None, [1]])
def test_non_numbers_are_type_errors(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(0.01).to_ticks(amount)  # type: ignore[arg-type]


def test_huge_float_is_refused_but_int_and_str_are_exact() -> None:
    money = Money(0.01)
    with pytest.raises(ValueError):
        money.to_ticks(1e200)
    assert money.to_ticks(10**30) == 10**32
    assert money.to_ticks("123456789012345678.91") == 12345678901234567891


def test_round_to_tick() -> None:
    money = Money(0.05)
    assert money.round_to_tick(1.02) == 20
    assert money.round_to_tick(1.03) == 21
    assert Money(0.5).round_to_tick(1.25) == 3  # exact halves round up
    assert Money(0.5).round_to_tick(-1.25) == -2
    assert money.round_to_tick(-1.03) == -21
    with pytest.raises(ValueError):
        money.round_to_tick(math.nan)


@given(
    ticks=st.integers(min_value=-(10**11), max_value=10**11),
    tick=st.sampled_from(["0.01", "0.05", "0.25", "0.5", "1", "5", "0.001", "0.1"]),
)
def test_round_trip_ticks_units_ticks(ticks: int, tick: str) -> None:
    money = Money(tick)
    units = money.to_units(ticks)
    assert money.to_ticks(units) == ticks
    assert money.to_ticks(repr(units)) == ticks  # prints as an exact multiple of the tick
    assert len(repr(units).split(".")[-1]) <= max(money.decimals, 1) or "e" in repr(units)
    assert money.round_to_tick(units) == ticks


@given(ticks=st.integers(min_value=-(10**9), max_value=10**9), frac=st.floats(0.05, 0.95))
def test_amounts_between_ticks_are_rejected(ticks: int, frac: float) -> None:
    money = Money(0.01)
    with pytest.raises(OffTickError):
        money.to_ticks((ticks + frac) * 0.01)


def test_float_conversions_kept_are_those_made_anew() -> None:
    """A Money keeps the ticks of float amounts it converted: asked again, the same ticks; an
    amount off the tick, or not finite, is refused every time (nothing kept for it); a kept
    amount of one tick size is never another's."""
    draws = np.random.default_rng(8)
    amounts = [round(float(x), 2) for x in draws.uniform(-500, 500, 300)] + [float(x) for x in draws.uniform(0, 5, 100)]
    amounts += [0.0, -0.0, 1e-9, math.inf, math.nan, 12.345, 12.35]
    for tick in (0.01, 0.05, 0.01):
        kept = Money(tick)
        for _ in range(2):
            for amount in amounts:
                try:
                    expected: object = Money(tick).to_ticks(amount)
                except ValueError as exc:
                    expected = type(exc)
                try:
                    got: object = kept.to_ticks(amount)
                except ValueError as exc:
                    got = type(exc)
                assert got == expected and type(got) is type(expected), (tick, amount)
    assert Money(0.05).to_ticks(0.1) == 2 and Money(0.01).to_ticks(0.1) == 10


def test_floats_to_ticks_converts_as_to_ticks_does_and_leaves_the_rest_to_it() -> None:
    """Every float `to_ticks` converts gets its ticks; every other amount (off the tick, too large,
    nan, inf, not a float) None, for `to_ticks` to decide (and refuse with its reason)."""
    import numpy as np

    draws = np.random.default_rng(5)
    for tick in (0.01, 0.05, 0.25, 1.0, 0.001, 3.0, 0.1):
        money = Money(tick)
        base = draws.integers(-10**6, 10**6, 400) * tick
        amounts: list[object] = [float(v) for v in base]
        amounts += [float(v) + tick * f for v in base[:80] for f in (1e-12, 1e-4, 0.3, 0.5)]  # near and off the tick
        amounts += [0.1 + 0.2, 2.0**44 * tick, 2.0**45 * tick, (2.0**40 + 0.3) * tick, (2.0**30 + 0.3) * tick,
                    -0.0, 0.0, float("nan"), float("inf"), -float("inf"), 5, "1.00", True, np.float64(1.0), 1e-320,
                    tick / 2, tick * 1.5, tick * 2.5]  # fmt: skip
        for amount, ticks in zip(amounts, money.floats_to_ticks(amounts), strict=True):
            try:
                want = money.to_ticks(amount) if amount.__class__ is float else None  # type: ignore[arg-type]
            except ValueError:
                want = None
            assert ticks == want, (tick, amount)
            assert ticks is None or ticks.__class__ is int
