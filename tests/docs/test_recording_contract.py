"""The recording-contract page (docs/architecture/recording-contract.md) against real recordings.

Every shipped scenario runs a few steps, plus an LLM market answered in-process (plans, LLM calls,
rejected actions, messages, a token budget that stops the run, an agent whose model fails) and a
market with external agents (alliances, the regulator's actions, a cancelled order). The union of
what those recordings hold must be exactly what the page's table lists: every event type with its
``agent_id`` kind and its content fields. A field the code starts to emit, or one it stops
emitting, fails this test until the page says so.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_calls_response
from mesa_llm.scenario import shipped_scenarios

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture" / "recording-contract.md"
ENVELOPE = {"event_id", "timestamp", "step", "agent_id", "event_type", "content", "metadata"}

Observed = dict[str, dict[str, Any]]


# ----------------------------------------------------------------------------- the page


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section of a Markdown page (empty if there is none)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def envelope_keys(text: str) -> set[str]:
    """The keys the page's "Every event" table lists (first cell of each row)."""
    return set(re.findall(r"^\| `([a-z_]+)` \|", section(text, "Every event"), re.M))


def parse_contract(text: str) -> dict[str, dict[str, Any]]:
    """The page's "Event types" table: ``{event_type: {"agent": "agent"|"null"|"either", "fields": set}}``.

    A row is ``| `type` | agent | `field`, `field`, ... | notes |``; only the first three cells
    are read, so the notes may name nested keys freely."""
    rows: dict[str, dict[str, Any]] = {}
    for line in section(text, "Event types").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"`[a-z_]+`", cells[0]):
            continue
        name = cells[0].strip("`")
        assert name not in rows, f"{PAGE.name}: event type {name!r} listed twice"
        assert cells[1] in {"agent", "null", "either"}, f"{PAGE.name}: {name}: agent_id cell {cells[1]!r}"
        rows[name] = {"agent": cells[1], "fields": set(re.findall(r"`([a-z_]+)`", cells[2]))}
    return rows


def test_parser_reads_rows_and_rejects_a_bad_agent_cell():
    text = "## Every event\n| `step` | integer | x |\n## Event types\n| `trade` | null | `good`, `price` | in units |\n| event_type | x | y |\n## Other\n| `x` | null | `y` |"
    assert envelope_keys(text) == {"step"}
    assert parse_contract(text) == {"trade": {"agent": "null", "fields": {"good", "price"}}}
    with pytest.raises(AssertionError, match="agent_id cell"):
        parse_contract("## Event types\n| `trade` | nobody | `good` |")


def test_the_page_lists_the_envelope_every_event_has():
    assert envelope_keys(PAGE.read_text(encoding="utf-8")) == ENVELOPE


# ----------------------------------------------------------------------------- the runs


def _collect(path: Path, seen: Observed) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        assert set(event) == ENVELOPE, f"{path.name}: envelope {sorted(event)}"
        entry = seen.setdefault(event["event_type"], {"fields": set(), "agent_ids": set()})
        entry["fields"].update(event["content"])
        entry["agent_ids"].add(event["agent_id"] is not None)


def _llm_answer(request: Any) -> Any:
    if request.purpose == "plan":
        return text_response("Bid low, then move up.")
    if request.agent_id == 2:  # the seller's model fails: an agent_error, the run goes on
        raise RuntimeError("the model's server fell over")
    return tool_calls_response(
        [
            ("place_order", {"good": "widget", "side": "buy", "price": 90.0, "quantity": 1, "lifetime": "gtc"}),
            ("place_order", {"good": "widget", "side": "buy", "price": 90.005, "quantity": 1}),  # off tick
            ("broadcast", {"text": "anyone selling?"}),
            ("send_message", {"recipient_id": 2, "text": "hello"}),
        ]
    )


def _llm_run(out: Path, seen: Observed) -> None:
    overrides = [
        "steps=4", "populations.0.count=1", "populations.1.count=1",
        "populations.0.params.plan_every=2", "populations.1.params.plan_every=2", "llm.max_tokens=60",
    ]  # fmt: skip
    sim = Simulation.from_scenario(
        "llm_double_auction", out=out, model="scripted/test", chat_model=ScriptedChatModel(_llm_answer), overrides=overrides
    )
    with sim:
        sim.schedule({"type": "endow", "cash": 5})
        sim.run()
    assert sim.recording_path is not None
    _collect(sim.recording_path, seen)


