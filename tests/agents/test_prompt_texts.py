"""The shipped templates written by Python (`mesa_llm.agents.prompt_texts`: observation.j2, memory.j2, act.j2 and
plan.j2 with tools.j2) give Jinja's text: for every prompt of every shipped LLM scenario over a run (both tool modes), for hand-made variations of every part it writes, and for
the observations it leaves to Jinja (a rare section, an unusual shape, a missing key: the same text or the same
error); whole recordings are the same with it and without it."""

from __future__ import annotations

import copy
import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.agents import prompts as prompts_module
from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.prompt_texts import act_text, memory_text, observation_text, plan_text
from mesa_llm.agents.prompts import PromptError, PromptLibrary, num
from mesa_llm.llm.testing import ScriptedChatModel
from mesa_llm.model import MarketModel
from mesa_llm.resources import prompts_dir
from mesa_llm.scenario import load_scenario, shipped_scenarios
from tests.support.chat_scripts import sensible_either_mode
from tests.support.scripted import events

LLM_SCENARIOS = [name for name in shipped_scenarios() if any(p.wants_llm for p in load_scenario(name).populations)]


WRITERS = {"observation.j2": observation_text, "memory.j2": memory_text, "act.j2": act_text, "plan.j2": plan_text}


def _both(library: PromptLibrary, template: str = "observation.j2", **context: Any) -> tuple[str, str]:
    """``template`` rendered by Jinja (the shipped template outside the sandbox) and with the writer on."""
    library.packaged_texts = False
    reference = library.render(template, **context)
    library.packaged_texts = True
    return reference, library.render(template, **context)


