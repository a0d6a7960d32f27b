"""Recordings are data (issue 17, findings 1 and 5): a shared recording picks no file to read and no
host to call, and the counts its header claims are checked before anything is built.

A replay or fork renders the prompt templates from the texts the header holds (each checked against
its recorded SHA-256) or from the shipped template with the recorded hash; the recorded
``source_dir``, override paths and ``llm.api_base`` are never used. These tests edit real
recordings as a hostile sender would and run them through ``mesa-llm replay``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm import ChatRequest, ChatResponse
from mesa_llm.llm.testing import ScriptedChatModel, text_response, tool_call_response
from mesa_llm.model import MarketModel
from mesa_llm.replay import ReplayError, replay
from mesa_llm.scenario import load_scenario
from tests.fake_openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
#: what the "stolen" file holds: it must show up in no request and no recording
MARKER = "root:x:0:0:STOLEN-FILE-MARKER"
KEY = "sk-user-own-key-must-stay-home-0042"
_VALUE = re.compile(r"values of your next units ([0-9.]+)")
_COST = re.compile(r"costs of your next units ([0-9.]+)")


def _answer(request: ChatRequest) -> ChatResponse:
    """Plans in text, bids under its next value, asks over its next cost."""
    if request.purpose == "plan":
        return text_response("Bid under value, ask over cost.")
    text = "\n".join(m["content"] for m in request.messages if m["role"] == "user" and m.get("content"))
    if (m := _VALUE.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "buy", "price": round(float(m.group(1)) - 5, 2), "quantity": 1})
    if (m := _COST.search(text)) is not None:
        return tool_call_response("place_order", {"good": "widget", "side": "sell", "price": round(float(m.group(1)) + 5, 2), "quantity": 1})
    return tool_call_response("wait", {})


def _server_answer(request: dict[str, Any]) -> dict[str, Any]:
    """The same behaviour behind the fake OpenAI server."""
    if not request.get("tools"):
        return {"content": "Bid under value, ask over cost."}
    return {"content": None, "tool_calls": [{"name": "wait", "arguments": "{}"}]}


def _record(folder: Path, steps: int = 3, templates: dict[str, str] | None = None) -> Path:
    """A short run of one LLM buyer and one LLM seller (answered in-process) and its recording;
    ``templates`` are prompt overrides (file name -> text) written next to the scenario."""
    folder.mkdir(parents=True, exist_ok=True)
    overrides = [f"steps={steps}", "populations.0.count=1", "populations.1.count=1"]
    raw = load_scenario("llm_double_auction", overrides=overrides).model_dump(mode="json", exclude={"source_dir"})
    for name, text in (templates or {}).items():
        (folder / f"my_{name}.j2").write_text(text)
        raw["populations"][0]["templates"][name] = f"my_{name}.j2"
    scenario = folder / "scenario.yaml"  # written as JSON, which is YAML
    scenario.write_text(json.dumps(raw))
    model = MarketModel(
        load_scenario(str(scenario)), output_dir=folder / "runs", chat_model=ScriptedChatModel(_answer, name="scripted/s")
    )
    model.run()
    assert model.recording_path is not None
    return model.recording_path


def _edited(path: Path, edit: Callable[[dict[str, Any]], None], name: str = "edited.jsonl") -> Path:
    """A copy of the recording whose header (``simulation_start`` content) ``edit`` changed."""
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    edit(header["content"])
    out = path.parent / name
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return out


def _evil_folder(tmp_path: Path) -> Path:
    """A folder a hostile header points at: every file name an override could pick holds the marker."""
    evil = tmp_path / "elsewhere"
    evil.mkdir()
    for name in ("passwd", "my_act.j2", "act.j2"):
        (evil / name).write_text(f"{MARKER} {{{{ observation_text }}}}")
    return evil


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


# ------------------------------------------------------------------------------- files and hosts


def test_a_fork_sends_no_file_and_no_key_to_the_host_a_recording_names(tmp_path):
    """The issue's case: a header edited to ``source_dir: /etc``, ``templates: {act: passwd}`` and
    the sender's ``api_base``. The fork calls the server of the user's own environment, renders
    the recorded templates, sends nothing to the sender's host and says in one line how to call it."""
    source = _record(tmp_path / "run")
    evil = _evil_folder(tmp_path)
    with FakeOpenAIServer(responder=_server_answer) as sender, FakeOpenAIServer(responder=_server_answer) as own:

        def edit(header: dict[str, Any]) -> None:
            header["scenario"]["source_dir"] = str(evil)
            spec = header["scenario"]["spec"]
            spec["llm"]["templates"] = {"act": "passwd"}
            spec["populations"][0]["templates"] = {"act": "passwd", "plan": "passwd"}
            spec["llm"]["api_base"] = sender.base_url

        hostile = _edited(source, edit)
        out = runner.invoke(
            app,
            ["replay", str(hostile), "--until-step", "1", "--then-model", "openai/fake-model", "--out", str(tmp_path / "o")],
            env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": own.base_url, "OPENAI_API_BASE": own.base_url, "COLUMNS": "400"},
        )
        sent_to_sender = sender.request_count
        own_requests = list(own.requests)
    assert out.exit_code == 0, out.output
    assert sent_to_sender == 0, "the fork called the host the recording named"
    assert own_requests, "the fork made no live call"  # it went to the user's own server instead
    assert MARKER not in json.dumps(own_requests)
    fork = next((tmp_path / "o" / "replays").glob("*.jsonl"))
    assert MARKER not in fork.read_text() and KEY not in fork.read_text()
    notes = [line for line in _lines(out.output) if sender.base_url in line]
    assert len(notes) == 1 and "--api-base" in notes[0]


