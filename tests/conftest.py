"""Shared fixtures: small scenarios built in code, `run_scenario`, the `requires(...)` marker for optional
extras, and `no_network` for tests that must not connect anywhere."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesa_llm.resources import scenarios_dir
from tests.llm_cassettes import CASSETTE_HOST, CASSETTE_PORT, recording
from tests.support.extras import missing_reason, required

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*modules, extra=None, install=None): needs optional modules; skips without them unless "
        "MESA_LLM_REQUIRE_<EXTRA>=1 (set by .ci/run), which makes a missing install a failure",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers(name="requires"):
        extra = str(mark.kwargs.get("extra") or mark.args[0])
        reason = missing_reason(extra, *mark.args, install=mark.kwargs.get("install"))
        if reason is None:
            continue
        if required(extra):
            pytest.fail(f"MESA_LLM_REQUIRE_{extra.upper()}=1 but it {reason}", pytrace=False)
        pytest.skip(reason)


@dataclass
class ScenarioRun:
    """What `run_scenario` gives back: the closed simulation's summary, its recording and events."""

    summary: Any
    recording: Path | None
    events: list[dict[str, Any]]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The recorded events of one type, in order."""
        return [e for e in self.events if e["event_type"] == event_type]


@pytest.fixture
def run_scenario(tmp_path: Path) -> Callable[..., ScenarioRun]:
    """Run a scenario (shipped name, path, dict or spec) to the end through `mesa_llm.Simulation`.

    ``run_scenario("double_auction", steps=5, seed=2, overrides=["market.fee_per_unit=0.5"])``; the
    recording goes under the test's tmp_path."""
    from mesa_llm import Simulation

    counter = iter(range(10**6))

    def run(scenario: Any, *, steps: int | None = None, seed: int | None = None, record: bool = True, **kwargs: Any) -> ScenarioRun:
        out = tmp_path / f"run{next(counter)}"
        sim = Simulation.from_scenario(scenario, seed=seed, out=out if record else None, record=record, **kwargs)
        with sim:
            sim.run(steps)
        path = sim.recording_path
        events = [json.loads(line) for line in Path(path).read_text().splitlines()] if path else []
        return ScenarioRun(summary=sim.summary(), recording=Path(path) if path else None, events=events)

    return run


class NetworkBlocked(OSError):
    """Raised instead of connecting anywhere a cassette test must not go."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any real socket connect; while recording, allow only the fake server's fixed address."""
    allowed = {(CASSETTE_HOST, CASSETTE_PORT)} if recording() else set()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and tuple(address[:2]) not in allowed:
            raise NetworkBlocked(f"network access blocked in cassette tests: {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
