"""The mechanism interface (issue 20): a plugin mechanism, written against `mesa_llm.mechanisms`
only and installed on the fly (a ``*.dist-info`` folder and a module in a temporary folder), takes
part in a run like the built-in call market and desk: its actions reach the LLM tool schemas and
``Simulation.act``, the world checks who may use them, its part reaches the observation, its
``begin_step`` and ``clear`` run in the step's order, and what it moves goes through the ledger.
Bad plugins and bad entries are one line naming the plugin or the field.
"""

from __future__ import annotations

import itertools
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response
from mesa_llm.plugins import Plugins, using_plugins
from mesa_llm.scenario import ScenarioError, load_scenario

_counter = itertools.count()

#: a toy mechanism: givers give cash to the house; the world records each step's total
TOY = '''
from typing import Any, ClassVar, Literal

from pydantic import Field

from mesa_llm.actions import ActionBase, RejectedAction
from mesa_llm.mechanisms import Mechanism, MechanismParams


class Give(ActionBase):
    """Give cash to the house."""

    tool_name: ClassVar[str] = "give"
    type: Literal["give"] = "give"
    amount: float = Field(gt=0, description="currency units")

    @classmethod
    def narrow_schema(cls, parameters, observation):
        part = observation.mechanisms.get("{name}")
        parameters["properties"]["amount"] = {{"type": "number", "minimum": 0, "maximum": part["cap"]}}


class GiftParams(MechanismParams):
    type: Literal["{name}"]
    givers: str
    cap: float = Field(default=10.0, gt=0)


class GiftBox(Mechanism):
    name: ClassVar[str] = "{name}"
    summary: ClassVar[str] = "givers give cash to the house"
    Params: ClassVar[type[MechanismParams]] = GiftParams
    actions: ClassVar[tuple[type[ActionBase], ...]] = (Give,)

    @classmethod
    def scenario_problems(cls, params, scenario):
        labels = [p.label for p in scenario.populations]
        return [] if params.givers in labels else [f"givers: no population {{params.givers!r}}"]

    def start(self):
        self.given = 0
        self.context.record("gift_setup", {{"givers": list(self.context.populations[self.params.givers])}}, None)

    def tools(self, population, role):
        return ["give"] if population == self.params.givers else []

    def begin_step(self, step):
        self.context.record("gift_begin", {{"step": step}}, None)
        self.step_total = 0

    def observe(self, agent, step):
        if agent.population != self.params.givers:
            return None
        return {{"given": self.given, "cap": self.params.cap}}

    def act(self, agent, action, step):
        ticks = self.context.money.to_ticks(action.amount)
        if action.amount > self.params.cap:
            raise RejectedAction(f"at most {{self.params.cap}} a gift")
        self.context.ledger.transfer_cash(agent.unique_id, "house", ticks, memo="gift")
        self.given += action.amount
        self.step_total += action.amount
        return [("gift", {{"amount": action.amount}}, agent.unique_id)]

    def clear(self, step):
        self.context.record("gift_total", {{"step": step, "total": self.step_total}}, None)

    def metrics(self):
        return {{"given": self.given}}
'''


