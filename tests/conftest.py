"""Shared fixtures: small scenarios built in code, and a temporary recordings folder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesa_llm.resources import scenarios_dir

SMALL_AUCTION: dict[str, Any] = {
    "name": "tiny_auction",
    "description": "two buyers, two sellers",
    "seed": 1,
    "steps": 5,
    "tick_size": 0.01,
    "goods": [{"name": "widget", "reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}],
    "market": {"check_invariants": True},
    "populations": [
        {
            "name": "buyers",
            "role": "buyer",
            "count": 2,
            "policy": "zi_c",
            "private": {"widget": {"units": 2, "values": [150.0, 120.0]}},
            "endowment": {"cash": 500.0},
        },
        {
            "name": "sellers",
            "role": "seller",
            "count": 2,
            "policy": "zi_c",
            "private": {"widget": {"units": 2, "costs": [50.0, 80.0]}},
            "endowment": {"holdings": {"widget": 2}},
        },
    ],
}


@pytest.fixture
def small_auction() -> dict[str, Any]:
    """A deep copy of a tiny induced-value market, to modify freely."""
    return copy.deepcopy(SMALL_AUCTION)


@pytest.fixture
def shipped_raw() -> dict[str, dict[str, Any]]:
    """The raw YAML of every shipped scenario."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(scenarios_dir().glob("*.yaml"))}


def write_yaml(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML to ``path`` and return the path."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
