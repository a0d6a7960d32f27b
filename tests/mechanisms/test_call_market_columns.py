"""Batched ZI populations' orders go from decide to the call market as columns (`OrderColumns`,
one `ColumnDecision` per agent, `ActionResolver._resolve_columns`, `CallMarketMechanism.place_columns`,
`Exchange.place_columns`), without a `PlaceOrder` per order. Against the per-order path (every
decision's `PlaceOrder` objects applied one by one, every content encoded by the recorder), whole
recordings must be the same byte for byte (timestamps aside): refusals (cash short with a fee),
expiries, several goods and quantities, a market without a call market, and scenarios whose other
agents make the step fall back to the per-order path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mesa_llm.agents.policies.base import OrderColumns
from mesa_llm.mechanisms.call_market import CallMarketMechanism, _text_batch
from mesa_llm.model import MarketModel
from mesa_llm.recording.recorder import SimulationRecorder, _make_encoder
from mesa_llm.scenario import load_scenario
from mesa_llm.world.resolver import ActionResolver
from tests.support.recordings import market_recording, untimed_lines

#: (scenario, overrides, whether every step's decisions are columns)
MARKETS = [
    # a fee the ZI bid does not count: bids beyond the cash are refused (insufficient funds)
    ("double_auction", ["market.fee_per_unit=5", "populations.0.endowment.cash=80", "populations.0.count=20",
                        "populations.1.count=20", "populations.0.private.widget.units=10",
                        "populations.1.private.widget.units=10", "populations.1.endowment.holdings.widget=10"], True),
    ("double_auction", ["populations.0.policy=zi_u", "populations.1.policy=zi_u", "tick_size=0.05",
                        "populations.0.params.quantity=2", "populations.1.params.quantity=3"], True),
    ("double_auction", ["market.call_market=false"], True),  # every order refused: no call market
    ("energy_trading", ["market.fee_per_unit=0.01"], False),  # fallback policies and a regulator between them
    ("balanced", [], False),  # other policies between the ZI traders: the per-order path
]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("scenario", "overrides", "columns"), MARKETS)
def test_the_columns_record_what_the_per_order_path_records(
    scenario: str, overrides: list[str], columns: bool, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed: list[int] = []
    place_columns = CallMarketMechanism.place_columns
    monkeypatch.setattr(CallMarketMechanism, "place_columns",
                        lambda self, cols, positions, *args: placed.append(len(positions)) or place_columns(self, cols, positions, *args))  # fmt: skip
    fast = market_recording(scenario, overrides, seed, tmp_path / "fast")
    assert (max(placed, default=0) > 3) is columns  # the steps went as columns (or, mixed, did not)
    # every decision's orders as `PlaceOrder` objects through `apply`, every content encoded by the recorder
    monkeypatch.setattr(ActionResolver, "_resolve_columns", lambda self, decisions, order, step: False)
    monkeypatch.setattr(ActionResolver, "_plain_orders", lambda self, agent, actions: False)
    general = market_recording(scenario, overrides, seed, tmp_path / "general", texts=False)
    assert len(fast) == len(general)
    for got, want in zip(fast, general, strict=True):
        assert got == want
    kinds = {re.search(r'"event_type":"(\w+)"', line).group(1) for line in fast}  # type: ignore[union-attr]
    assert {"action", "action_rejected"} & kinds
    if "market.fee_per_unit=5" in overrides:
        assert any("insufficient funds" in line for line in fast)
    if "market.call_market=false" in overrides:
        assert "order" not in kinds and any("no call market" in line for line in fast)


def test_the_columns_lines_go_as_one_typed_batch_and_a_subscriber_gets_their_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a subscriber a step's action and order lines go to the recorder in one call, typed
    per line; a subscriber to orders gets each order's and action's content (made from the columns
    only then) in its place, equal to what the recording holds."""
    typed: list[int] = []
    record_texts = SimulationRecorder.record_texts
    monkeypatch.setattr(SimulationRecorder, "record_texts", lambda self, types, *args, **kwargs: (
        typed.append(len(types)) if isinstance(types, list) else None) or record_texts(self, types, *args, **kwargs))  # fmt: skip
    spec = load_scenario("double_auction", overrides=["populations.0.count=10", "populations.1.count=10"])
    quiet = MarketModel(spec, seed=4, steps=4, output_dir=tmp_path / "quiet", run_name="r")
    quiet.run()
    assert len(typed) == 4 and min(typed) >= 2 * 15  # one batch a step, two lines an order
    typed.clear()
    heard: list[tuple[str, dict[str, object], int | None]] = []
    model = MarketModel(spec, seed=4, steps=4, output_dir=tmp_path / "heard", run_name="r")
    model.events.subscribe("order", lambda event: heard.append((event.event_type, dict(event.content), event.agent_id)))
    model.events.subscribe("action", lambda event: heard.append((event.event_type, dict(event.content), event.agent_id)))
    model.run()
    assert not typed  # a subscriber wants them: one by one
    lines = untimed_lines(Path(model.recording_path))  # type: ignore[arg-type]
    want = untimed_lines(Path(quiet.recording_path))  # type: ignore[arg-type]
    assert lines[1:] == want[1:]
    recorded = [json.loads(line) for line in lines[1:]]
    assert heard == [(e["event_type"], e["content"], e["agent_id"]) for e in recorded if e["event_type"] in ("order", "action")]
    assert len(heard) > 100


