"""Metrics of a recording of a posted-price market (``mesa_llm.metrics`` entry points): they read
the recording only (``posted_price_setup`` and ``posted_price_outcome`` events), never the model,
and give nothing ({}) for a recording of another market.

- ``pricing`` (logit consumers): mean price and profit per consumer of the firms, the one-shot
  Bertrand-Nash and joint-profit (monopoly) prices and profits the run recorded, and Calvano et
  al.'s profit gain ``Delta = (pi - pi_N) / (pi_M - pi_N)`` over the whole run and over its second
  half (where learners and LLMs have settled); profits are averaged over firms and steps.
- ``adoption`` (Bass consumers): adopters and final adoption rate, the peak step of new adoptions,
  and the Bass coefficients (p, q) fitted to the adoption curve (least squares on new adopters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mesa_llm_consumer_markets.economics import fit_bass, profit_gain


def setup_of(recording: Any) -> dict[str, Any] | None:
    """The recorded ``posted_price_setup`` (None for a recording of another market)."""
    if not recording.count("posted_price_setup"):
        return None
    row = recording.table("posted_price_setup").iloc[0]
    return {k: row[k] for k in row.index}


def outcomes(recording: Any) -> Any:
    """The ``posted_price_outcome`` events, one row per step (a DataFrame)."""
    return recording.table("posted_price_outcome")


def _matrix(column: Any) -> np.ndarray:
    return np.asarray([list(v) for v in column], dtype=float)


def pricing(recording: Any) -> dict[str, float | int | None]:
    """Prices, profits and the profit gain of a logit posted-price market ({} for another)."""
    setup = setup_of(recording)
    if setup is None or setup.get("consumers") != "logit":
        return {}
    nash_profit = float(np.mean(setup["nash_profits"]))
    monopoly_profit = float(np.mean(setup["monopoly_profits"]))
    out: dict[str, float | int | None] = {
        "firms": len(setup["firms"]),
        "nash_price": float(np.mean(setup["nash_prices"])),
        "monopoly_price": float(np.mean(setup["monopoly_prices"])),
        "nash_profit": nash_profit,
        "monopoly_profit": monopoly_profit,
        "steps": 0,
        "mean_price": None,
        "mean_profit": None,
        "profit_gain": None,
        "profit_gain_second_half": None,
    }
    table = outcomes(recording)
    if table.empty:
        return out
    prices = _matrix(table["prices"])
    profits = _matrix(table["profit_per_consumer"])
    half = profits[len(profits) // 2 :]
    out.update(
        steps=len(table),
        mean_price=float(prices.mean()),
        mean_profit=float(profits.mean()),
        profit_gain=profit_gain(float(profits.mean()), nash_profit, monopoly_profit),
        profit_gain_second_half=profit_gain(float(half.mean()), nash_profit, monopoly_profit),
    )
    return out


def adoption_curve(recording: Any) -> tuple[np.ndarray, int] | None:
    """Cumulative adopters N_0..N_T and the market size M of a Bass market (None for another)."""
    setup = setup_of(recording)
    if setup is None or setup.get("consumers") != "bass":
        return None
    table = outcomes(recording)
    adopters = [0, *[int(x) for x in table["adopters"]]] if len(table) else [0]
    return np.asarray(adopters, dtype=float), int(setup["num_consumers"])


def adoption(recording: Any) -> dict[str, float | int | None]:
    """Adoption, its peak step and the fitted Bass coefficients ({} for another market)."""
    curve = adoption_curve(recording)
    if curve is None:
        return {}
    cumulative, market = curve
    setup = setup_of(recording) or {}
    new = np.diff(cumulative)
    fitted = fit_bass(cumulative, market)
    bass = setup.get("bass") or {}
    return {
        "consumers": market,
        "adopters": int(cumulative[-1]),
        "final_adoption_rate": float(cumulative[-1] / market),
        "peak_step": int(new.argmax()) + 1 if len(new) and new.max() > 0 else None,
        "peak_new_adopters": int(new.max()) if len(new) else None,
        "p": bass.get("p"),
        "q": bass.get("q"),
        "fitted_p": fitted[0] if fitted else None,
        "fitted_q": fitted[1] if fitted else None,
    }


__all__ = ["adoption", "adoption_curve", "outcomes", "pricing", "setup_of"]
