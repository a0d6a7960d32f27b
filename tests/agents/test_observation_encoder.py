"""Recorded observations are spliced from cached JSON parts: the text must stay what encoding the
observation's dict gives, through trades, value shifts and shocks (a stale part is a wrong record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.agents.observation import (
    AccountView,
    GoodSnapshot,
    MarketSnapshot,
    Observation,
    ObservationEncoder,
    PrivateView,
)
from mesa_llm.model import MarketModel
from mesa_llm.recording.recorder import _make_encoder
from mesa_llm.scenario import load_scenario


def _checked_texts(model: MarketModel) -> list[int]:
    """Check every observation the model records: its text is the encoding of its dict (both the
    plain market's batch and the per-agent encoder); returns a counter of those checked."""
    observer, encode = model.observer, model.recorder.encode  # type: ignore[union-attr]
    checked = [0]

    def check(item: tuple[str, Any, int | None, str | None]) -> None:
        _, content, _, text = item
        assert text == encode(content() if callable(content) else content)
        checked[0] += 1

    record, record_many = observer.record, observer.record_many
    assert record is not None and record_many is not None

    def one(*item: Any) -> None:
        check(item)
        record(*item)

    def many(items: list[Any]) -> None:
        for item in items:
            check(item)
        record_many(items)

    observer.record, observer.record_many = one, many
    return checked


@pytest.mark.parametrize(
    ("scenario", "steps"),
    [
        ("double_auction", 30),
        ("commodity_exchange", 40),
        ("energy_trading", 40),
        ("financial_market_stress", 40),
        ("balanced", 20),
        ("bilateral_haggle", 20),
    ],
)
def test_every_recorded_observation_is_the_encoding_of_what_the_agent_saw(
    scenario: str, steps: int, tmp_path: Path
) -> None:
    model = MarketModel(load_scenario(scenario), seed=3, steps=steps, output_dir=tmp_path, run_name="r")
    checked = _checked_texts(model)
    seen: list[dict[str, Any]] = []
    prepare = model.observer.observe

    def observe(*args: Any, **kwargs: Any) -> Any:
        out = prepare(*args, **kwargs)
        seen.extend(obs.to_dict() for _, obs in out)
        return out

    model.observer.observe = observe  # type: ignore[method-assign]
    model.run()
    assert model.tallies.trades > 0 or model.desk is not None  # a negotiation scenario: contracts
    assert checked[0] == len(seen) >= steps * len(model.traders) // 2
    recorded = [
        json.loads(line)["content"]
        for line in Path(model.recording_path).read_text().splitlines()  # type: ignore[arg-type]
        if '"event_type":"observation"' in line
    ]
    assert recorded == json.loads(json.dumps(seen))


def test_cash_or_reservations_changed_alone_reach_the_next_recorded_observation(tmp_path: Path) -> None:
    model = MarketModel(load_scenario("double_auction"), seed=1, steps=6, output_dir=tmp_path, run_name="r")
    checked = _checked_texts(model)
    seller = next(a for a in model.traders if a.role.value == "seller")
    ledger = model.exchange.ledger
    changes = [
        lambda: ledger.transfer_cash(seller.unique_id, "house", 1),  # a fine: cash alone
        lambda: ledger.reserve_cash(seller.unique_id, 2),
        lambda: ledger.reserve_goods(seller.unique_id, "widget", 1),
        lambda: ledger.issue(seller.unique_id, cash=5),
    ]
    for change in changes:
        model.step()
        change()
    model.step()
    model.finish()
    cash = [
        json.loads(line)["content"]["account"]
        for line in Path(model.recording_path).read_text().splitlines()  # type: ignore[arg-type]
        if '"event_type":"observation"' in line and f'"agent_id":{seller.unique_id},' in line
    ]
    assert len(cash) == 5 and checked[0] == 5 * len(model.traders)
    assert cash[-1]["reserved_cash"] == 0.02 and cash[-1]["reserved_goods"] == {"widget": 1}
    assert len({json.dumps(c) for c in cash}) == 5  # each change reached the next observation


def test_a_trade_changes_the_recorded_account_and_private_values(tmp_path: Path) -> None:
    model = MarketModel(load_scenario("double_auction"), seed=1, steps=40, output_dir=tmp_path, run_name="r")
    model.run()
    by_agent: dict[int, list[dict[str, Any]]] = {}
    for line in Path(model.recording_path).read_text().splitlines():  # type: ignore[arg-type]
        event = json.loads(line)
        if event["event_type"] == "observation":
            by_agent.setdefault(event["agent_id"], []).append(event["content"])
    trader = next(a for a in model.traders if a.units_bought.get("widget") or a.units_sold.get("widget"))
    history = by_agent[trader.unique_id]
    cash = {o["account"]["cash"] for o in history}
    private = {json.dumps(o["private"]) for o in history}
    trades = {json.dumps(o["recent_trades"]) for o in history}
    assert len(cash) > 1 and len(private) > 1 and len(trades) > 1


def _observation(name: str, goods: dict[str, Any]) -> Observation:
    market = MarketSnapshot(
        goods={g: GoodSnapshot(good=g, reference_price=1.0, min_price=0.01, max_price=2.0) for g in goods}
    )
    return Observation(
        step=1,
        horizon=2,
        agent_id=7,
        name=name,
        role="buyer",
        tick_size=0.01,
        account=AccountView(
            cash=1.5, holdings=dict(goods), reserved_cash=0.0, reserved_goods={}, available_cash=1.5, available_goods={}
        ),
        private={g: PrivateView(values=[1.0]) for g in goods},
        market=market,
        open_orders=[{"order_id": 1, "good": "market", "note": '"market":null'}],
        messages=[{"text": '","market":null,"x":"'}],
    )


@pytest.mark.parametrize(
    "name", ['plain', '"market":null', 'a","market":null,"b":"', "\\", "ünï\u2028code"]
)
def test_the_market_part_is_spliced_in_at_its_own_key_whatever_the_names(name: str) -> None:
    encode = _make_encoder()
    observation = _observation(name, {"market": 3, "widget": 1})
    assert observation.to_json(encode) == encode(observation.to_dict())
    assert json.loads(observation.to_json(encode))["market"] == observation.market.to_dict()
    # with keys, through the per-agent cache, twice (the second time from the cache)
    encoder = ObservationEncoder(encode)
    observation._keys = ((1,), (2,), ())
    for _ in range(2):
        assert encoder.to_json(observation) == encode(observation.to_dict())


def test_another_encoder_does_not_get_the_market_text_cached_for_the_first() -> None:
    observation = _observation("x", {"widget": 1})
    compact = _make_encoder()
    assert observation.market.to_json(compact) == compact(observation.market.to_dict())

    def spaced(value: Any) -> str:
        return json.dumps(value)

    assert observation.market.to_json(spaced) == json.dumps(observation.market.to_dict())


def test_the_same_agent_with_other_tools_messages_or_types_gets_its_own_text() -> None:
    encode = _make_encoder()
    encoder = ObservationEncoder(encode)
    observation = _observation("x", {"widget": 1})
    observation.messages = []
    observation.open_orders = []
    observation._keys = ((1,), (2,), ())
    variants: list[dict[str, Any]] = [
        {"available_actions": ["place_order", "wait"]},
        {"available_actions": ["wait"]},
        {"available_actions": ["wait"], "rejections": [{"type": "place_order", "reason": "no"}]},
        {"available_actions": ["wait"], "suspended_until": 4},
        {"available_actions": ["wait"], "reputation": {"1": 0.5}},
        {"available_actions": ["wait"], "mechanisms": {"shop": {"price": 1.0}}},
        {"available_actions": ["wait"], "open_orders": [{"order_id": 2}]},
        {"available_actions": ["wait"], "step": 2, "horizon": 9},
        {"available_actions": ["wait"], "tick_size": 1, "name": "y"},
        {"available_actions": ["wait"], "messages": ()},
        {"available_actions": ("wait",)},
        {"available_actions": ["place_order", "wait"]},
    ]
    for changes in variants:
        for name, value in {"rejections": [], "suspended_until": None, "reputation": {}, "mechanisms": {},
                            "open_orders": [], "step": 1, "horizon": 2, "tick_size": 0.01, "name": "x",
                            "messages": [], **changes}.items():  # fmt: skip
            setattr(observation, name, value)
        content = observation.to_dict()
        assert encoder.to_json(observation) == encode(content), changes


def test_a_trade_record_is_encoded_once_while_it_stays_in_the_window() -> None:
    compact = _make_encoder()
    encoded: list[Any] = []

    def counting(value: Any) -> str:
        encoded.append(value)
        return compact(value)

    encoder = ObservationEncoder(counting)
    observation = _observation("x", {"widget": 1})
    observation.messages = []
    observation.open_orders = []
    window: list[dict[str, Any]] = []
    for step in range(1, 9):
        window = [*window, {"step": step, "good": "widget", "side": "buy", "price": step / 4, "quantity": 1}][-3:]
        observation.recent_trades = window
        observation._keys = ((1,), (2,), tuple(window))
        content = observation.to_dict()
        assert encoder.to_json(observation) == compact(content)
    trade_texts = [v for v in encoded if isinstance(v, dict) and "side" in v]
    assert len(trade_texts) == 8  # each of the 8 records once, not once per window it is in
