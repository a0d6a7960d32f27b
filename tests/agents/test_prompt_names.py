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
