"""The step's time limit scales with the step's work (issue 24): ``llm.step_timeout`` bounds each
round of ``llm.concurrency`` calls, so a step with more calls than fit in flight at once (or a slow
machine) gives a slower step, not failed calls; a provider that never answers is still cut."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesa_llm import Simulation
from tests.fake_openai_server import FakeOpenAIServer

KEY = "sk-test-not-a-real-key"


@pytest.fixture()
def slow_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency_s=0.3) as server:
        yield server


def _calls(server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> list[dict[str, Any]]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    overrides = ["populations.0.count=4", "populations.1.count=4", "populations.0.params.plan_every=1",
                 "populations.1.params.plan_every=1", "llm.concurrency=2", "llm.step_timeout=1",
                 "llm.max_attempts=1", "llm.max_failed_steps=0", *extra]  # fmt: skip
    with Simulation.from_scenario("llm_double_auction", overrides=overrides, steps=1, out=out,
                                  model="openai/fake-model", api_base=server.base_url) as sim:  # fmt: skip
        sim.run()
        path = sim.recording_path
    assert path is not None
    events = [json.loads(line) for line in Path(path).read_text().splitlines()]
    return [e["content"] for e in events if e["event_type"] == "llm_call"]


def test_more_calls_than_fit_in_flight_make_a_slower_step_not_failed_calls(
    slow_server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 agents plan and act: 16 calls of 0.3 s two at a time take ~2.4 s, past a fixed 1 s limit
    calls = _calls(slow_server, tmp_path, monkeypatch)
    assert len(calls) == 16
    assert [c["error"] for c in calls if c["error"]] == []


def test_a_provider_that_never_answers_is_still_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        server.fail_always(status=None, delay_s=30.0)  # accepts and never answers in time
        calls = _calls(server, tmp_path, monkeypatch, "llm.timeout=25")
    errors = [c["error"] for c in calls]
    assert errors and all("step's time limit" in (e or "") for e in errors)
    # the limit grew with the calls made (8 plan calls two at a time: 4 s), not without bound
    assert all("(4 s: llm.step_timeout = 1 s per 2 calls of the step)" in (e or "") for e in errors), errors[:2]
