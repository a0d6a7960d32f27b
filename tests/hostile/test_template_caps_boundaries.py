"""Each template budget holds at its own boundary, with its own reason: one past the cap is refused,
the cap itself renders (a cap raised or skipped is caught here, not hidden behind another budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesa_llm.agents import template_sandbox as budgets
from mesa_llm.agents.prompts import PromptError, PromptLibrary, resolve_overrides


def _render(folder: Path, source: str) -> str:
    (folder / "t.j2").write_text(source)
    return PromptLibrary(resolve_overrides({"act": "t.j2"}, folder)).render("act.j2")


def test_one_value_longer_than_the_string_cap_is_refused(tmp_path: Path) -> None:
    half = budgets.MAX_TEMPLATE_STRING // 2
    assert _render(tmp_path, f"{{% set a = 'x' * {half} %}}{{{{ (a ~ a)|length }}}}") == str(2 * half)
    with pytest.raises(PromptError, match="built too long a value"):
        _render(tmp_path, f"{{% set a = 'x' * {half} %}}{{{{ (a ~ a ~ 'y')|length }}}}")


def test_many_values_under_the_string_cap_end_at_the_total_budget(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(budgets, "MAX_TEMPLATE_BUILT_CHARS", 50_000)
    source = "{% set a = 'x' * 5000 %}{% for i in range(N) %}{% set b = a ~ a %}{% endfor %}ok"
    assert _render(tmp_path, source.replace("N", "3")) == "ok"
    with pytest.raises(PromptError, match="built more than 50,000 characters in all"):
        _render(tmp_path, source.replace("N", "10"))


def test_a_number_past_the_bit_cap_is_refused(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(budgets, "MAX_TEMPLATE_INT_BITS", 100)
    a = "{% set a = (2 ** 48) * (2 ** 50) %}"  # 2**98: 99 bits
    assert _render(tmp_path, a + "{{ (a + a).bit_length() }}") == "100"
    with pytest.raises(PromptError, match=r"built too large a number \(more than 100 bits\)"):
        _render(tmp_path, a + "{{ a + a + a + a }}")  # 101 bits, built by additions


def test_a_range_past_jinjas_cap_is_refused_without_iterating(tmp_path: Path) -> None:
    cap = budgets.MAX_RANGE
    assert _render(tmp_path, f"{{{{ range({cap})|length }}}}") == str(cap)
    with pytest.raises(PromptError, match=rf"range of {cap + 1:,} items \(at most {cap:,}\)"):
        _render(tmp_path, f"{{{{ range({cap + 1})|length }}}}")


def test_tojson_indent_past_its_cap_is_refused(tmp_path: Path) -> None:
    cap = budgets.MAX_JSON_INDENT
    assert '\n' + ' ' * cap + '"a": 1' in _render(tmp_path, f"{{{{ {{'a': 1}}|tojson(indent={cap}) }}}}")
    with pytest.raises(PromptError, match=rf"tojson indent {cap + 1} \(at most {cap}\)"):
        _render(tmp_path, f"{{{{ {{'a': 1}}|tojson(indent={cap + 1}) }}}}")


def test_an_exponent_past_its_cap_is_refused_before_any_number_is_built(tmp_path: Path) -> None:
    cap = budgets.MAX_TEMPLATE_EXPONENT
    assert _render(tmp_path, f"{{{{ (2 ** {cap}).bit_length() }}}}") == str(cap + 1)
    with pytest.raises(PromptError, match="exponent too large"):
        _render(tmp_path, f"{{{{ 2 ** {cap + 1} }}}}")  # a small number: only the exponent cap refuses it
