"""A plain population observed in one pass (`ObservationBatch.observe_step`: kept lines for agents
whose shown state did not change, observations made only when read) must record exactly what the
agent-by-agent path records (``observer.columns = False``, the reference), whatever changed between
two steps: fills, a message, a rejection, a resting order, cash moved through the ledger, a
private schedule or an agent's shown attribute set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.actions import PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.observation_batch import LazyObservation, ObservationBatch, ObservedAgents
from mesa_llm.agents.trader import PrivateValues, TraderAgent
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.support.recordings import untimed_lines

Hook = Callable[[MarketModel], None]


def _recording(scenario: str, overrides: list[str], seed: int, out: Path, *, columns: bool, hook: Hook | None = None,
               steps: int = 12) -> tuple[list[str], int]:  # fmt: skip
    """The untimed recording of ``steps`` steps (``hook(model)`` before each) and how many agents the
    one pass served from their kept parts (0 on the reference path)."""
    model = MarketModel(load_scenario(scenario, overrides=overrides), seed=seed, steps=steps, output_dir=out, run_name="r")
    model.observer.columns = columns
    kept, refreshed = [0], [0]
    batch = model.observer.batch
    refresh = batch._refresh

    def counted(agent: TraderAgent, *args: Any) -> None:
        refreshed[0] += 1
        refresh(agent, *args)

    observe_step = batch.observe_step

    def served(agents: Any, tools: Any, **pieces: Any) -> Any:
        before = refreshed[0]
        out = observe_step(agents, tools, **pieces)
        kept[0] += len(agents) - (refreshed[0] - before)
        return out

    batch._refresh = counted  # type: ignore[method-assign]
    batch.observe_step = served  # type: ignore[method-assign]
    while model.running:
        if hook is not None:
            hook(model)
        model.step()
    model.finish()
    assert model.recording_path is not None
    lines = [line for line in untimed_lines(Path(model.recording_path)) if '"simulation_start"' not in line]
    return lines, kept[0] if columns else 0


def _disturb(model: MarketModel) -> None:
    """Every change the kept parts must notice, one per step, in both runs alike."""
    step, traders = model.steps, model.traders
    first, second, last = traders[0], traders[1], traders[-1]
    ledger = model.exchange.ledger
    if step % 5 == 1:  # a plugin moving cash and goods through the ledger (no fill, no counter)
        ledger.transfer_cash(first.unique_id, second.unique_id, 1)
    if step == 3:
        model.mailbox.send(first.unique_id, first.name, [last.unique_id], f"hello at {step}", "direct", step)
    if step == 4:  # a rejection shown once
        second.rejections.append({"action": "place_order", "reason": "a test's", "step": step})
    if step == 5:  # a resting order: the book is not empty for a while (agent by agent)
        order = PlaceOrder(good="widget", side="buy", price=1.0, quantity=1, lifetime="gtc")
        model.exchange.place_order(first.unique_id, first.role, order, step)
    if step == 7:  # a shock to one private schedule (a new list, as the docstring asks)
        pv = last.private["widget"]
        if pv.costs:
            pv.costs = [c + 3 for c in pv.costs]
        else:
            pv.values = [v + 3 for v in pv.values]
    if step == 8:
        second.units_shown = 2
    if step == 9:
        last.name = "renamed ünïcode"
    if step == 10:
        first.private = {**first.private, "widget": PrivateValues(list(first.private["widget"].values), [], None)}


@pytest.mark.parametrize(
    ("scenario", "overrides", "seed"),
    [
        ("double_auction", [], 1),
        ("double_auction", ["social.gossip=true"], 7),  # a message to forward: its recipient's tools change
        ("double_auction", ["populations.1.policy=zi_u"], 3),  # two policies (a unicode name: `_disturb`)
        ("double_auction", ["populations.0.private.widget.units=30", "populations.0.endowment.cash=100000",
                            "populations.1.endowment.holdings.widget=30", "populations.1.private.widget.units=30"], 2),
    ],
)  # fmt: skip
def test_one_pass_records_what_agent_by_agent_records(scenario: str, overrides: list[str], seed: int, tmp_path: Path) -> None:
    reference, _ = _recording(scenario, overrides, seed, tmp_path / "ref", columns=False, hook=_disturb)
    fast, kept = _recording(scenario, overrides, seed, tmp_path / "fast", columns=True, hook=_disturb)
    assert kept > 0  # the one pass served agents from what it kept
    assert fast == reference


@pytest.mark.parametrize(
    "scenario", ["double_auction", "financial_market_stress", "commodity_exchange", "energy_trading", "balanced"]
)
@pytest.mark.parametrize("seed", [1, 7])
def test_shipped_scenarios_record_the_same_both_ways(scenario: str, seed: int, tmp_path: Path) -> None:
    reference, _ = _recording(scenario, [], seed, tmp_path / "ref", columns=False, steps=15)
    fast, _ = _recording(scenario, [], seed, tmp_path / "fast", columns=True, steps=15)
    assert fast == reference


def test_unrecorded_runs_decide_the_same_both_ways(tmp_path: Path) -> None:
    """Without a recorder (no texts): the same fills, ledger and generator state."""
    def run(columns: bool) -> Any:
        spec = load_scenario("double_auction", overrides=["populations.1.policy=zi_u"])
        model = MarketModel(spec, seed=4, steps=10, output_dir=tmp_path, record=False)
        model.observer.columns = columns
        while model.running:
            _disturb(model)
            model.step()
        ledger = model.exchange.ledger
        return ([(a.unique_id, ledger.account(a.unique_id).cash, dict(a.units_bought), dict(a.units_sold))
                 for a in model.traders], model.rng.random())  # fmt: skip

    assert run(True) == run(False)


def _observed(tmp_path: Path, steps: int = 3) -> tuple[MarketModel, ObservedAgents]:
    model = MarketModel(load_scenario("double_auction"), seed=2, steps=10, output_dir=tmp_path, run_name="r")
    for _ in range(steps):
        model.step()
    observed = model.prepare_step()
    assert isinstance(observed, ObservedAgents)
    return model, observed


def test_observations_are_made_when_read_and_equal_agent_by_agent_ones(tmp_path: Path) -> None:
    model, observed = _observed(tmp_path)
    agents = list(model.world.agents.values())
    assert observed.agents == agents and len(observed) == len(agents)
    # what `TraderAgent.observe` gives each, with the tools the observer gives it
    for agent, obs in observed:
        reference = TraderAgent.observe(agent, step=model.steps + 1, horizon=model.max_steps, market=obs.market,
                                        ledger=model.exchange.ledger, money=model.money, open_orders=[])  # fmt: skip
        reference.available_actions = model.observer.available_actions(agent, model.steps + 1)
        assert obs == reference and obs.to_dict() == reference.to_dict()
    assert observed[0][1] is observed[0][1] and observed[-1][1] is observed[len(observed) - 1][1]  # made once
    assert observed[1:3] == [observed[1], observed[2]]
    assert observed == list(observed) and list(observed) == observed


def test_the_zi_numbers_read_unmade_are_the_made_observations(tmp_path: Path) -> None:
    _, observed = _observed(tmp_path)
    rows = [observed.zi_row(i) for i in range(len(observed))]  # read before any is made
    for i, (_, obs) in enumerate(observed):
        assert isinstance(obs, LazyObservation)
        assert rows[i] == obs.zi_view()
        built = obs.account, obs.private  # built: the row is now the built parts' (None)
        assert built and observed.zi_row(i) is None
        assert rows[i][3] == obs.account.available_cash
        assert [(g, p.values, p.costs, p.values_left, p.costs_left) for g, p in obs.private.items()] == [
            r[:5] for r in rows[i][4]
        ]


class _Steps:
    """A model's `ObservationBatch` driven by hand: each `observe` call begins a step of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.model = MarketModel(load_scenario("double_auction"), seed=2, steps=10, output_dir=tmp_path, run_name="r")
        self.model.step()
        self.model.step()
        self.batch: ObservationBatch = self.model.observer.batch
        self.agents = list(self.model.world.agents.values())
        self.tools = [self.model.observer._plain_narrowed(agent, ()) for agent in self.agents]
        self.step = 10

    def begin(self) -> None:
        self.step += 1
        model = self.model
        self.batch.begin(self.step, model.max_steps, model.observer._market_snapshot(), model.exchange.ledger, model.money)

    def observe(self, *, one_pass: bool = True) -> list[tuple[Observation, str | None]]:
        self.begin()
        if not one_pass:
            return [self.batch.observe(agent, [], tools) for agent, tools in zip(self.agents, self.tools, strict=True)]
        observed, texts = self.batch.observe_step(self.agents, self.tools)
        assert texts is not None
        return list(zip(observed.observations(), texts, strict=True))

    def check(self, observed: list[tuple[Observation, str | None]]) -> None:
        """Each observation is `TraderAgent.observe`'s now, and its text the encoding of its dict."""
        model = self.model
        for agent, tools, (obs, text) in zip(self.agents, self.tools, observed, strict=True):
            reference = TraderAgent.observe(agent, step=self.step, horizon=model.max_steps, market=obs.market,
                                            ledger=model.exchange.ledger, money=model.money, open_orders=[])  # fmt: skip
            reference.available_actions = list(tools)
            assert obs.to_dict() == reference.to_dict()
            assert model.recorder is not None and text == model.recorder.encode(reference.to_dict())


