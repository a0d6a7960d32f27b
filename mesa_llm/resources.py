"""Locates the packaged data folders (scenarios, prompts) in a wheel or a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder holding the shipped ``name`` data (``"scenarios"`` or ``"prompts"``).

    A wheel carries them under ``mesa_llm/_data/``; an editable install or a source checkout
    uses the top-level folders of the repository.
    """
    packaged = _PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"mesa_llm data folder {name!r} not found (looked in {packaged} and {checkout})"
    )


def scenarios_dir() -> Path:
    """The folder of shipped scenario YAML files."""
    return data_dir("scenarios")


def prompts_dir() -> Path:
    """The folder of shipped Jinja prompt templates."""
    return data_dir("prompts")
