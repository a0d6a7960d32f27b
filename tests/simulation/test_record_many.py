"""The model's `_record_many`: a batch of events has the effect of `_record` on each in turn: the
same recording, tallies, LLM activity counts and subscribers, each subscriber seeing its event
when everything before it, and nothing after it, is recorded; and a step whose observations are
recorded as a batch records what recording them one by one records."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mesa_llm.model import MarketModel
from mesa_llm.recording import SimulationEvent
from mesa_llm.scenario import load_scenario

_TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')


def _model(tmp_path: Path, name: str) -> MarketModel:
    return MarketModel(load_scenario("double_auction"), seed=2, steps=3, output_dir=tmp_path / name, run_name="r")


def _lines(model: MarketModel) -> list[str]:
    model.recorder.flush()  # type: ignore[union-attr]
    return [_TIMESTAMP.sub("", line) for line in Path(model.recording_path).read_text().splitlines()]  # type: ignore[arg-type]


def _items(model: MarketModel) -> list[tuple[str, Any, int | None, str | None]]:
    buyer, seller = model.traders[0].unique_id, model.traders[-1].unique_id
    trade = {"good": "widget", "price": 100.0, "quantity": 2, "buyer_id": buyer, "seller_id": seller,
             "buy_order_id": 1, "sell_order_id": 2, "buyer_fee": 0.0, "seller_fee": 0.0}  # fmt: skip
    llm_action = {"type": "place_order", "arguments": {"good": "widget", "side": "buy"}}
    return [
        ("order", {"order_id": 1, "side": "buy", "good": "widget", "price": 100.0, "quantity": 2, "lifetime": "day"}, buyer, None),
        ("action", lambda: llm_action, buyer, model.recorder.encode(llm_action)),  # type: ignore[union-attr]
        ("trade", trade, None, None),
        ("note", {"n": 1}, seller, None),
        ("action", {"type": "wait", "arguments": {}}, seller, None),
        ("trade", dict(trade, quantity=1), None, None),
        ("note", {"n": 2}, None, None),
    ]  # fmt: skip


def test_a_batch_has_the_effect_of_recording_each_event(tmp_path: Path) -> None:
    models = one, many = _model(tmp_path, "one"), _model(tmp_path, "many")
    seen: dict[int, list[tuple[str, Any, int]]] = {id(one): [], id(many): []}
    for model in models:
        model.llm_activity.add_agent(model.traders[0].unique_id, "llm")  # its events are counted
        recorder = model.recorder
        assert recorder is not None

        def watch(event: SimulationEvent, model: MarketModel = model, recorder: Any = recorder) -> None:
            # what is recorded when the subscriber hears of the event: everything up to it
            seen[id(model)].append((event.event_id, event.content, recorder.total_events_recorded))

        model.events.subscribe("note", watch)
    for item in _items(one):
        one._record(*item)
    many._record_many(_items(many))
    assert _lines(many) == _lines(one)
    assert seen[id(many)] == seen[id(one)] and len(seen[id(one)]) == 2
    assert many.tallies.trades == one.tallies.trades == 2 and many.tallies.volume == 3
    assert many.llm_activity.to_dict() == one.llm_activity.to_dict()
    assert many.llm_activity.populations["llm"].actions_applied == 1


def test_a_subscriber_that_records_sees_its_event_in_place(tmp_path: Path) -> None:
    """A subscriber recording an event of its own: it lands right after the event it heard of."""
    models = one, many = _model(tmp_path, "one"), _model(tmp_path, "many")
    for model in models:
        model.events.subscribe("note", lambda event, m=model: m._record("echo", {"of": event.event_id}))
    for item in _items(one):
        one._record(*item)
    many._record_many(_items(many))
    lines = _lines(many)
    assert lines == _lines(one)
    types = [re.search(r'"event_type":"(\w+)"', line).group(1) for line in lines[-6:]]  # type: ignore[union-attr]
    assert types == ["note", "echo", "action", "trade", "note", "echo"]


def test_observations_recorded_as_a_batch_or_one_by_one_give_the_same_recording(tmp_path: Path) -> None:
    spec = load_scenario("double_auction", overrides=["social.gossip=true", "populations.0.policy=noise"])
    batched = MarketModel(spec, seed=4, steps=8, output_dir=tmp_path / "batched", run_name="r")
    single = MarketModel(spec, seed=4, steps=8, output_dir=tmp_path / "single", run_name="r")
    single.observer.record_many = None  # each observation through `_record`
    for model in (batched, single):
        model.run()
    assert _lines(batched) == _lines(single)
    assert sum('"event_type":"observation"' in line for line in _lines(batched)) == 8 * len(batched.traders)


def test_a_subscription_made_during_a_batch_hears_the_rest_of_it(tmp_path: Path) -> None:
    model = _model(tmp_path, "m")
    heard: list[str] = []
    model.events.subscribe("note", lambda event: model.events.subscribe("order", lambda e: heard.append(e.event_type)))
    items: list[Any] = [("order", {"order_id": 1}, 1, None), ("note", {"n": 1}, None, None), ("order", {"order_id": 2}, 1, None)]
    model._record_many(items)
    assert heard == ["order"]