def test_an_agent_observed_agent_by_agent_in_between_is_not_served_stale_parts(tmp_path: Path) -> None:
    """A step observed agent by agent (`ObservationBatch.observe`) drops what the one pass kept:
    cash moved before it (no fill, nothing since) must still show in the next one-pass step."""
    steps = _Steps(tmp_path)
    steps.check(steps.observe())
    first, second = steps.agents[0], steps.agents[1]
    steps.model.exchange.ledger.transfer_cash(first.unique_id, second.unique_id, 5)
    steps.check(steps.observe(one_pass=False))
    steps.check(steps.observe())


def test_a_private_schedule_set_anywhere_shows_at_the_next_step(tmp_path: Path) -> None:
    """No fill, no ledger change: a schedule set in place (a shock) is seen through `private_changes`."""
    steps = _Steps(tmp_path)
    steps.check(steps.observe())
    steps.check(steps.observe())  # every agent unchanged: its kept line
    pv = steps.agents[0].private["widget"]
    pv.values = [v + 11 for v in pv.values]
    pv.fundamental = 12345
    steps.check(steps.observe())


def test_changing_what_an_observation_shows_counts(tmp_path: Path) -> None:
    model = MarketModel(load_scenario("double_auction"), seed=2, steps=10, output_dir=tmp_path, run_name="r")
    agent = model.traders[0]
    before = agent.changes
    agent.units_shown = 3
    agent.inbox = []  # not counted: an observation shows a nonempty inbox anyway
    assert agent.changes == before + 1
    agent.record_fill("widget", "buy", 1, 100, 1.0, 1)
    assert agent.changes == before + 2
    assert isinstance(model.prepare_step()[0][1], Observation)


def test_a_subscriber_gets_each_observation_as_agent_by_agent(tmp_path: Path) -> None:
    """An ``observation`` subscriber makes the one pass hand over each observation's dict (made
    then), in order, and the recording stays the reference's."""

    def run(columns: bool, out: Path) -> tuple[list[Any], list[str]]:
        model = MarketModel(load_scenario("double_auction"), seed=6, steps=6, output_dir=out, run_name="r")
        model.observer.columns = columns
        seen: list[Any] = []
        model.events.subscribe("observation", lambda event: seen.append((event.agent_id, event.content)))
        while model.running:
            _disturb(model)
            model.step()
        model.finish()
        assert model.recording_path is not None
        return seen, untimed_lines(Path(model.recording_path))[1:]

    fast, reference = run(True, tmp_path / "fast"), run(False, tmp_path / "ref")
    assert len(fast[0]) == 6 * 12 and fast == reference
