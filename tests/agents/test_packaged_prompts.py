"""The shipped prompt templates render outside the sandbox (the package's own code), byte for byte
as the sandbox renders them; a template with anything of a scenario's own in it (an override, an
extra folder, a replay's differing text, or one it includes) still renders in the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mesa_llm.agents import prompts as prompts_module
from mesa_llm.agents.llm_policy import LLMPolicy
from mesa_llm.agents.prompts import PromptError, PromptLibrary
from mesa_llm.llm.testing import ScriptedChatModel, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.prompt_check import _add_samples, _NeverCalled
from mesa_llm.resources import prompts_dir
from mesa_llm.scenario import load_scenario, resolve_scenario_path, shipped_scenarios
from tests.support.chat_scripts import sensible_either_mode
from tests.support.scripted import events

#: text other agents wrote, with what the quoted filter escapes and what it keeps
UNICODE_TEXT = "prix 12,5 € — d'accord? 数量 3 ✓\u202eevil\u200b\nnext line"


def _both_ways(policy: LLMPolicy, observation: Any) -> tuple[dict[str, str], dict[str, str]]:
    library = policy._ctx().prompts
    library.packaged_fast_path = False
    reference = policy.render_prompts(observation)
    library.packaged_fast_path = True
    fast = policy.render_prompts(observation)
    return reference, fast


def _llm_agents(model: MarketModel) -> list[tuple[LLMPolicy, Any]]:
    out, seen = [], set()
    for agent, observation in model.preview_observations():
        if agent.population not in seen and isinstance(agent.policy, LLMPolicy) and agent.policy.context is not None:
            seen.add(agent.population)
            out.append((agent.policy, observation))
    return out


LLM_SCENARIOS = [name for name in shipped_scenarios() if any(p.wants_llm for p in load_scenario(name).populations)]


@pytest.mark.parametrize("name", LLM_SCENARIOS)
def test_every_shipped_prompt_renders_the_same_outside_the_sandbox(name: str) -> None:
    """Every prompt of one agent per LLM population (system, observation, memory, plan, act and
    repair in both tool modes), with a message in several scripts and with hidden characters, a
    trade and a rejection: the same text with the fast path as in the sandbox, and the fast path ran."""
    model = MarketModel(load_scenario(name), record=False, chat_model=_NeverCalled())
    agents = _llm_agents(model)
    assert agents
    for policy, observation in agents:
        _add_samples(observation, observation.agent_id)
        observation.messages[0]["text"] = UNICODE_TEXT
        observation.messages[0]["sender"] = "Zoë ☂"
        reference, fast = _both_ways(policy, observation)
        assert fast == reference
        assert "€" in fast["observation"] and "\\u202e" in fast["observation"]
        packaged = policy._ctx().prompts._packaged_templates
        assert packaged["act.j2"] is not None and packaged["observation.j2"] is not None


def test_a_scenario_s_own_templates_render_in_the_sandbox_and_the_rest_outside(tmp_path: Path) -> None:
    """A scenario folder overriding ``tools`` (included by act.j2 and plan.j2) and ``memory``, with
    non-ASCII text: those and the templates including them render in the sandbox, with the
    scenario's text; observation.j2, untouched, outside; every prompt as the sandbox renders it."""
    raw = yaml.safe_load(resolve_scenario_path("llm_double_auction").read_text())
    (tmp_path / "my_tools.j2").write_text("Agent {{ agent_id }} — outils: {{ tool_names | join(' · ') }}\n", encoding="utf-8")
    (tmp_path / "my_memory.j2").write_text("Mémoire ✓ {{ memory.recent | length }}\n", encoding="utf-8")
    raw["llm"]["templates"] = {"tools": "my_tools.j2", "memory": "my_memory.j2"}
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    model = MarketModel(load_scenario(path), record=False, chat_model=_NeverCalled())
    for policy, observation in _llm_agents(model):
        _add_samples(observation, observation.agent_id)
        reference, fast = _both_ways(policy, observation)
        assert fast == reference
        assert "outils: " in fast["act"] and "outils: " in fast["plan"] and fast["memory"].startswith("Mémoire ✓")
        packaged = policy._ctx().prompts._packaged_templates
        assert packaged["act.j2"] is None and packaged["plan.j2"] is None and packaged["memory.j2"] is None
        assert packaged["observation.j2"] is not None


def _shipped(name: str) -> str:
    return (prompts_dir() / name).read_text(encoding="utf-8")