def test_the_recorded_api_base_is_used_only_when_the_user_repeats_it(tmp_path):
    source = _record(tmp_path / "run")
    with FakeOpenAIServer(responder=_server_answer) as server:
        hostile = _edited(source, lambda h: h["scenario"]["spec"]["llm"].update(api_base=server.base_url))
        out = runner.invoke(
            app,
            ["replay", str(hostile), "--until-step", "1", "--then-model", "openai/fake-model",
             "--api-base", server.base_url, "--out", str(tmp_path / "o")],
            env={"OPENAI_API_KEY": KEY, "COLUMNS": "400"},
        )  # fmt: skip
        headers = list(server.request_headers)
    assert out.exit_code == 0, out.output
    assert headers and all(h.get("authorization") == f"Bearer {KEY}" for h in headers)  # the user's choice


@pytest.mark.parametrize(
    "edit",
    [
        "source_dir_elsewhere",
        "override_absolute",
        "override_dotdot",
        "override_symlink_out",
        "scenario_template_passwd",
    ],
)
def test_replay_verify_renders_the_recorded_templates_whatever_the_header_points_at(tmp_path, edit):
    """Templates come from the recording's own texts: a header pointing its folder or its override
    names elsewhere (absolute, ``..``, a symlink out) changes nothing, and no file of there is read."""
    source = _record(tmp_path / "run", templates={"act": "CUSTOM ACT {{ observation_text }}"})
    evil = _evil_folder(tmp_path)
    (evil / "link.j2").symlink_to(evil / "passwd")

    def change(header: dict[str, Any]) -> None:
        spec = header["scenario"]["spec"]
        pop = spec["populations"][0]
        if edit == "source_dir_elsewhere":
            header["scenario"]["source_dir"] = str(evil)
        elif edit == "override_absolute":
            pop["templates"]["act"] = str(evil / "passwd")
        elif edit == "override_dotdot":
            pop["templates"]["act"] = "../" * 12 + str(evil / "passwd").lstrip("/")
        elif edit == "override_symlink_out":
            header["scenario"]["source_dir"] = str(evil)
            pop["templates"]["act"] = "link.j2"
        else:
            header["scenario"]["source_dir"] = str(evil)
            spec["llm"]["templates"] = {"act": "passwd", "system": "passwd"}

    hostile = _edited(source, change)
    out = runner.invoke(app, ["replay", str(hostile), "--verify", "--out", str(tmp_path / "o")], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    assert "identical to the recording" in out.output and "Traceback" not in out.output
    replayed = next((tmp_path / "o" / "replays").glob("*.jsonl")).read_text()
    assert MARKER not in replayed and "CUSTOM ACT" in replayed  # the recorded override, as recorded


def test_a_template_text_that_does_not_hash_to_the_recorded_hash_is_refused_by_verify(tmp_path):
    source = _record(tmp_path / "run", templates={"act": "CUSTOM ACT {{ observation_text }}"})

    def tamper(header: dict[str, Any]) -> None:
        texts = header["llm"]["prompt_texts"]
        for digest, text in texts.items():
            if text.startswith("CUSTOM ACT"):
                texts[digest] = f"{MARKER} {{{{ observation_text }}}}"

    hostile = _edited(source, tamper)
    started = time.perf_counter()
    out = runner.invoke(app, ["replay", str(hostile), "--verify", "--out", str(tmp_path / "o")], env={"COLUMNS": "400"})
    assert out.exit_code == 2, out.output
    (line,) = _lines(out.output)
    assert line.startswith(f"error: {hostile}: ") and "act.j2" in line
    assert not (tmp_path / "o").exists()  # refused before anything was built
    assert time.perf_counter() - started < 10
    # without --verify it replays (answers come from the recording) and says which template it
    # could not reproduce; the tampered text is never rendered
    result = replay(hostile, output_dir=tmp_path / "p")
    assert any("act.j2" in note for note in result.notes)
    assert result.recording is not None and MARKER not in result.recording.read_text()


def test_a_fork_from_step_0_is_live_from_the_first_step(tmp_path):
    source = _record(tmp_path / "run", steps=2)
    result = replay(
        source,
        until_step=0,
        then_model="scripted/other",
        live_chat_model=lambda agent_id, name: ScriptedChatModel(_answer, name=name),
        output_dir=tmp_path / "fork",
    )
    assert result.recording is not None and result.live_calls > 0 and result.replayed_calls == 0
    calls = [json.loads(line)["content"] for line in result.recording.read_text().splitlines() if '"llm_call"' in line]
    assert calls and {c["model"] for c in calls} == {"scripted/other"}


# ---------------------------------------------------------------------------------------- bounds


def _limited_replay(args: list[str], timeout: float = 60.0) -> tuple[subprocess.CompletedProcess[str], float]:
    """``python -m mesa_llm replay ARGS`` in a child with 3 GB of address space (a hang or a build of
    a million agents fails the test rather than the machine)."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mesa_llm", "replay", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, preexec_fn=limit,
    )  # fmt: skip
    return done, time.perf_counter() - started


def _million_agents(header: dict[str, Any]) -> None:
    pops = header["scenario"]["spec"]["populations"]
    pops[-1]["count"] = 1_000_000 - sum(p["count"] for p in pops[:-1])
    header["notices"] = ["padding " * 12_000]  # a 100 KB file, as in the issue


@pytest.mark.parametrize("verify", [True, False])
def test_a_small_recording_claiming_a_million_agents_is_refused_fast(tmp_path, verify):
    source = _record(tmp_path / "run")
    hostile = _edited(source, _million_agents)
    assert 90_000 < hostile.stat().st_size < 200_000
    out = tmp_path / "o"
    done, took = _limited_replay([str(hostile), *(["--verify"] if verify else []), "--out", str(out)])
    assert done.returncode == 2, done.stderr[-2000:]
    lines = _lines(done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    listed = len(json.loads(source.read_text().splitlines()[0])["content"]["agents"])
    # refused by the agent limit (scenario validation) or by the header's own count, whichever comes first
    assert "1,000,000 agents" in lines[0] and (f"lists {listed}" in lines[0] or "at most 50,000" in lines[0])
    assert took < 30 and not out.exists()


def test_a_header_claiming_more_agents_than_it_lists_is_refused_in_the_api_too(tmp_path):
    source = _record(tmp_path / "run")
    listed = len(json.loads(source.read_text().splitlines()[0])["content"]["agents"])
    hostile = _edited(source, lambda h: h["scenario"]["spec"]["populations"][0].update(count=3))
    with pytest.raises(ReplayError, match=f"has {listed + 2} agents but the header lists {listed}"):
        replay(hostile, verify=True, output_dir=tmp_path / "o")


def test_a_fork_of_a_header_claiming_a_huge_horizon_is_refused_fast(tmp_path):
    source = _record(tmp_path / "run")
    hostile = _edited(source, lambda h: h.update(steps=10**12))
    done, took = _limited_replay(
        [str(hostile), "--until-step", "1", "--agent-policy", "0=zi_c", "--agent-policy", "1=zi_c", "--out", str(tmp_path / "o")]
    )
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = _lines(done.stderr)
    assert "1,000,000,000,000 steps" in line and took < 30


def test_a_recording_whose_steps_jump_far_ahead_is_refused_fast(tmp_path):
    """A small file whose last step is numbered 900,000 would make a replay run 900,000 steps."""
    model = MarketModel(load_scenario("double_auction", overrides=["steps=3"]), output_dir=tmp_path / "run")
    model.run()  # rule-based agents: nothing stops a replay early
    assert model.recording_path is not None
    events = [json.loads(line) for line in model.recording_path.read_text().splitlines()]
    events[0]["content"]["steps"] = 1_000_000  # a horizon a scenario may have
    for event in events:
        if event["step"] >= 3:
            event["step"] = 900_000 + event["step"] - 3
            if event["event_type"] in ("step_start", "step_end"):
                event["content"]["step"] = event["step"]
    jumped = tmp_path / "jumped.jsonl"
    jumped.write_text("".join(json.dumps(e) + "\n" for e in events))
    done, took = _limited_replay([str(jumped), "--out", str(tmp_path / "o")])
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = _lines(done.stderr)
    assert "step 3 has no step_end" in line and "900,000" in line and took < 30


def test_a_header_listing_fewer_templates_than_were_rendered_does_not_verify(tmp_path):
    source = _record(tmp_path / "run", templates={"act": "CUSTOM ACT {{ observation_text }}"})

    def drop_act(header: dict[str, Any]) -> None:
        for hashes in header["llm"]["prompts"].values():
            hashes.pop("act.j2", None)

    hostile = _edited(source, drop_act)
    out = runner.invoke(app, ["replay", str(hostile), "--verify", "--out", str(tmp_path / "o")], env={"COLUMNS": "400"})
    assert out.exit_code == 1 and "act.j2" in out.output and "Traceback" not in out.output
