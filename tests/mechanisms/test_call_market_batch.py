"""The call market's batch paths against its general ones, over whole recordings, byte for byte.

With a recorder, a run of plain orders is booked in one pass (`Exchange.place_orders`) and the
call market makes the ``action`` and ``order`` texts from parts shared per good, side and lifetime;
a clearing's trades are converted and encoded with their good's text and price once. Every order
applied one by one (`ActionResolver.apply`) and every content left to the recorder's encoder must
record the same lines (timestamps aside): the same key order, float text and escapes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mesa_llm.mechanisms.call_market import CallMarketMechanism
from mesa_llm.world.resolver import ActionResolver
from tests.support.recordings import market_recording

#: busy markets: fees (prices and fees converted per clearing), several goods, odd goods' names
MARKETS = [
    ("double_auction", ["market.fee_per_unit=0.05", "populations.0.endowment.cash=400", "populations.0.count=20",
                        "populations.1.count=20", "populations.0.private.widget.units=10",
                        "populations.1.private.widget.units=10", "populations.1.endowment.holdings.widget=10"]),
    ("double_auction", ["populations.0.policy=zi_u", "populations.1.policy=zi_u", "tick_size=0.05",
                        "populations.0.params.quantity=2", "populations.1.params.quantity=3"]),
    ("energy_trading", ["market.fee_per_unit=0.01"]),
]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("scenario", "overrides"), MARKETS)
def test_the_batch_paths_record_what_the_general_paths_record(
    scenario: str, overrides: list[str], seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batched: list[int] = []
    place_orders = CallMarketMechanism.place_orders
    monkeypatch.setattr(CallMarketMechanism, "place_orders",
                        lambda self, orders, *args: batched.append(len(orders)) or place_orders(self, orders, *args))  # fmt: skip
    # the orders as `PlaceOrder` objects (a ZI population's go as columns otherwise: tests/mechanisms/test_call_market_columns.py)
    monkeypatch.setattr(ActionResolver, "_resolve_columns", lambda self, decisions, order, step: False)
    fast = market_recording(scenario, overrides, seed, tmp_path / "fast")
    assert max(batched) > 3  # the orders were placed in batches
    # every order through `apply`, every content encoded by the recorder (no text made)
    monkeypatch.setattr(ActionResolver, "_plain_orders", lambda self, agent, actions: False)
    general = market_recording(scenario, overrides, seed, tmp_path / "general", texts=False)
    assert len(fast) == len(general)
    for got, want in zip(fast, general, strict=True):
        assert got == want
    kinds = {re.search(r'"event_type":"(\w+)"', line).group(1) for line in fast}  # type: ignore[union-attr]
    assert {"action", "order", "trade", "clearing"} <= kinds
    if "fee_per_unit=0.05" in overrides[0]:  # several trades in a clearing, with fees
        assert any('"trade"' in line and '"buyer_fee":0.05' in line for line in fast)
        steps = [re.search(r'"step":(\d+)', line).group(1) for line in fast if '"event_type":"trade"' in line]  # type: ignore[union-attr]
        assert max(steps.count(step) for step in steps) > 1
