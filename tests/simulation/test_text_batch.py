"""A plain market's observations reach the recorder as one `TextBatch` per step, whose lines the
recorder makes in one pass (`SimulationRecorder.record_texts`) when nothing else needs them one
by one: the recording is the one the one-by-one path gives, whole, across markets and seeds
(non-ASCII names too); a subscriber to observations, an LLM agent among them or a recorder keeping
events get them one by one, as before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.model import MarketModel
from mesa_llm.recording import SimulationEvent, SimulationRecorder
from mesa_llm.scenario import load_scenario
from mesa_llm.text_batch import TextBatch

_TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')

MARKETS = [
    ("double_auction", ["social.gossip=true"]),
    ("double_auction", ["populations.0.policy=zi_u", "market.private_units_shown=2"]),
    ("energy_trading", ["social.reputation_shown=0"]),
]


def _run(spec: Any, seed: int, folder: Path, steps: int = 6) -> tuple[MarketModel, list[str]]:
    model = MarketModel(spec, seed=seed, steps=steps, output_dir=folder, run_name="r")
    model.traders[0].name = 'Zoë "ü" \u2028'  # escaped in its text
    model.run()
    assert model.recording_path is not None
    return model, [_TIMESTAMP.sub("", line) for line in Path(model.recording_path).read_text().splitlines()]


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Spy on `record_texts` of observations: what each call returned (the call market's column
    batches of action and order lines go through it too)."""
    taken: list[bool] = []
    original = SimulationRecorder.record_texts

    def spy(self: SimulationRecorder, *args: Any, **kwargs: Any) -> bool:
        done = original(self, *args, **kwargs)
        if args[0] == "observation":
            taken.append(done)
        return done

    monkeypatch.setattr(SimulationRecorder, "record_texts", spy)
    return taken


@pytest.mark.parametrize(("scenario", "overrides"), MARKETS)
@pytest.mark.parametrize("seed", [1, 5])
def test_a_step_of_texts_records_what_recording_each_observation_records(
    scenario: str, overrides: list[str], seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_scenario(scenario, overrides=overrides)
    taken = _counting(monkeypatch)
    fast, lines = _run(spec, seed, tmp_path / "fast")
    assert taken and all(taken)  # the one-pass path ran
    monkeypatch.setattr(SimulationRecorder, "record_texts", lambda self, *a, **k: False)
    slow, reference = _run(spec, seed, tmp_path / "slow")
    assert lines[1:] == reference[1:]  # the header names the run's time
    assert sum('"event_type":"observation"' in line for line in lines) == 6 * len(fast.traders)
    timeless = lambda r: {k: v for k, v in r.get_stats().items() if "duration" not in k}  # noqa: E731
    assert timeless(fast.recorder) == timeless(slow.recorder)


def test_a_subscriber_or_an_llm_agent_gets_them_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_scenario("double_auction")
    taken = _counting(monkeypatch)
    heard: list[tuple[int, int]] = []
    model = MarketModel(spec, seed=2, steps=2, output_dir=tmp_path / "sub", run_name="r")
    recorder = model.recorder
    assert recorder is not None

    def watch(event: SimulationEvent) -> None:  # everything before it recorded, nothing after it
        heard.append((event.agent_id, recorder.total_events_recorded))  # type: ignore[arg-type]

    model.events.subscribe("observation", watch)
    model.run()
    assert not taken  # not asked: a subscriber wants the type
    firsts = [n for _, n in heard[: len(model.traders)]]
    assert firsts == list(range(firsts[0], firsts[0] + len(model.traders)))
    llm = MarketModel(spec, seed=2, steps=2, output_dir=tmp_path / "llm", run_name="r")
    llm.llm_activity.add_agent(llm.traders[3].unique_id, "llm")  # counted from its events' dicts
    llm.traders[0].name = 'Zoë "ü" \u2028'  # as `_run` names it
    llm.run()
    assert not taken
    _, plain = _run(spec, 2, tmp_path / "plain", steps=2)
    assert [_TIMESTAMP.sub("", line) for line in Path(llm.recording_path).read_text().splitlines()][1:] == plain[1:]  # type: ignore[arg-type]


def test_a_text_batch_is_its_items() -> None:
    class Source:
        def __init__(self, n: int) -> None:
            self.n = n

        def to_dict(self) -> dict[str, int]:
            return {"n": self.n}

    sources = [Source(1), Source(2)]
    batch = TextBatch("observation", [7, 8], ['{"n":1}', '{"n":2}'], sources)
    items = list(batch)
    assert len(batch) == 2 and [(t, a, x) for t, _, a, x in items] == [("observation", 7, '{"n":1}'), ("observation", 8, '{"n":2}')]
    assert [content() for _, content, _, _ in items] == [{"n": 1}, {"n": 2}]


def test_a_typed_text_batch_is_its_items_and_goes_one_by_one_where_a_type_is_wanted(tmp_path: Path) -> None:
    from functools import partial

    from mesa_llm.record_batch import record_many
    from mesa_llm.run_summary import LLMActivity

    makers = [partial(dict, n=1), partial(dict, n=2), partial(dict, n=3)]
    batch = TextBatch(["action", "order", "action"], [7, 7, 8], ['{"n":1}', '{"n":2}', '{"n":3}'], makers, makers=True)
    items = list(batch)
    assert batch.types() == {"action", "order"}
    assert [(t, a, x) for t, _, a, x in items] == [("action", 7, '{"n":1}'), ("order", 7, '{"n":2}'), ("action", 8, '{"n":3}')]
    assert [content() for _, content, _, _ in items] == [{"n": 1}, {"n": 2}, {"n": 3}]
    for wanted, one_by_one in (((), []), (("order",), [("order", {"n": 2}, 7)])):
        recorder = SimulationRecorder(None, tmp_path / str(len(wanted)), simulation_id="s", run_name="r")
        given: list[tuple[Any, ...]] = []

        def one(event_type: str, content: Any, agent_id: int, encoded: str | None, _r: Any = recorder, _g: Any = given) -> None:
            _g.append((event_type, content() if callable(content) else content, agent_id))
            _r.record_lean(event_type, content, agent_id, step=1, encoded=encoded)

        no_tallies: Any = None  # only trades and contracts are tallied
        record_many(batch, 1, recorder, no_tallies, LLMActivity(), lambda t, w=wanted: t in w, one)  # type: ignore[misc]
        assert given == one_by_one  # a wanted type's line goes to the subscriber path, in its place
        recorder.flush()
        assert recorder.jsonl_path is not None
        assert [line.split('"event_type":')[1][:8] for line in Path(recorder.jsonl_path).read_text().splitlines()] == [
            '"action"', '"order",', '"action"'
        ]
