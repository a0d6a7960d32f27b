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

import mesa_llm.mechanisms.call_market as call_market
from mesa_llm import payloads
from mesa_llm.market import Money
from mesa_llm.mechanisms.call_market import CallMarketMechanism, trade_json
from mesa_llm.recording.recorder import _make_encoder
from mesa_llm.world.exchange import Trade
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
    made: list[int] = []  # each clearing's trades whose texts were made together (`_trade_texts`)
    trade_texts = call_market._trade_texts
    monkeypatch.setattr(call_market, "_trade_texts", lambda *args: (made.append(len(texts)) if (texts := trade_texts(*args))
                                                                     is not None else None) or texts)  # fmt: skip
    place_orders = CallMarketMechanism.place_orders
    monkeypatch.setattr(CallMarketMechanism, "place_orders",
                        lambda self, orders, *args: batched.append(len(orders)) or place_orders(self, orders, *args))  # fmt: skip
    # the orders as `PlaceOrder` objects (a ZI population's go as columns otherwise: tests/mechanisms/test_call_market_columns.py)
    monkeypatch.setattr(ActionResolver, "_resolve_columns", lambda self, decisions, order, step: False)
    fast = market_recording(scenario, overrides, seed, tmp_path / "fast")
    assert max(batched) > 3  # the orders were placed in batches
    assert sum(made) == sum('"event_type":"trade"' in line for line in fast)  # every trade's text made together
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


def _trades(fee: int, **change: object) -> list[Trade]:
    """A clearing's trades at 9,996 ticks (one with ``change``'s fields changed, at index 3)."""
    trades = [Trade("widget", 9996, 1 + i % 3, 10 + i, 90 - i, 500 + 2 * i, 501 + 2 * i, fee * (1 + i % 3), fee * (1 + i % 3))
              for i in range(8)]  # fmt: skip
    for name, value in change.items():
        setattr(trades[3], name, value)
    return trades


@pytest.mark.parametrize("fee", [0, 3, 7])
def test_a_clearings_trade_texts_are_each_trades_own(fee: int) -> None:
    """`_trade_texts`: each trade's text is `trade_json` of its content (`payloads.trade_record`),
    which is the recorder's encoding of it: fees of no amount and of several, two decimals and three."""
    encode = _make_encoder()
    for money in (Money(tick_size=0.01), Money(tick_size=0.005)):
        trades = _trades(fee)
        texts = call_market._trade_texts('"widget"', trades, money)
        assert texts is not None
        assert texts == [trade_json(payloads.trade_record(t, money)) for t in trades]
        assert texts == [encode(payloads.trade_record(t, money)) for t in trades]


@pytest.mark.parametrize(
    "change",
    [{"price": 9995}, {"good": "gadget"}, {"buyer_id": True}, {"seller_id": "s1"}, {"quantity": 2.0},
     {"buy_order_id": None}, {"buyer_fee": 1.5}],
)  # fmt: skip
def test_no_clearing_trade_texts_off_their_path(change: dict[str, object]) -> None:
    """Another price or good, a value not an int (a bool party, a text id, a float quantity or
    fee): no texts made together (each trade's own `_trade_text`, or the recorder's encoder)."""
    assert call_market._trade_texts('"widget"', _trades(0, **change), Money(tick_size=0.01)) is None
    assert call_market._trade_texts('"gadget"', _trades(0), Money(tick_size=0.01)) is None  # not the good's text