def _external_run(out: Path, seen: Observed) -> None:
    me = {"name": "me", "role": "buyer", "count": 1, "policy": "external", "endowment": {"cash": 1000}}
    cop = {"name": "cop", "role": "regulator", "count": 1, "policy": "external", "endowment": {"cash": 0}}
    with Simulation.from_scenario("balanced", record=False) as probe:
        n = len(probe.scenario.populations)
        good = probe.scenario.goods[0].name
    overrides = [f"populations.{n}={json.dumps(me)}", f"populations.{n + 1}={json.dumps(cop)}"]
    with Simulation.from_scenario("balanced", out=out, steps=3, overrides=overrides) as sim:
        buyer, regulator = sim.external_agents
        order = {"type": "place_order", "good": good, "side": "buy", "price": 1.0, "quantity": 1, "lifetime": "gtc"}
        sim.act(buyer, [order, {"type": "propose_alliance", "name": "club", "invitee_ids": [1]}])
        sim.act(regulator, [{"type": "flag_violation", "agent_id": 1, "reason": "collusion talk"}])
        sim.step()
        [resting] = sim.observe(buyer).open_orders
        sim.act(buyer, [{"type": "cancel_order", "order_id": resting["order_id"]}])
        sim.act(
            regulator,
            [
                {"type": "impose_fine", "agent_id": 1, "amount": 1.0, "reason": "collusion"},
                {"type": "suspend_trader", "agent_id": 2, "steps": 1, "reason": "wash trades"},
            ],
        )
        sim.step()
    assert sim.recording_path is not None
    _collect(sim.recording_path, seen)


def _rl_run(out: Path, seen: Observed) -> None:
    """A learner (``policy: rl``) driven by the PettingZoo environment: a recording per episode."""
    if importlib.util.find_spec("pettingzoo") is None:  # the rl extra is optional
        return
    from mesa_llm.rl import MarketParallelEnv

    folder = out / "rl"
    env = MarketParallelEnv("double_auction", populations=["buyers"], seed=0, record=True, out=folder,
                            overrides=["steps=4", "populations.0.count=2"])  # fmt: skip
    _obs, infos = env.reset(seed=0)
    while env.agents:
        # each learner buys at the best ask when it may, else holds: orders and trades by learners
        _obs, _rewards, _terms, _truncs, infos = env.step({a: 1 if infos[a]["action_mask"][1] else 0 for a in env.agents})
    env.close()
    recordings = sorted(folder.glob("*.jsonl"))
    assert recordings, "the environment wrote no recording"
    for path in recordings:
        _collect(path, seen)
    assert "external_actions" in seen


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Observed:
    out = tmp_path_factory.mktemp("contract")
    seen: Observed = {}
    for name in sorted(shipped_scenarios()):
        with Simulation.from_scenario(name, out=out) as sim:
            sim.run()
        assert sim.recording_path is not None
        _collect(sim.recording_path, seen)
    _llm_run(out, seen)
    _external_run(out, seen)
    _rl_run(out, seen)
    return seen


# ----------------------------------------------------------------------------- the contract


def test_every_emitted_event_type_is_on_the_page(observed: Observed):
    page = parse_contract(PAGE.read_text(encoding="utf-8"))
    missing = sorted(set(observed) - set(page))
    assert not missing, f"{PAGE.name} lacks event types the code emits: {missing}"


def test_every_type_on_the_page_is_emitted(observed: Observed):
    page = parse_contract(PAGE.read_text(encoding="utf-8"))
    stale = sorted(set(page) - set(observed))
    assert not stale, f"{PAGE.name} lists event types no run emitted: {stale}"


def test_the_fields_of_each_type_are_exactly_those_emitted(observed: Observed):
    page = parse_contract(PAGE.read_text(encoding="utf-8"))
    problems = []
    for name in sorted(set(page) & set(observed)):
        emitted, listed = observed[name]["fields"], page[name]["fields"]
        if emitted - listed:
            problems.append(f"{name}: emitted but not on the page: {sorted(emitted - listed)}")
        if listed - emitted:
            problems.append(f"{name}: on the page but never emitted: {sorted(listed - emitted)}")
    assert not problems, f"{PAGE.name}:\n" + "\n".join(problems)


def test_the_agent_id_of_each_type_is_as_the_page_says(observed: Observed):
    page = parse_contract(PAGE.read_text(encoding="utf-8"))
    expected = {"agent": {True}, "null": {False}, "either": {True, False}}
    wrong = {
        name: sorted(observed[name]["agent_ids"])
        for name in set(page) & set(observed)
        if not observed[name]["agent_ids"] <= expected[page[name]["agent"]]
    }
    assert not wrong, f"{PAGE.name}: agent_id kinds differ (True = an agent): {wrong}"


def test_every_run_covered_the_types_the_runs_are_there_for(observed: Observed):
    # the runs above exist to produce these: a change that silently stops one must show here
    for name in ("plan", "llm_call", "action_rejected", "message", "run_stopped", "llm_usage", "agent_error",
                 "alliance", "regulator_action", "order_cancelled", "event_scheduled", "contract", "offer"):  # fmt: skip
        assert name in observed, name
