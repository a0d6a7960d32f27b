"""The layers page (docs/architecture/layers.md) and the reference name every part of the package.

A subpackage that lands without a row in the layers table, or a public subpackage missing from the
API reference, fails here until the documentation says where it belongs.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mesa_llm"
LAYERS = ROOT / "docs" / "architecture" / "layers.md"
REFERENCE = ROOT / "docs" / "reference"
#: public subpackages with an API page of their own (the others are internals of a page's module)
REFERENCED = ("rl", "server", "testing")


def subpackages() -> set[str]:
    """The folders of the package that are Python packages (an ``__init__.py``)."""
    return {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def layer_rows(text: str) -> set[str]:
    """The folder names the first cells of the layers table name: ``| `market/` |`` -> ``market``."""
    return set(re.findall(r"^\| `([a-z_]+)/`", text, re.M))


def documented_modules() -> set[str]:
    """Every module an ``automodule`` directive of the reference documents."""
    return {m for page in REFERENCE.glob("*.md") for m in re.findall(r"\.\. automodule:: ([\w.]+)", page.read_text(encoding="utf-8"))}


def test_helpers_read_rows_and_directives():
    assert layer_rows("| `market/` | x |\n| `cli.py` | y |\n|`bad/`|\n| `dashboard/` | z |") == {"market", "dashboard"}
    assert {"rl", "server", "testing", "market", "agents"} <= subpackages()


def test_every_subpackage_has_a_row_in_the_layers_table():
    rows = layer_rows(LAYERS.read_text(encoding="utf-8"))
    assert subpackages() - rows == set(), f"{LAYERS.name}: no row for {sorted(subpackages() - rows)}"
    assert rows - subpackages() == set(), f"{LAYERS.name}: rows for no package: {sorted(rows - subpackages())}"


def test_the_reference_documents_the_landed_front_ends():
    documented = documented_modules()
    missing = [name for name in REFERENCED if f"mesa_llm.{name}" not in documented]
    assert missing == [], f"docs/reference: no automodule for {missing}"