def _observed(name: str, steps: int, overrides: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The templates and render contexts of every LLM agent's prompts over ``steps`` steps of scenario ``name``
    (sensible scripted answers: orders rest, trades happen, plans are made)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = LLMPolicy._render

    def keep(self: LLMPolicy, template: str, **context: Any) -> str:
        if template in WRITERS:
            seen.append((template, copy.deepcopy(context)))
        return original(self, template, **context)

    model = MarketModel(load_scenario(name, overrides=[f"steps={steps}", *overrides]), record=False,
                        chat_model=ScriptedChatModel(sensible_either_mode))  # fmt: skip
    try:
        LLMPolicy._render = keep  # type: ignore[method-assign]
        model.run()
    finally:
        LLMPolicy._render = original  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("name", LLM_SCENARIOS)
def test_every_prompt_of_a_shipped_run_reads_the_same(name: str) -> None:
    """Each LLM agent's observation, memory, plan and act prompts in every step of a shipped scenario: the writers'
    text is Jinja's."""
    library = PromptLibrary()
    contexts = _observed(name, 4)
    assert {template for template, _ in contexts} >= {"observation.j2", "memory.j2", "act.j2"}
    written = dict.fromkeys(WRITERS, 0)
    for template, context in contexts:
        reference, fast = _both(library, template, **context)
        assert fast == reference, template
        written[template] += WRITERS[template](context, num) is not None
    if name == "llm_double_auction":  # its everyday prompts are all the writers'
        assert written == {t: sum(1 for name, _ in contexts if name == t) for t in WRITERS}


@pytest.mark.parametrize("name", ["llm_double_auction", "bilateral_haggle"])
def test_json_mode_prompts_read_the_same(name: str) -> None:
    """The same in JSON tool mode (tools.j2's signature lines in its three groups)."""
    library = PromptLibrary()
    scenario = load_scenario(name)
    modes = [f"populations.{i}.params.tool_mode=json" for i, p in enumerate(scenario.populations) if p.wants_llm]
    contexts = _observed(name, 3, tuple(modes))
    assert any(c.get("tool_mode") == "json" and c.get("tool_signatures") for t, c in contexts if t == "act.j2")
    for template, context in contexts:
        reference, fast = _both(library, template, **context)
        assert fast == reference, template


def _base() -> dict[str, Any]:
    """A trader's observation dict as `Observation.to_dict` gives it."""
    return {
        "step": 3, "horizon": 10, "agent_id": 4, "name": "trader_4", "role": "trader", "tick_size": 0.01,
        "account": {"cash": 500.0, "holdings": {"apples": 2}, "reserved_cash": 0.0, "reserved_goods": {},
                    "available_cash": 500.0, "available_goods": {"apples": 2}},
        "private": {"apples": {"values": [120.0, 110.5], "costs": [], "fundamental": None, "values_left": 2,
                               "costs_left": 0}},
        "market": {"apples": {"good": "apples", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0,
                              "last_price": None, "last_volume": 0, "price_low": None, "price_high": None,
                              "excess_demand": 0, "excess_supply": 0, "price_history": [], "last_trade_step": None,
                              "last_clearing_step": None, "best_bid": None, "best_ask": None}},
        "open_orders": [], "recent_trades": [], "messages": [], "rejections": [], "available_actions": ["place_order", "wait"],
        "negotiations": [], "contracts": [], "reputation": {}, "alliances": {}, "surveillance": None,
        "suspended_until": None,
    }  # fmt: skip


#: changes to `_base`, each alone and in pairs: (path of keys, value)
_CHANGES: list[tuple[tuple[str, ...], Any]] = [
    (("account", "reserved_cash"), 37.5),
    (("account", "cash"), 1234.56789),
    (("account", "cash"), -0.0000001),
    (("account", "holdings"), {"apples": 2, "pears": 0, "plums": 1.5}),
    (("account", "holdings"), {}),
    (("account", "reserved_goods"), {"apples": 1}),
    (("private", "apples", "values"), []),
    (("private", "apples", "values_left"), 9),
    (("private", "apples", "costs"), [80.0, 85.25, 90]),
    (("private", "apples", "costs_left"), 7),
    (("private", "apples", "fundamental"), 101.123456789),
    (("private",), {}),
    (("private",), {"apples": {"values": [], "costs": [], "fundamental": None, "values_left": 0, "costs_left": 0},
                    "pears": {"values": [5], "costs": [], "fundamental": 0.0, "values_left": 1, "costs_left": 0}}),
    (("market", "apples", "last_price"), 104.5),
    (("market", "apples", "last_trade_step"), 2),
    (("market", "apples", "last_trade_step"), 0),
    (("market", "apples", "last_volume"), 3),
    (("market", "apples", "last_clearing_step"), 2),
    (("market", "apples", "best_bid"), 99.0),
    (("market", "apples", "best_ask"), 101.0),
    (("market", "apples", "price_history"), [100.0, 101.0, 99.5, 102.0, 103.0, 104.5, 98.0]),
    (("market", "apples", "price_history"), [100.0]),
    (("open_orders",), [{"order_id": 17, "side": "buy", "remaining": 2, "good": "apples", "price": 99.5,
                         "lifetime": "good till cancelled"}, {"order_id": 18, "side": "sell", "remaining": 1,
                         "good": "apples", "price": 120, "lifetime": "this step"}]),
    (("recent_trades",), [{"step": 2, "good": "apples", "side": "buy", "price": 100.25, "quantity": 1},
                          {"step": 2, "good": "apples", "side": "sell", "price": 101.0, "quantity": 2}]),
    (("available_actions",), []),
    (("role",), "mediator"),
    (("role",), "buyer"),
    (("step",), 10),
    (("name",), "Zoë ☂"),
]


def _changed(changes: tuple[tuple[tuple[str, ...], Any], ...]) -> dict[str, Any]:
    obs = _base()
    for path, value in changes:
        target = obs
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)
    return obs


@pytest.mark.parametrize("tool_mode", ["tools", "json"])
def test_every_part_written_reads_as_jinja_writes_it(tool_mode: str) -> None:
    """Each change to an everyday observation alone and every pair of them, with the market shown, hidden and
    not given: the writer's text is Jinja's, and the writer wrote every one of them."""
    library = PromptLibrary()
    markets: list[dict[str, Any]] = [{"market": {"market_exists": True}}, {"market": {"market_exists": False}}, {}]
    cases = [()] + [(c,) for c in _CHANGES] + list(itertools.combinations(_CHANGES, 2))
    for changes, market in itertools.product(cases, markets):
        context = {"obs": _changed(changes), "tool_mode": tool_mode, **market}
        reference, fast = _both(library, **context)
        assert fast == reference, changes
        assert observation_text(context, num) is not None, changes