def test_what_decides_the_fast_path(tmp_path: Path) -> None:
    """The source of the template and of everything it includes must be the shipped file's."""
    override = tmp_path / "tools.j2"
    override.write_text(_shipped("tools.j2") + "\nOne more line.", encoding="utf-8")
    same = tmp_path / "act_copy.j2"
    same.write_text(_shipped("act.j2"), encoding="utf-8")
    cases = {
        "shipped": (PromptLibrary(), {"act.j2": True, "observation.j2": True}),
        # a replay's recorded texts: the same as shipped, or not
        "same_texts": (PromptLibrary(texts={"tools.j2": _shipped("tools.j2")}), {"act.j2": True}),
        "changed_included_text": (PromptLibrary(texts={"tools.j2": _shipped("tools.j2") + " "}),
                                  {"act.j2": False, "plan.j2": False, "observation.j2": True}),
        "changed_text": (PromptLibrary(texts={"observation.j2": _shipped("observation.j2") + " "}),
                         {"observation.j2": False, "act.j2": True}),
        "included_override": (PromptLibrary({"tools.j2": override}), {"act.j2": False, "tools.j2": False}),
        "identical_override": (PromptLibrary({"act.j2": same}), {"act.j2": True}),
        "extra_folder": (PromptLibrary(search_paths=[tmp_path]), {"act.j2": False, "tools.j2": False}),
    }
    for label, (library, expected) in cases.items():
        found = {name: library._packaged(name) is not None for name in expected}
        assert found == expected, label


def test_a_failure_reads_the_same_on_either_path() -> None:
    """A variable the context lacks: the same one-line PromptError naming the template and line."""
    messages = []
    for fast in (False, True):
        library = PromptLibrary()
        library.packaged_fast_path = fast
        with pytest.raises(PromptError) as info:
            library.render("memory.j2")
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "memory.j2" in messages[0] and "memory" in messages[0]


@pytest.mark.parametrize("tool_mode", ["tools", "json"])
def test_whole_recordings_are_the_same_with_and_without_the_fast_path(tool_mode: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """4 steps of llm_double_auction with plans, trades, messages-free prompts in both tool modes:
    every event (each llm_call's prompts included) the same with the shipped templates rendered
    outside the sandbox as in it."""
    overrides = ["steps=4", "populations.0.params.plan_every=2", "populations.1.params.plan_every=2",
                 f"populations.0.params.tool_mode={tool_mode}", f"populations.1.params.tool_mode={tool_mode}"]
    runs = []
    for fast in (False, True):
        monkeypatch.setattr(prompts_module, "PACKAGED_FAST_PATH", fast)
        model = MarketModel(load_scenario("llm_double_auction", overrides=overrides), output_dir=tmp_path / str(fast),
                            chat_model=ScriptedChatModel(sensible_either_mode))
        model.run()
        runs.append([{k: v for k, v in e.items() if k != "timestamp"} for e in events(model)
                     if e["event_type"] != "simulation_start"])
        libraries = {id(a.policy._ctx().prompts): a.policy._ctx().prompts for a in model.traders if isinstance(a.policy, LLMPolicy)}
        assert all(lib.packaged_fast_path is fast for lib in libraries.values())
    assert runs[0] == runs[1]
    calls = [e for e in runs[1] if e["event_type"] == "llm_call"]
    assert any(e["event_type"] == "trade" for e in runs[1]) and {c["content"]["purpose"] for c in calls} == {"plan", "act"}


def test_the_fast_path_is_where_the_time_went_not_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sandbox hook runs for a shipped template on the fast path (the hooks were its cost)."""
    from mesa_llm.agents import template_sandbox

    hooked: list[str] = []
    original = template_sandbox.PromptSandbox.getattr

    def counting(self: Any, obj: Any, attribute: str) -> Any:
        hooked.append(attribute)
        return original(self, obj, attribute)

    monkeypatch.setattr(template_sandbox.PromptSandbox, "getattr", counting)
    model = MarketModel(load_scenario("llm_double_auction"), record=False, chat_model=_NeverCalled())
    policy, observation = _llm_agents(model)[0]
    _both_ways(policy, observation)
    assert hooked  # the reference ran in the sandbox
    hooked.clear()
    policy.render_prompts(observation)
    assert not hooked
    _ = tool_call_response  # the scripted helpers this module shares with the LLM tests


@pytest.mark.parametrize("fast", [False, True])
def test_a_prompt_past_the_length_cap_fails_on_either_path(fast: bool) -> None:
    """The prompt-length cap holds outside the sandbox too (one character past it fails, at it not)."""
    from mesa_llm.agents.template_sandbox import MAX_PROMPT_CHARS

    library = PromptLibrary()
    library.packaged_fast_path = fast
    assert (library._packaged("memory.j2") is not None) is True
    frame = len("Recent events:\n- \n")  # the rendered text around the one event (its newline is stripped after)
    fits = library.render("memory.j2", memory={"summary": "", "recent": ["x" * (MAX_PROMPT_CHARS - frame)]})
    assert len(fits) == MAX_PROMPT_CHARS - 1
    with pytest.raises(PromptError, match=f"rendered more than {MAX_PROMPT_CHARS:,} characters"):
        library.render("memory.j2", memory={"summary": "", "recent": ["x" * (MAX_PROMPT_CHARS + 1 - frame)]})
