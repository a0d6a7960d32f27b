"""The changed agents' texts made together (`ObservationBatch._refresh_changed`): each part must be
the reference's text however the schedule windows move, and a run whose agents' recent trades roll
past a small window, with schedule windows moving and a private part changing alone, records what the agent-by-agent path records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesa_llm.agents.observation import private_json
from mesa_llm.agents.observation_batch import (
    ObservationBatch,
    _head_json,
    _private_views,
    _Schedules,
    _trade_json,
)
from mesa_llm.market import Money
from mesa_llm.model import MarketModel
from mesa_llm.recording.recorder import _make_encoder
from mesa_llm.scenario import load_scenario
from tests.support.recordings import untimed_lines


@pytest.mark.parametrize("moves", [[1] * 30, [2, 3, 1, 7, 1, 1, 4], [11, 1, 1], [0, 0, 1, 0, 2]])
def test_a_moving_window_is_the_encoders_text_of_the_units_shown(moves: list[int]) -> None:
    money = Money(0.01)
    ticks = list(range(900, 0, -17))
    schedules, start, shown = _Schedules(), 0, 5
    for move in [0, *moves]:
        start += move
        end = min(start + shown, len(ticks))
        expected = json.dumps([money.to_units(t) for t in ticks[start:end]], separators=(",", ":"))
        before = schedules.joined(ticks, start, start + shown)  # None only while not joined: never a wrong text
        assert before is None or f"[{before}]" == expected
        assert schedules.text(ticks, start, shown, money.to_units) == expected
        # once asked for, the window is joined: the slice alone (`ObservationBatch._private_text`'s)
        assert f"[{schedules.joined(ticks, start, start + shown)}]" == expected


def _recording(columns: bool, out: Path) -> list[str]:
    overrides = ["market.recent_trades=2", "market.private_units_shown=3"]
    model = MarketModel(load_scenario("double_auction", overrides=overrides), seed=5, steps=15, output_dir=out, run_name="r")
    model.observer.columns = columns
    while model.running:
        if model.steps == 6:  # a private part shown anew with no account change (most agents trade not)
            for agent in model.traders:
                agent.units_shown = 2
        if model.steps == 9:  # a head shown anew (traders and not: the changed agents' pass compares it)
            for agent in model.traders[::3]:
                agent.name = f"renamed {agent.name} ü"
        model.step()
    model.finish()
    assert model.recording_path is not None
    return [line for line in untimed_lines(Path(model.recording_path)) if '"simulation_start"' not in line]


def test_rolling_recent_trades_and_moving_windows_record_as_agent_by_agent(tmp_path: Path) -> None:
    reference = _recording(False, tmp_path / "ref")
    fast = _recording(True, tmp_path / "fast")
    assert sum('"recent_trades":[{' in line for line in fast) > 50  # trades shown, rolling
    assert fast == reference


def test_unit_texts_kept_by_tick_are_each_schedules_and_each_currencys() -> None:
    """A unit's text is kept by its ticks for every schedule: two schedules sharing ticks, one of
    numpy ints (not kept) and a currency unit changed (`_Schedules.clear`) each give the encoder's."""
    np = pytest.importorskip("numpy")
    schedules = _Schedules()
    for money in (Money(0.01), Money(0.25), Money(1)):
        schedules.clear()  # as `ObservationBatch.begin` does when the money is another
        shared = list(range(100, 160, 3))
        for ticks in (shared, [*shared[5:], *shared[:5]], list(np.arange(100, 160, 3))):
            for start in (0, 4, 9):
                expected = json.dumps([money.to_units(t) for t in ticks[start : start + 6]], separators=(",", ":"))
                assert schedules.text(ticks, start, 6, money.to_units) == expected


def test_a_private_part_sliced_is_the_encoders_for_each_key() -> None:
    """`ObservationBatch._private_text`'s one-good slices: the reference's text (`private_json` of
    `_private_views`) for windows moving, reaching the schedule's end, an empty side, nothing shown."""
    encode = _make_encoder()
    money = Money(0.01)
    batch = ObservationBatch(encode)
    batch._money = money
    values, costs = list(range(900, 700, -7)), list(range(300, 500, 11))
    for shown in (0, 1, 4):
        for bought, sold in ((0, 0), (1, 0), (2, 3), (3, 3), (len(values) - 2, 1), (len(values), len(costs)), (40, 40)):
            for good_values, good_costs in ((values, []), ([], costs), (values, costs)):
                key = (shown, "widget", good_values, good_costs, None, bought, sold)
                expected = private_json(_private_views(None, key, money, batch._schedules), encode)  # type: ignore[arg-type]
                assert batch._private_text(key, money) == expected, key
                assert batch._private_text(key, money) == expected, key  # (the second time: joined already)


def test_equal_trade_records_share_a_text_only_when_it_is_theirs() -> None:
    """A step's trade records' texts are kept by their values: a zero price (0.0 == -0.0) and values
    of other types equal to kept ones (True == 1) get their own."""
    encode = _make_encoder()
    made: dict[tuple[object, ...], str] = {}
    records = [
        {"step": 3, "good": "widget", "side": "buy", "price": 1.5, "quantity": 1},
        {"step": 3, "good": "widget", "side": "sell", "price": 1.5, "quantity": 1},
        {"step": 3, "good": "widget", "side": "buy", "price": 1.5, "quantity": True},
        {"step": 3, "good": "widget", "side": "buy", "price": 0.0, "quantity": 1},
        {"step": 3, "good": "widget", "side": "buy", "price": -0.0, "quantity": 1},
        {"step": 3.0, "good": "widget", "side": "buy", "price": 1.5, "quantity": 1},
    ]
    for _ in range(2):
        for record in records:
            assert _trade_json(record, encode, made) == encode(record)


@pytest.mark.parametrize(
    ("horizon", "agent_id", "name", "role", "tick_size"),
    [
        (15, 3, "Zoë \"quoted\" \\ trader\n", "buyer", 0.01), (True, 3, "a", "buyer", 0.01), (15, 3, "a", "seller", 1.0),
        (15, 3, "a", "buyer", float("inf")), (15, 3, "a", "buyer", 1), (15, 3.0, "a", "buyer", 0.5),
        (15, 3, None, "buyer", 0.01),
    ],
)  # fmt: skip
def test_a_head_written_directly_is_the_encoders(horizon: object, agent_id: object, name: object, role: object,
                                                  tick_size: object) -> None:  # fmt: skip
    encode = _make_encoder()
    expected = encode({"horizon": horizon, "agent_id": agent_id, "name": name, "role": role, "tick_size": tick_size})
    assert "{" + _head_json(horizon, agent_id, (horizon, name, role, tick_size), encode) + "}" == expected


def test_unit_texts_past_the_kept_bound_are_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The texts kept by tick are forgotten at a bound (`_TEXTS_KEPT`): a window's known and new
    units alike still give the encoder's text after that."""
    import mesa_llm.agents.observation_batch as batch_module

    monkeypatch.setattr(batch_module, "_TEXTS_KEPT", 5)
    money, schedules = Money(0.01), _Schedules()
    for shift in (0, 2, 4, 9, 11):  # each window five units, sharing some ticks with the one before
        ticks = list(range(500 + shift, 505 + shift))
        expected = json.dumps([money.to_units(t) for t in ticks], separators=(",", ":"))
        assert schedules.text(ticks, 0, 5, money.to_units) == expected