def _install(root: Path, source: str, entry_points: dict[str, str]) -> str:
    """A distribution in ``root``: a module holding ``source`` and its mesa_llm.mechanisms entry
    points (``{module}`` in a value names the module); returns the module name."""
    module = f"toy_mechanism_{next(_counter)}_{os.getpid()}"
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n", encoding="utf-8")
    lines = ["[mesa_llm.mechanisms]", *(f"{k} = {v.format(module=module)}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return module


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugins:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    _install(root, TOY.format(name="gift_box"), {"gift_box": "{module}:GiftBox"})
    plugins = Plugins(path=[str(root)])
    with using_plugins(plugins):
        yield plugins


def _scenario(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "gifts",
        "seed": 3,
        "steps": 2,
        "goods": [{"name": "widget", "reference_price": 100.0}],
        "market": {"check_invariants": True},
        "mechanisms": [{"type": "gift_box", "givers": "givers", "cap": 10.0}],
        "populations": [
            {"name": "givers", "role": "buyer", "count": 1, "policy": "external", "endowment": {"cash": 100.0}},
            {"name": "sellers", "role": "seller", "count": 1, "policy": "external", "endowment": {"holdings": {"widget": 1}}},
        ],
    }
    raw.update(changes)
    return raw


def _events(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_plugin_mechanism_takes_part_in_the_step(toy: Plugins, tmp_path: Path) -> None:
    with Simulation.from_scenario(_scenario(), out=tmp_path) as sim:
        giver, seller = 1, 2
        observation = sim.observe(giver)
        assert observation.mechanisms == {"gift_box": {"given": 0, "cap": 10.0}}
        assert observation.available_actions.index("give") < observation.available_actions.index("send_message")
        assert "mechanisms" not in sim.observe(seller).to_dict() and "give" not in sim.observe(seller).available_actions
        assert sim.act(giver, [{"type": "give", "amount": 4}, {"type": "give", "amount": 20}]) == []
        assert sim.act(giver, {"type": "give", "amount": "lots"})[0]["reason"].startswith("amount:")
        assert sim.act(seller, {"type": "give", "amount": 1}) == []
        report = sim.step()
        assert [r["reason"] for r in report.rejections[giver]][1:] == ["at most 10.0 a gift"]
        assert report.rejections[seller][0]["reason"] == "role 'seller' may not give"
        assert sim.mesa_model.exchange.ledger.account(giver).cash == 9600  # 96.00 in ticks
        assert sim.observe(giver).mechanisms["gift_box"]["given"] == 4
        assert sim.summary().to_dict()["mechanisms"] == {"gift_box": {"given": 4.0}}
    events = _events(sim.recording_path)
    kinds = [e["event_type"] for e in events if e["step"] == 1]
    # begin_step before the observations, the gift after its action, clear after the call market's
    assert kinds.index("gift_begin") < kinds.index("observation") < kinds.index("action")
    assert kinds[kinds.index("action") + 1] == "gift"
    assert kinds.index("clearing") < kinds.index("gift_total") < kinds.index("step_end")
    setup = next(e for e in events if e["event_type"] == "gift_setup")
    assert setup["step"] == 0 and setup["content"] == {"givers": [1]}
    header = events[0]["content"]
    assert header["scenario"]["spec"]["mechanisms"] == [{"type": "gift_box", "givers": "givers", "cap": 10.0}]
    assert [p["group"] for p in header["plugins"]] == ["mesa_llm.mechanisms"]


def test_a_plugin_mechanisms_actions_reach_the_llm_tool_schemas(toy: Plugins, tmp_path: Path) -> None:
    raw = _scenario()
    raw["populations"][0].update(policy="llm", params={"plan_every": 0})
    tools_chat = ScriptedChatModel(lambda request: tool_call_response("give", {"amount": 2.5}), tool_mode="tools")
    with Simulation.from_scenario(raw, steps=1, out=tmp_path, chat_model=tools_chat) as sim:
        sim.run()
    offered = [t["function"]["name"] for t in tools_chat.requests[0].tools or []]
    assert "give" in offered and offered.index("give") < offered.index("send_message")
    assert sim.summary().to_dict()["mechanisms"]["gift_box"]["given"] == 2.5

    raw["market"] = {"call_market": False}  # with orders on offer, the example would show an order
    json_chat = ScriptedChatModel(
        lambda request: text_response(json.dumps({"actions": [{"tool": "give", "arguments": {"amount": 1}}]})), tool_mode="json"
    )
    with Simulation.from_scenario(raw, steps=1, out=tmp_path, chat_model=json_chat) as sim:
        sim.run()
    variants = json_chat.requests[0].response_format["json_schema"]["schema"]["properties"]["actions"]["items"]["anyOf"]
    give = next(v for v in variants if v["properties"]["tool"]["const"] == "give")
    assert give["properties"]["arguments"]["properties"]["amount"] == {"type": "number", "minimum": 0, "maximum": 10.0}
    prompt = json_chat.requests[0].messages[-1]["content"]
    example = prompt.split(" e.g. ", 1)[1].splitlines()[0]
    assert json.loads(example)["actions"][0]["tool"] == "give"  # the mechanism's tool, not a message


def test_bad_entries_are_one_line_naming_the_field(toy: Plugins) -> None:
    cases = {
        "mechanisms.0: unknown mechanism type 'raffle'; plugin mechanisms: gift_box": [{"type": "raffle"}],
        "mechanisms.0.cap: Input should be greater than 0": [{"type": "gift_box", "givers": "givers", "cap": 0}],
        "mechanisms.0.givers: no population 'nobody'": [{"type": "gift_box", "givers": "nobody"}],
        "mechanisms.0.odds: unknown field": [{"type": "gift_box", "givers": "givers", "odds": 2}],
        "mechanisms.0: 'call_market' is built in: configure it with the scenario's 'market' or 'negotiation' section": [
            {"type": "call_market"}
        ],
    }
    for message, entries in cases.items():
        with pytest.raises(ScenarioError) as caught:
            Simulation.from_scenario(_scenario(mechanisms=entries), record=False)
        text = str(caught.value)
        assert "\n" not in text and text == f"<scenario dict>: {message}"


def test_bad_plugin_mechanisms_are_refused_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesa_llm.plugin_commands import plugin_report

    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    clash = TOY.format(name="clash").replace('"give"', '"place_order"')
    _install(root, clash, {"clash": "{module}:GiftBox"})
    _install(root, TOY.format(name="call_market"), {"call_market": "{module}:GiftBox"})
    _install(root, TOY.format(name="misnamed"), {"other_name": "{module}:GiftBox"})
    _install(root, "NOT_A_CLASS = 1\n", {"not_a_class": "{module}:NOT_A_CLASS"})
    with using_plugins(Plugins(path=[str(root)])):
        rows = {r["name"]: r for r in plugin_report() if r["group"] == "mesa_llm.mechanisms"}
    assert rows["clash"]["status"] == "failed"
    assert rows["clash"]["reason"] == "action 'place_order' of GiftBox clashes with a built-in action"
    assert rows["call_market"]["status"] == "refused" and "built-in mechanism" in rows["call_market"]["reason"]
    assert rows["other_name"]["reason"] == "GiftBox.name is 'misnamed', not the entry point's name 'other_name'"
    assert rows["not_a_class"]["reason"] == "expected a Mechanism subclass, got int 1"


def test_a_scenario_without_mechanisms_dumps_as_before() -> None:
    # shipped recordings and run ids stay byte-identical: no empty 'mechanisms' key appears
    spec = load_scenario("double_auction")
    assert "mechanisms" not in spec.model_dump(mode="json")
    assert "mechanisms" not in json.loads(spec.model_dump_json())