def _unrecorded(scenario: str, overrides: list[str], seed: int) -> tuple[object, ...]:
    model = MarketModel(load_scenario(scenario, overrides=overrides), seed=seed, steps=12, record=False)
    model.run()
    accounts = [(a.account_id, a.cash, dict(a.holdings), a.reserved_cash, dict(a.reserved_goods))
                for a in model.exchange.ledger.accounts()]  # fmt: skip
    agents = [(a.unique_id, dict(a.units_bought), dict(a.units_sold), a.realised_surplus, list(a.rejections))
              for a in model.traders]  # fmt: skip
    tallies = model.tallies
    return accounts, agents, tallies.trades, tallies.volume, tallies.buyer_fees, dict(tallies.trade_value), model.rng.random()


@pytest.mark.parametrize(("scenario", "overrides", "columns"), MARKETS[:2])
def test_without_a_recorder_the_columns_do_what_the_per_order_path_does(
    scenario: str, overrides: list[str], columns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed: list[int] = []
    place_columns = CallMarketMechanism.place_columns
    monkeypatch.setattr(CallMarketMechanism, "place_columns",
                        lambda self, cols, positions, *args: placed.append(len(positions)) or place_columns(self, cols, positions, *args))  # fmt: skip
    fast = _unrecorded(scenario, overrides, 3)
    assert max(placed) > 3
    monkeypatch.setattr(ActionResolver, "_resolve_columns", lambda self, decisions, order, step: False)
    assert fast == _unrecorded(scenario, overrides, 3)


def _order_columns(goods: list[object], rng_seed: int) -> tuple[OrderColumns, list[int], list[int]]:
    """Orders of agents 1.. of ``goods`` in turn, both sides, few prices, quantities 1-3 (texts kept per
    price and quantity meet again with another quantity), placed with ids 500.. (positions 2..)."""
    rng = np.random.default_rng(rng_seed)
    columns = OrderColumns()
    for i in range(60):
        columns.agents.append(SimpleNamespace(unique_id=i + 1))
        columns.goods.append(goods[i % len(goods)])
        columns.buys.append(bool(rng.random() < 0.5))
        columns.prices.append(float(rng.choice([1.5, 2.25, 99.99, 0.1 + 0.2])))
        columns.quantities.append(int(rng.integers(1, 4)))
    positions = list(range(2, 60))
    return columns, positions, list(range(500, 500 + len(positions)))


@pytest.mark.parametrize("goods", [["widget"], ["widget", "gadget", 'odd "good"']])
def test_a_text_batch_line_is_its_content_encoded(goods: list[object]) -> None:
    """Each line of a column batch's `TextBatch` (an order's ``action``, then its ``order``) is the
    recorder's encoding of its content, for one good and several, the same prices met with other
    quantities and sides (in a second batch, from the kept texts)."""
    encode = _make_encoder()
    for seed in (1, 2):
        columns, positions, placed = _order_columns(goods, seed)
        batch = _text_batch(columns, positions, placed)  # type: ignore[arg-type]
        assert batch is not None and len(batch) == 2 * len(positions)
        for event_type, make, _, text in batch:
            assert event_type in ("action", "order")
            assert text == encode(make())
        assert list(batch.agent_ids) == [columns.agents[k].unique_id for k in positions for _ in (0, 1)]
        want = [(k, order_id) for k, order_id in zip(positions, placed, strict=True)]
        got = [(json.loads(t)["order_id"]) for t in batch.texts[1::2]]
        assert got == [order_id for _, order_id in want]
        contents = [json.loads(t) for t in batch.texts[1::2]]
        assert [(c["good"], c["side"], c["price"], c["quantity"]) for c in contents] == [
            (columns.goods[k], "buy" if columns.buys[k] else "sell", columns.prices[k], columns.quantities[k])
            for k in positions
        ]


def test_no_text_batch_off_its_path() -> None:
    """A refused order, a good that is not a string, a price not a float, a quantity not an int: no
    batch (one by one)."""
    for change in ("refused", "good", "price", "quantity"):
        columns, positions, placed = _order_columns(["widget"], 3)
        if change == "refused":
            placed[5] = "insufficient funds"  # type: ignore[call-overload]
        elif change == "good":
            columns.goods[7] = 7  # type: ignore[call-overload]
        elif change == "price":
            columns.prices[7] = 2  # type: ignore[call-overload]
        else:
            columns.quantities[7] = True
        assert _text_batch(columns, positions, placed) is None  # type: ignore[arg-type]


def test_a_text_batch_from_the_exchanges_picks_is_the_one_read_from_the_columns() -> None:
    """The orders' values as `Exchange.place_columns` read them (``picked``) make the batch
    `_text_batch` makes reading the columns itself: the same lines, agents and contents."""
    for goods in (["widget"], ["widget", "gadget"]):
        columns, positions, placed = _order_columns(goods, 4)
        pick = [[getattr(columns, name)[k] for k in positions] for name in ("agents", "goods", "buys", "prices", "quantities")]
        read, given = _text_batch(columns, positions, placed), _text_batch(columns, positions, placed, pick)  # type: ignore[arg-type]
        assert read is not None and given is not None
        assert given.texts == read.texts and list(given.agent_ids) == list(read.agent_ids)
        assert [make() for make in given.sources] == [make() for make in read.sources]