@pytest.mark.parametrize(
    ("key", "value"),
    [("messages", [{"sender_id": 1, "sender": "a", "channel": "direct", "text": "hi"}]),
     ("rejections", [{"type": "place_order", "arguments": {"good": "apples"}, "reason": "no"}]),
     ("suspended_until", 7), ("contracts", [{"contract_id": 1, "buyer_id": 4, "quantity": 1, "good": "apples",
                                            "price": 3, "delivery_step": 5}]),
     ("reputation", {"1": 0.5, "2": 0.5}), ("alliances", {"member_of": [{"name": "a", "members": [1, 4]}]}),
     ("surveillance", {"messages": [], "trades": []})],
)  # fmt: skip
def test_a_rare_section_is_left_to_jinja(key: str, value: Any) -> None:
    """An observation with a section the writer does not write: it declines, and the text is Jinja's."""
    library = PromptLibrary()
    obs = _base()
    obs[key] = value
    context = {"obs": obs, "market": {"market_exists": True}, "tool_mode": "tools"}
    assert observation_text(context, num) is None
    reference, fast = _both(library, **context)
    assert fast == reference


@pytest.mark.parametrize(
    "path",
    [("account", "reserved_goods"), ("private", "apples", "costs_left"), ("market", "apples", "best_ask"), ("messages",),
     ("available_actions",), ("step",)],
)  # fmt: skip
def test_a_missing_key_fails_as_jinja_fails(path: tuple[str, ...]) -> None:
    """A key the template reads, missing: the writer declines, and the same PromptError is raised either way (the
    same text where Jinja does not read it: ``costs_left`` without costs)."""
    library = PromptLibrary()
    obs = _base()
    obs["market"]["apples"]["last_clearing_step"] = 2  # so the best bid/ask are read
    obs["market"]["apples"]["best_bid"] = 99.0
    target = obs
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    context = {"obs": obs, "market": {"market_exists": True}, "tool_mode": "tools"}
    assert observation_text(context, num) is None
    outcomes = []
    for written in (False, True):
        library.packaged_texts = written
        try:
            outcomes.append(library.render("observation.j2", **context))
        except PromptError as exc:
            outcomes.append(f"error: {exc}")
    assert outcomes[0] == outcomes[1]
    assert outcomes[0].startswith("error: ") == (path != ("private", "apples", "costs_left"))  # read only with costs


def test_an_unusual_shape_is_left_to_jinja() -> None:
    """Parts that are not plain dicts and lists (a tuple of orders, a dict subclass for the account): declined,
    and the text is still Jinja's."""

    class Account(dict):  # type: ignore[type-arg]
        pass

    library = PromptLibrary()
    for change in ({"open_orders": ()}, {"account": Account(_base()["account"])}, {"step": 3.0}):
        obs = {**_base(), **change}
        context = {"obs": obs, "market": {"market_exists": True}, "tool_mode": "tools"}
        assert observation_text(context, num) is None
        reference, fast = _both(library, **context)
        assert fast == reference


def test_a_scenario_s_own_observation_template_is_never_written(tmp_path: Path) -> None:
    """A library whose observation.j2 is not the shipped file renders it with Jinja, whatever the writer says."""
    own = tmp_path / "observation.j2"
    own.write_text("Mine: {{ obs.step }}", encoding="utf-8")
    library = PromptLibrary({"observation.j2": own})
    context = {"obs": _base(), "market": {"market_exists": True}, "tool_mode": "tools"}
    assert library.render("observation.j2", **context) == "Mine: 3"


def test_whole_recordings_are_the_same_with_and_without_the_writer(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """5 steps of llm_double_auction with plans and trades: every event (each llm_call's prompts included) the
    same with observation.j2 written by Python as rendered by Jinja."""
    runs = []
    for written in (False, True):
        monkeypatch.setattr(prompts_module, "PACKAGED_TEXTS", written)
        model = MarketModel(load_scenario("llm_double_auction", overrides=["steps=5"]), output_dir=tmp_path / str(written),
                            chat_model=ScriptedChatModel(sensible_either_mode))  # fmt: skip
        model.run()
        runs.append([{k: v for k, v in e.items() if k != "timestamp"} for e in events(model)
                     if e["event_type"] != "simulation_start"])  # fmt: skip
    assert runs[0] == runs[1]
    assert any(e["event_type"] == "trade" for e in runs[1]) and any(e["event_type"] == "llm_call" for e in runs[1])


def _prompt_context(**changes: Any) -> dict[str, Any]:
    """An act/plan prompt's context as `LLMPolicy._act_context` makes it, with ``changes``."""
    context = {"agent_id": 4, "agent_name": "trader_4", "observation_text": "Step 3 of 10.\nMarket: quiet.",
               "memory_text": "Recent events:\n- bought 1", "plan": "Buy low.", "max_actions": 3, "tool_mode": "tools",
               "tool_names": ["place_order", "wait"], "tool_signatures": [], "example": ""}  # fmt: skip
    return {**context, **changes}


_SIGNATURES = ["wait()", "place_order(good: apples, price: 1..200, quantity?: 1..9)", "send_message(to_id: 1..9, text)",
               "cancel_order(order_id: int)", "broadcast(text)", "accept(offer_id: 3)", "vote(candidate_ids: list)"]  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [{}, {"plan": None}, {"plan": ""}, {"memory_text": ""}, {"memory_text": "", "plan": None}, {"agent_name": "Zoë ☂"},
     {"max_actions": 1}, {"tool_mode": "json", "tool_signatures": _SIGNATURES, "example": '{"actions": []}'},
     {"tool_mode": "json", "tool_signatures": [], "example": ""}, {"observation_text": ""}],
)  # fmt: skip
@pytest.mark.parametrize("template", ["act.j2", "plan.j2"])
def test_act_and_plan_prompts_read_as_jinja_writes_them(template: str, changes: dict[str, Any]) -> None:
    """act.j2 and plan.j2 (with tools.j2) for plans, memories and both tool modes: the writer's text is Jinja's."""
    library = PromptLibrary()
    context = _prompt_context(**changes)
    reference, fast = _both(library, template, **context)
    assert fast == reference
    assert WRITERS[template](context, num) is not None


