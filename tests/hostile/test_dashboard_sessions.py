"""Dashboard sessions: the live page's parameters pass the checks of ``mesa-llm validate``; a
session ends with its page (recording finished, temporary folder gone); replays of one file share
one loaded recording; a dashboard target is a regular file."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.dashboard.sessions import LiveSession, ReplaySession, apply_params
from mesa_llm.model import MarketModel
from mesa_llm.recording import load_events
from mesa_llm.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _four_populations(tmp_path: Path) -> Path:
    """double_auction with its buyers and sellers split in two populations each (3 agents each)."""
    raw = yaml.safe_load((ROOT / "scenarios" / "double_auction.yaml").read_text())
    buyers, sellers = raw["populations"]
    raw["populations"] = [
        {**buyers, "name": "buyers_a", "count": 3},
        {**buyers, "name": "buyers_b", "count": 3},
        {**sellers, "name": "sellers_a", "count": 3},
        {**sellers, "name": "sellers_b", "count": 3},
    ]
    path = tmp_path / "four.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _validate_line(path: Path, overrides: list[str]) -> str:
    """What ``mesa-llm validate`` says of the file with these overrides (its one error line)."""
    args = ["validate", str(path)]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ")
    return result.output.removeprefix("error: ").rstrip("\n")


def test_reset_with_four_million_agents_is_refused_as_validate_refuses_it(tmp_path: Path) -> None:
    path = _four_populations(tmp_path)
    million = dict.fromkeys(("buyers_a", "buyers_b", "sellers_a", "sellers_b"), 1_000_000)
    params = {"counts": million, "k": 0.5, "fee_per_unit": 0.0}
    expected = _validate_line(path, [f"populations.{i}.count=1000000" for i in range(4)])
    spec = load_scenario(path)
    with pytest.raises(ScenarioError) as refused:  # each population alone is within bounds
        apply_params(spec, params, source=str(path))
    assert str(refused.value) == expected
    live = LiveSession(spec, output_dir=tmp_path / "out", source=str(path))
    before = live.model
    live.step()
    live.reset(params)
    assert live.error == f"cannot reset: {expected}"
    assert live.model is before and live.steps == 1 and len(live.model.traders) == 12  # the run goes on
    live.reset({"counts": dict.fromkeys(million, 2), "k": 0.5, "fee_per_unit": 0.0})
    assert live.error is None and len(live.model.traders) == 8
    live.end()


@pytest.mark.parametrize(
    ("params", "override"),
    [({"counts": {"buyers": -1}}, "populations.0.count=-1"), ({"fee_per_unit": -5.0}, "market.fee_per_unit=-5.0")],
)
def test_every_parameter_is_checked_as_validate_checks_it(params: dict[str, Any], override: str) -> None:
    path = ROOT / "scenarios" / "double_auction.yaml"
    with pytest.raises(ScenarioError) as refused:
        apply_params(load_scenario(path), params, source=str(path))
    assert str(refused.value) == _validate_line(path, [override])


def test_a_nan_from_the_page_is_refused_naming_the_field() -> None:
    path = ROOT / "scenarios" / "double_auction.yaml"
    with pytest.raises(ScenarioError, match=rf"^{path}: market\.k: "):
        apply_params(load_scenario(path), {"k": float("nan")}, source=str(path))


def test_a_shipped_scenario_is_named_as_validate_names_it() -> None:
    live = LiveSession(load_scenario("double_auction"))  # as a script would start it: no source
    live.reset({"counts": {"buyers": 4_000_000}})
    assert live.error == f"cannot reset: {_validate_line(Path('double_auction'), ['populations.0.count=4000000'])}"
    live.end()


def _last_event(path: Path) -> dict[str, Any]:
    lines = path.read_bytes().splitlines()
    return dict(json.loads(lines[-1]))


def test_an_ended_session_stops_and_finishes_its_recording(tmp_path: Path) -> None:
    live = LiveSession(load_scenario("double_auction"), output_dir=tmp_path)
    assert live.step() and live.step()
    recording = live.model.recording_path
    assert _last_event(recording)["event_type"] == "step_end"
    live.end()
    end = _last_event(recording)
    assert end["event_type"] == "simulation_end" and end["content"]["status"] == "interrupted"
    assert end["content"]["final_step"] == 2
    assert not live.step() and live.steps == 2  # nothing moves any more
    live.reset()
    assert live.error is not None and live.model.recording_path == recording
    assert tmp_path.is_dir() and recording.exists()  # the user's folder and recording stay
    live.end()  # idempotent
    assert recording.read_bytes().count(b'"simulation_end"') == 1


def test_a_session_that_ran_to_its_end_stays_completed(tmp_path: Path) -> None:
    live = LiveSession(load_scenario("double_auction", overrides=["steps=2"]), output_dir=tmp_path)
    while live.step():
        pass
    live.end()
    end = _last_event(live.model.recording_path)
    assert end["event_type"] == "simulation_end" and end["content"]["status"] == "completed"


@pytest.mark.parametrize("how", ["end", "close"])
def test_an_ended_session_deletes_its_temporary_folder(how: str) -> None:
    live = LiveSession(load_scenario("double_auction"))
    live.step()
    folder = live.output_dir
    assert folder.is_dir() and any(folder.iterdir())
    getattr(live, how)()
    assert not folder.exists() and live.ended


def test_ending_during_a_long_step_returns_at_once_and_ends_after_it(tmp_path: Path) -> None:
    from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response

    release = threading.Event()

    def answer(request: Any) -> Any:
        release.wait(20)
        if request.purpose == "plan":
            return text_response("bid")
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": 50.0, "quantity": 1})

    spec = load_scenario("llm_double_auction", overrides=["steps=3"])
    live = LiveSession(spec, output_dir=tmp_path, chat_model=ScriptedChatModel(answer, name="scripted/test"))
    worker = threading.Thread(target=live.step)
    worker.start()
    deadline = time.monotonic() + 10
    while live.in_flight() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.in_flight() is not None
    started = time.monotonic()
    live.end()  # from the thread that closes the page: must not wait for the LLM
    assert time.monotonic() - started < 1.0 and live.ended
    recording = live.model.recording_path
    release.set()
    worker.join(20)
    deadline = time.monotonic() + 10
    while _last_event(recording)["event_type"] != "simulation_end" and time.monotonic() < deadline:
        time.sleep(0.05)
    end = _last_event(recording)
    assert end["event_type"] == "simulation_end" and end["content"]["status"] == "interrupted"
    assert not live.step()


def _recording(tmp_path: Path, steps: int = 5) -> Path:
    model = MarketModel(load_scenario("double_auction"), steps=steps, output_dir=tmp_path)
    model.run()
    assert model.recording_path is not None
    return model.recording_path


def test_two_replays_of_one_file_share_one_event_list(tmp_path: Path) -> None:
    path = _recording(tmp_path)
    first, second = ReplaySession(path), ReplaySession(str(path))
    assert first.events is second.events and first.steps is second.steps
    assert len(first.events) == len(load_events(path).events)
    # each keeps its own position and panels
    assert first.at(4).complete_step == 4 and second.at(1).complete_step == 1
    assert first.data is not second.data and first.at(4).complete_step == 4
    # the events are not changed by playing them
    before = json.dumps(first.events)
    first.at(5)
    first.at(0)
    assert json.dumps(second.events) == before


def test_a_changed_file_is_loaded_anew_and_an_unused_one_is_freed(tmp_path: Path) -> None:
    import gc
    import weakref

    path = _recording(tmp_path)
    first = ReplaySession(path)
    shorter = [line for line in path.read_bytes().splitlines(keepends=True) if b'"simulation_end"' not in line]
    path.write_bytes(b"".join(shorter))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = ReplaySession(path)
    assert second.events is not first.events and len(second.events) < len(first.events)
    gone = weakref.ref(first.recording)
    del first
    gc.collect()
    assert gone() is None  # no session holds it: freed


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from mesa_llm.dashboard import server

    calls: list[Any] = []
    monkeypatch.setattr(server, "serve", lambda *args, **kwargs: calls.append(args))
    return calls


@pytest.mark.parametrize("target", ["/proc/self/environ", "{tmp}/environ.jsonl", "{tmp}/environ.yaml", "{tmp}/fifo.jsonl", "{tmp}/folder.jsonl", "/dev/null"])
def test_a_dashboard_target_must_be_a_regular_file(target: str, tmp_path: Path, served: list[Any]) -> None:
    (tmp_path / "environ.jsonl").symlink_to("/proc/self/environ")
    (tmp_path / "environ.yaml").symlink_to("/proc/self/environ")
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    target = target.format(tmp=tmp_path)
    result = CliRunner().invoke(app, ["dashboard", target, "--no-browser", "--port", "0"])
    assert served == [] and result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith(f"error: {target}: "), result.output
    assert "PATH=" not in result.output  # nothing of the environment
