"""Money owns the conversion between currency units and integer ticks.

Agents, prompts and recordings see decimal currency amounts; the ledger and the clearing
only ever see integer ticks. Converting at one boundary keeps float rounding out of the
accounting: an amount that is not an exact multiple of the tick is rejected, not rounded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["Money", "OffTickError"]

# Float inputs beyond this many ticks cannot be checked for tick-exactness reliably
# (a float's spacing there approaches the tolerance); pass an int or a str instead.
_MAX_FLOAT_TICKS = float(2**44)
# Tolerance on |amount / tick - nearest integer|: ~1e-9 relative, but never loose enough
# to accept an amount that is visibly off the tick grid.
_REL_TOL = 1e-9
_MAX_ABS_TOL = 1e-2
# Float amounts whose ticks a Money keeps (then it starts again): bounded memory in a long run.
_FLOATS_KEPT = 1 << 16


class OffTickError(ValueError):
    """An amount is not an exact multiple of the tick size."""


class Money:
    """Converts between currency units (what agents and recordings see) and integer ticks (what the ledger holds)."""

    __slots__ = ("tick_size", "decimals", "_tick_dec", "_tick_frac", "_scale", "_float_ticks")

    def __init__(self, tick_size: float | str) -> None:
        if isinstance(tick_size, bool) or not isinstance(tick_size, (str, numbers.Real)):
            raise TypeError(f"tick_size must be a number or a decimal string, got {tick_size!r}")
        try:
            # str() of a float is its shortest round-tripping decimal: 0.01 -> "0.01".
            tick_dec = Decimal(str(tick_size).strip())
        except InvalidOperation:
            raise ValueError(f"tick_size {tick_size!r} is not a number") from None
        if not tick_dec.is_finite() or tick_dec <= 0:
            raise ValueError(f"tick_size must be a finite number > 0, got {tick_size!r}")
        self.tick_size: float = float(tick_dec)
        exponent = int(tick_dec.normalize().as_tuple().exponent)
        self.decimals: int = max(0, -exponent)
        self._tick_dec = tick_dec
        self._tick_frac = Fraction(tick_dec)
        # Ticks per currency unit when that is an integer (0.01 -> 100): exact int paths.
        inverse = 1 / self._tick_frac
        self._scale: int | None = int(inverse) if inverse.denominator == 1 else None
        # float amounts already converted (on the tick): a run meets the same prices again and again
        self._float_ticks: dict[float, int] = {}

    def __repr__(self) -> str:
        return f"Money(tick_size={self._tick_dec})"

    def to_ticks(self, amount: float | int | str) -> int:
        """Convert a currency amount to integer ticks; reject amounts that are off the tick grid.

        Raises OffTickError (a ValueError) when the amount is not a multiple of the tick,
        ValueError for nan/inf or unparseable strings, TypeError for non-numbers.
        """
        kind = type(amount)
        if kind is float:
            ticks = self._float_ticks.get(amount)  # type: ignore[arg-type]
            if ticks is None:
                ticks = self._float_to_ticks(amount)  # type: ignore[arg-type]  # raises: nothing kept
                if len(self._float_ticks) >= _FLOATS_KEPT:
                    self._float_ticks.clear()
                self._float_ticks[amount] = ticks  # type: ignore[index]
            return ticks
        if kind is int:
            return self._int_to_ticks(amount)  # type: ignore[arg-type]
        if kind is str:
            return self._str_to_ticks(amount)  # type: ignore[arg-type]
        if isinstance(amount, bool):
            raise TypeError(f"amount must be a number, got {amount!r}")
        if isinstance(amount, numbers.Integral):  # numpy integers and friends
            return self._int_to_ticks(int(amount))
        if isinstance(amount, numbers.Real):
            return self._float_to_ticks(float(amount))
        raise TypeError(f"amount must be a number or a decimal string, got {amount!r}")

    def floats_to_ticks(self, amounts: Sequence[Any]) -> list[int | None]:
        """`to_ticks` of each of ``amounts`` that is a float it converts (finite, within the exact
        range, on the tick), computed as arrays with the same double arithmetic; None where it is
        anything else (not a float, off the tick, too large, nan): `to_ticks` decides those."""
        values, ticks, usable = self.floats_to_tick_array(amounts)
        out: list[int | None] = ticks.tolist()
        if not usable.all():
            for i in np.flatnonzero(~usable).tolist():
                out[i] = None
        return out

    def floats_to_tick_array(self, amounts: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`floats_to_ticks` as arrays: the amounts as floats (nan where one is not a float), their
        ticks (0 where not usable) and whether each is usable (`floats_to_ticks` gives None where not)."""
        n = len(amounts)
        if {a.__class__ for a in amounts} == {float}:  # (the usual batch: no check per amount)
            values = np.array(amounts, dtype=np.float64)
        else:
            values = np.fromiter((a if a.__class__ is float else math.nan for a in amounts), dtype=np.float64, count=n)
        q = values / self.tick_size
        aq = np.abs(q)
        r = np.rint(q)  # round(): half to even too
        tol = np.minimum(np.where(aq > 1.0, _REL_TOL * aq, _REL_TOL), _MAX_ABS_TOL)
        with np.errstate(invalid="ignore"):
            usable = (aq <= _MAX_FLOAT_TICKS) & (np.abs(q - r) <= tol)  # nan compares False: not usable
        ticks = r.astype(np.int64, copy=False) if usable.all() else np.where(usable, r, 0).astype(np.int64)
        return values, ticks, usable

    def to_units(self, ticks: int) -> float:
        """Convert integer ticks to a currency amount that prints as an exact multiple of the tick."""
        if self._scale is not None:
            # A correctly rounded int/int division is the float nearest the exact decimal,
            # so it prints with at most `decimals` places (0.07, never 0.07000000000000001).
            return float(ticks / self._scale)
        return float(round(ticks * self.tick_size, self.decimals))

    def round_to_tick(self, amount: float) -> int:
        """Return the nearest tick (halves round up) for a continuous price drawn by a strategy."""
        q = float(amount) / self.tick_size
        if not math.isfinite(q):
            raise ValueError(f"cannot round {amount!r} to a tick: not a finite number")
        return math.floor(q + 0.5)

    # -- conversions by input type --------------------------------------------------

    def _float_to_ticks(self, amount: float) -> int:
        if not math.isfinite(amount):
            raise ValueError(f"amount must be a finite number, got {amount!r}")
        q = amount / self.tick_size
        aq = abs(q)
        if aq > _MAX_FLOAT_TICKS:
            raise ValueError(
                f"amount {amount!r} is too large to convert exactly from a float "
                f"(tick {self._tick_dec}); pass it as an int or a decimal string"
            )
        r = round(q)
        tol = _REL_TOL * aq if aq > 1.0 else _REL_TOL
        if tol > _MAX_ABS_TOL:
            tol = _MAX_ABS_TOL
        if abs(q - r) > tol:
            raise OffTickError(
                f"amount {amount!r} is not a multiple of the tick size {self._tick_dec}"
            )
        return int(r)

    def _int_to_ticks(self, amount: int) -> int:
        if self._scale is not None:
            return amount * self._scale
        exact = amount / self._tick_frac
        if exact.denominator != 1:
            raise OffTickError(
                f"amount {amount!r} is not a multiple of the tick size {self._tick_dec}"
            )
        return exact.numerator

    def _str_to_ticks(self, amount: str) -> int:
        # Strings are a boundary format (YAML, CLI), not the hot path: parse them exactly.
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"amount {amount!r} is not a number") from None
        if not value.is_finite():
            raise ValueError(f"amount must be a finite number, got {amount!r}")
        exact = Fraction(value) / self._tick_frac
        if exact.denominator != 1:
            raise OffTickError(
                f"amount {amount!r} is not a multiple of the tick size {self._tick_dec}"
            )
        return exact.numerator
