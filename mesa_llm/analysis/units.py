"""Currency units and ticks of a recording: every conversion goes through `mesa_llm.market.Money`.

Recorded money is in currency units (exact multiples of the header's ``tick_size``); the market
computations of the analysis (equilibrium, surplus) run in integer ticks, as the model's do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from mesa_llm.analysis.loader import Recording
from mesa_llm.market.money import Money


@lru_cache(maxsize=32)
def _money(tick: float) -> Money:
    return Money(tick)


def money_of(rec: Recording) -> Money:
    """The recording's `Money` (its header's tick size)."""
    return _money(rec.tick_size)


def to_ticks(amount: float, tick: float) -> int:
    """A recorded amount in ticks (the nearest tick: recordings hold on-tick amounts)."""
    return _money(tick).round_to_tick(amount)


def to_units(ticks: float, tick: float, extra: int = 0) -> float:
    """Ticks in currency units; fractional ticks (a midpoint) keep `extra` more decimals."""
    money = _money(tick)
    if extra == 0 and float(ticks).is_integer():
        return money.to_units(int(ticks))
    return round(ticks * money.tick_size, money.decimals + extra)


def decimals(tick: float) -> int:
    """Decimal places of the tick (0.01 -> 2)."""
    return _money(tick).decimals


def finite(x: Any) -> float | None:
    """A finite float, or None (NaN, None, inf, not a number)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None



def goods_of(rec: Recording, *tables: pd.DataFrame) -> list[str]:
    """The header's goods, then any other good named in `tables`, in order of appearance."""
    goods = list((rec.header.get("goods") or {}).keys())
    for table in tables:
        if "good" in table:
            goods += [
                g
                for g in pd.unique(table["good"].dropna())
                if isinstance(g, str) and g not in goods
            ]
    return goods


def json_ready(value: Any) -> Any:
    """Floats (NaN -> None), ints, strings, bools, None, lists and dicts of those."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [json_ready(v) for v in list(value)]
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def mean_of(series: pd.Series | Sequence[Any]) -> float | None:
    """Mean of the numeric entries; None when there are none."""
    values = pd.to_numeric(pd.Series(list(series), dtype=object), errors="coerce").dropna()
    return float(values.mean()) if len(values) else None
