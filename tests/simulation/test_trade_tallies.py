"""A clearing's trades reach the tallies as one `TradeEvents` batch (`MarketTallies.on_trades`)
when nobody is handed its events as they are recorded: the tallies (trades, volume, fees, prices,
the induced surplus), every agent's fills and the recording are those of counting each ``trade``
event in its place (`MarketTallies.on_event`, the path a subscriber to trades or clearings gets),
with fees and without, several goods, recording on and off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from mesa_llm.tallies import MarketTallies

_TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')

MARKETS = [
    ("double_auction", ["market.fee_per_unit=0.03"]),
    ("double_auction", ["populations.0.policy=zi_u", "populations.1.policy=zi_u", "populations.0.params.quantity=2",
                        "populations.1.params.quantity=3"]),
    ("energy_trading", ["market.fee_per_unit=0.01"]),
]


def _run(scenario: str, overrides: list[str], seed: int, folder: Path | None, watch: str | None) -> tuple[Any, ...]:
    model = MarketModel(load_scenario(scenario, overrides=overrides), seed=seed, steps=8, output_dir=folder,
                        run_name="r", record=folder is not None)  # fmt: skip
    heard: list[tuple[int, int]] = []
    if watch is not None:  # a subscriber: the trades counted one by one, in their places
        model.events.subscribe(watch, lambda event: heard.append((event.step, model.tallies.trades)))
    model.run()
    t = model.tallies
    tallies = (t.trades, t.volume, t.buyer_fees, t.seller_fees, dict(t.trade_value), dict(t.trade_units),
               {g: (s.count, s.total, s.total_sq) for g, s in t.price_stats.items()},
               (t.induced_surplus.realised, t.induced_surplus.imported, t.induced_surplus.exported,
                t.induced_surplus.passed), t.efficiency_report())  # fmt: skip
    agents = [(a.unique_id, dict(a.units_bought), dict(a.units_sold), a.realised_surplus, list(a.recent_trades))
              for a in model.traders]  # fmt: skip
    lines = []
    if model.recording_path is not None:
        lines = [_TIMESTAMP.sub("", line) for line in Path(model.recording_path).read_text().splitlines()[1:]]
    return tallies, agents, lines, heard


@pytest.mark.parametrize("record", [True, False])
@pytest.mark.parametrize(("scenario", "overrides"), MARKETS)
def test_a_clearing_counted_at_once_as_each_trade_in_its_place(
    scenario: str, overrides: list[str], record: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    on_trades = MarketTallies.on_trades
    monkeypatch.setattr(MarketTallies, "on_trades",
                        lambda self, fills, step: batches.append(len(fills)) or on_trades(self, fills, step))  # fmt: skip
    for seed in (1, 2):
        batches.clear()
        tallies, agents, lines, _ = _run(scenario, overrides, seed, tmp_path / f"a{seed}" if record else None, None)
        assert sum(batches) > 0  # the batch path ran
        for watch in ("trade", "clearing"):
            batches.clear()
            want = _run(scenario, overrides, seed, tmp_path / f"{watch}{seed}" if record else None, watch)
            assert not any(batches)  # a subscriber: one by one (a step without trades aside)
            assert (tallies, agents, lines) == want[:3]
            assert tallies[0] > 5 and want[3]


def test_a_subscriber_to_clearings_sees_the_tallies_before_their_trades(tmp_path: Path) -> None:
    """One by one, a clearing is published before its trades are counted (as always)."""
    *_, heard = _run("double_auction", [], 3, tmp_path, "clearing")
    model_trades = [trades for _, trades in heard]
    assert model_trades == sorted(model_trades) and model_trades[0] == 0