@pytest.mark.parametrize("template", ["act.j2", "plan.j2", "memory.j2"])
@pytest.mark.parametrize("absent", ["agent_id", "memory_text", "plan", "max_actions", "tool_mode", "memory"])
def test_an_absent_variable_fails_as_jinja_fails(template: str, absent: str) -> None:
    """A variable the context lacks: the writer declines, and the text or the PromptError is the same either way."""
    library = PromptLibrary()
    context = {k: v for k, v in _prompt_context(memory={"summary": "", "recent": ["a"]}).items() if k != absent}
    outcomes = []
    for written in (False, True):
        library.packaged_texts = written
        try:
            outcomes.append(library.render(template, **context))
        except PromptError as exc:
            outcomes.append(f"error: {exc}")
    assert outcomes[0] == outcomes[1]
    if outcomes[0].startswith("error: "):
        assert WRITERS[template](context, num) is None


@pytest.mark.parametrize(
    "memory",
    [{"summary": "", "recent": []}, {"summary": "Traded twice.", "recent": []}, {"summary": "", "recent": ["a", "b"]},
     {"summary": "S", "recent": ["step 2: bought 1 apples at 100", "Zoë ☂ wrote \"hi\""]}, {"summary": None, "recent": [1, 2.5]}],
)  # fmt: skip
def test_memory_reads_as_jinja_writes_it(memory: dict[str, Any]) -> None:
    """memory.j2 for summaries and recent events: the writer's text is Jinja's."""
    library = PromptLibrary()
    reference, fast = _both(library, "memory.j2", memory=memory)
    assert fast == reference
    assert memory_text({"memory": memory}, num) is not None


def test_the_writers_were_written_for_the_shipped_sources() -> None:
    """Each writer's pinned SHA-256s are the shipped files' own: a template edited without its writer fails here
    (and renders by Jinja meanwhile, below)."""
    for name, sources in prompts_module.WRITTEN_FOR.items():
        assert name in WRITERS and name in sources
        for source, digest in sources.items():
            assert hashlib.sha256((prompts_dir() / source).read_bytes()).hexdigest() == digest, (
                f"prompts/{source} changed: bring mesa_llm/agents/prompt_texts.py up to date, then its digest")
    assert set(prompts_module.WRITTEN_FOR["act.j2"]) == {"act.j2", "tools.j2"}


@pytest.mark.parametrize("changed", ["memory.j2", None])
def test_a_writer_of_a_changed_template_is_not_used(changed: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer whose shipped source differs from the one it was written for (here: a pinned digest that no longer
    matches) is not used: Jinja renders the template; with the sources as pinned it is."""
    monkeypatch.setitem(prompts_module._TEXT_WRITERS, "memory.j2", lambda context, num: "written")
    monkeypatch.setattr(prompts_module, "_CURRENT_WRITERS", {})
    if changed is not None:
        monkeypatch.setitem(prompts_module.WRITTEN_FOR, changed, {changed: "0" * 64})
    text = PromptLibrary().render("memory.j2", memory={"summary": "S", "recent": []})
    assert text == ("So far: S" if changed else "written")
