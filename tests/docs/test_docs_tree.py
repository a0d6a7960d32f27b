"""The documentation's structure: every tutorial is listed and executed, and none can reach a network LLM.

Read from the files (nothing is built here; CI builds the site with ``sphinx-build -W -n``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIALS = DOCS / "tutorials"
FRONT_MATTER = "---\nfile_format: mystnb\n"


def code_cells(text: str) -> list[str]:
    """The source of every ``{code-cell}`` of a MyST notebook."""
    return re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S)


def toctree_entries(text: str) -> list[str]:
    """The documents a page's toctree lists."""
    entries: list[str] = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, re.S):
        entries += [line.strip() for line in block.splitlines() if line.strip() and not line.startswith(":")]
    return entries


def conf_settings() -> dict[str, object]:
    """The literal top-level assignments of docs/conf.py (read, not executed)."""
    settings: dict[str, object] = {}
    for node in ast.parse((DOCS / "conf.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                settings[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return settings


def test_helpers_read_cells_and_toctrees():
    page = "```{toctree}\n:maxdepth: 1\n\na\nb\n```\n```{code-cell} ipython3\nx = 1\n```\n```python\ny\n```"
    assert toctree_entries(page) == ["a", "b"]
    assert code_cells(page) == ["x = 1\n"]


def test_the_twelve_tutorials_are_listed_in_order():
    pages = sorted(p.stem for p in TUTORIALS.glob("[0-9][0-9]-*.md"))
    assert len(pages) == 12 and [p[:2] for p in pages] == [f"{i:02d}" for i in range(1, 13)]
    assert toctree_entries((TUTORIALS / "index.md").read_text(encoding="utf-8")) == pages


def test_every_tutorial_is_an_executed_notebook():
    for page in sorted(TUTORIALS.glob("[0-9][0-9]-*.md")):
        text = page.read_text(encoding="utf-8")
        assert text.startswith(FRONT_MATTER), f"{page.name}: not a MyST-NB notebook (front matter)"
        assert code_cells(text), f"{page.name}: no code cell to execute"


def test_no_tutorial_code_can_reach_a_network_llm():
    # a model string of a hosted provider or a URL in executed code would call out during the build
    banned = re.compile(r"gpt-|claude|gemini|anthropic/|https?://(?!127\.0\.0\.1)|--model\b")
    for page in sorted(TUTORIALS.glob("*.md")):
        for cell in code_cells(page.read_text(encoding="utf-8")):
            hit = banned.search(cell)
            assert hit is None, f"{page.name}: {hit.group(0)!r} in a code cell"


def test_execution_is_cached_bounded_and_fails_the_build():
    settings = conf_settings()
    assert settings["nb_execution_mode"] == "cache"
    assert settings["nb_execution_raise_on_error"] is True
    assert 0 < settings["nb_execution_timeout"] <= 300  # type: ignore[operator]


def test_the_build_and_its_cache_are_not_committed():
    ignored = (DOCS.parent / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "docs/_build/" in ignored


def test_every_page_is_in_a_toctree():
    pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.md") if "_build" not in p.parts}
    listed = {"index"}
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        folder = page.parent.relative_to(DOCS).as_posix()
        for entry in toctree_entries(page.read_text(encoding="utf-8")):
            listed.add(entry if folder == "." else f"{folder}/{entry}")
    assert pages - listed == set(), f"pages in no toctree: {sorted(pages - listed)}"
