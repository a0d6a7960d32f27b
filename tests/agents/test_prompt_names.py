"""Logical template names: each shipped template an agent renders can be overridden by its name and
has its hash in ``template_hashes``, including ``tools`` (the shared beginning of plan and act)."""

from __future__ import annotations

from pathlib import Path

from mesa_llm.agents.prompts import LOGICAL_TEMPLATES, PromptLibrary, resolve_overrides
from mesa_llm.resources import prompts_dir


def test_every_template_act_and_plan_include_is_a_logical_name() -> None:
    included = {"tools.j2"}  # what act.j2 and plan.j2 include
    for name in ("act.j2", "plan.j2"):
        assert '{% include "tools.j2" %}' in (prompts_dir() / name).read_text()
    assert included <= set(LOGICAL_TEMPLATES.values())


def test_tools_is_overridden_by_its_logical_name_and_hashed(tmp_path: Path) -> None:
    (tmp_path / "my_tools.j2").write_text("MY TOOLS {{ max_actions }}")
    shipped = PromptLibrary()
    library = PromptLibrary(resolve_overrides({"tools": "my_tools.j2"}, tmp_path))
    assert "tools.j2" in shipped.template_hashes("buyer")
    assert library.template_hashes("buyer")["tools.j2"] != shipped.template_hashes("buyer")["tools.j2"]
    # the other hashes are the shipped ones: only the override changed
    others = {k: v for k, v in library.template_hashes("buyer").items() if k != "tools.j2"}
    assert others == {k: v for k, v in shipped.template_hashes("buyer").items() if k != "tools.j2"}
    context = {"observation_text": "OBS", "memory_text": "", "plan": None, "max_actions": 2, "tool_mode": "json",
               "tool_names": ["wait"], "tool_signatures": ["wait() - Do nothing."], "example": "{}", "persona": {}}
    for name in ("act.j2", "plan.j2"):  # both calls take the override
        assert library.render(name, **context).startswith("MY TOOLS 2")


def test_a_library_whose_act_includes_no_tools_records_no_tools_template() -> None:
    # a replay renders a recording's own texts: one made before tools.j2 existed must not seem
    # to have changed because the shipped tools.j2 (which its act.j2 never included) is listed
    old = PromptLibrary(texts={"act.j2": "ACT {{ observation_text }}", "plan.j2": "PLAN"})
    assert "tools.j2" not in old.template_sources("buyer")
    assert "tools.j2" in PromptLibrary().template_sources("buyer")  # the shipped act.j2 includes it
    overridden = PromptLibrary(texts={"act.j2": "ACT", "plan.j2": "PLAN", "tools.j2": "MINE"})
    assert overridden.template_sources("buyer")["tools.j2"] == "MINE"
