"""`mesa-llm serve` on the wire: the real command (uvicorn on 127.0.0.1, a free port) and a
`websockets` client — a stream of state updates, pause, resume, a flash crash scheduled and seen
in the next updates, stop; a slow client gets coalesced updates and the latest state; SIGTERM
ends every recording with simulation_end.

Skipped without the server extra unless MESA_LLM_REQUIRE_SERVER=1 (set by .ci/run).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import skip_module_unless
from tests.support.processes import ServeProcess

skip_module_unless("server", "fastapi", "uvicorn", "websockets", "httpx")

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    running = ServeProcess(tmp_path_factory.mktemp("recordings"))
    try:
        yield running
    finally:
        running.close()


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _recv(ws: ClientConnection, timeout: float = 20) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _until(ws: ClientConnection, kind: str, timeout: float = 20) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Messages up to the first of type ``kind``: (it, the state updates before it)."""
    updates = []
    deadline = time.monotonic() + timeout
    while True:
        message = await _recv(ws, max(0.1, deadline - time.monotonic()))
        if message["type"] == kind:
            return message, updates
        assert message["type"] == "state_update", message
        updates.append(message)


def test_stream_pause_resume_flash_crash_and_stop(server: ServeProcess) -> None:
    status, sim = server.json("POST", "/api/simulations", {"scenario": "financial_market_stress", "seed": 2, "steps": 5000})
    assert status == 201, sim

    async def drive() -> None:
        async with connect(server.ws(f"/api/simulations/{sim['id']}/stream")) as ws:
            first = await _recv(ws)
            assert first["type"] == "state_update" and first["tick"] == 0 and first["data"]["events"] == []
            assert {"agents", "environment", "metrics", "events"} == set(first["data"])
            await ws.send(json.dumps({"type": "control", "command": "run", "params": {"rate": 40}, "id": "go"}))
            ack, _ = await _until(ws, "ack")
            assert ack["id"] == "go" and ack["result"]["simulation"]["status"] == "running"
            ticks = [(await _recv(ws))["tick"] for _ in range(5)]
            assert ticks == list(range(ticks[0], ticks[0] + 5))  # one update per step, none missed

            await ws.send(json.dumps({"type": "control", "command": "pause", "id": 2}))
            ack, before = await _until(ws, "ack")
            assert ack["result"]["simulation"]["status"] == "paused"
            held = ack["result"]["simulation"]["step"]
            # at most the step in progress and the paused status follow, then nothing
            quiet = []
            with pytest.raises(TimeoutError):
                while True:
                    quiet.append(await _recv(ws, 0.6))
            assert len(quiet) <= 2 and all(m["tick"] <= held + 1 for m in quiet)
            paused_at = (quiet or before or [first])[-1]["tick"]

            await ws.send(json.dumps({"type": "control", "command": "resume"}))
            ack, _ = await _until(ws, "ack")
            assert ack["result"]["simulation"]["status"] == "running"
            assert (await _recv(ws))["tick"] >= paused_at

            crash = {"event": {"type": "flash_crash", "magnitude": 0.3, "duration": 5}}
            await ws.send(json.dumps({"type": "control", "command": "schedule_event", "params": crash, "id": "crash"}))
            ack, _ = await _until(ws, "ack")
            at = ack["result"]["event"]["at_step"]
            seen = None
            for _ in range(50):
                update = await _recv(ws)
                if update["type"] != "state_update":
                    continue
                applied = [e for e in update["data"]["events"] if e["event_type"] == "scheduled_event"]
                if applied:
                    seen = (update["tick"], applied)
                    break
            assert seen is not None and seen[0] == at
            assert "flash_crash" in json.dumps(seen[1])

            await ws.send(json.dumps({"type": "control", "command": "stop", "id": "end"}))
            ack, _ = await _until(ws, "ack")
            assert ack["result"]["simulation"]["status"] == "stopped"
            end, last = await _until(ws, "simulation_end")
            assert end["status"] == "stopped" and end["tick"] == ack["result"]["simulation"]["step"]
            assert last and last[-1]["data"]["environment"]["status"] == "stopped"
            with pytest.raises(ConnectionClosed) as closed:
                await _recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

    asyncio.run(drive())
    events = _events(server.recordings / sim["recording"])
    assert events[-1]["event_type"] == "simulation_end" and events[-1]["content"]["status"] == "stopped"
    # the crash is in the recording too (a replay repeats it)
    assert any(e["event_type"] == "event_scheduled" for e in events)


def test_a_slow_client_gets_coalesced_updates_and_the_latest_state(server: ServeProcess) -> None:
    body = {"scenario": "double_auction", "seed": 1, "steps": 200,
            "overrides": ["populations.0.count=50", "populations.1.count=50"]}  # fmt: skip
    status, sim = server.json("POST", "/api/simulations", body)
    assert status == 201, sim

    async def drive() -> list[dict[str, Any]]:
        # a client that reads nothing while 200 steps of 100 agents stream at it (~175 kB each)
        async with connect(server.ws(f"/api/simulations/{sim['id']}/stream"), max_queue=2, max_size=None) as ws:
            first = await _recv(ws)
            status, _ = server.json("POST", f"/api/simulations/{sim['id']}/run", {"rate": 0})
            assert status == 200
            deadline = time.monotonic() + 120
            while server.json("GET", f"/api/simulations/{sim['id']}")[1]["status"] != "completed":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            messages = [first]
            while True:
                message = await _recv(ws)
                messages.append(message)
                if message["type"] == "simulation_end":
                    return messages

    messages = asyncio.run(drive())
    updates = [m for m in messages if m["type"] == "state_update"]
    assert updates[-1]["tick"] == 200 and updates[-1]["data"]["environment"]["status"] == "completed"
    assert sum(m["skipped_updates"] for m in updates) > 0  # it was too slow: coalesced
    assert len(updates) < 100  # bounded by the client queue and the socket buffers, not 200
    # nothing is lost silently: every step and every event is in a message or counted as skipped
    steps = [m for m in updates[1:] if m["tick"] > 0]
    assert sum(1 + m["skipped_updates"] for m in steps) == 200 + (len(steps) - len({m["tick"] for m in steps}))
    recorded = [e for e in _events(server.recordings / sim["recording"]) if 1 <= e["step"] <= 200
                and e["event_type"] not in ("simulation_start", "simulation_end", "run_stopped", "llm_usage")]  # fmt: skip
    assert sum(len(m["data"]["events"]) + m["skipped_events"] for m in steps) == len(recorded)


def test_sigterm_ends_every_recording(tmp_path: Path) -> None:
    own = ServeProcess(tmp_path)
    try:
        _, running = own.json("POST", "/api/simulations", {"scenario": "double_auction", "steps": 100_000})
        _, idle = own.json("POST", "/api/simulations", {"scenario": "double_auction", "seed": 5})
        own.json("POST", f"/api/simulations/{running['id']}/run", {"rate": 0})
        time.sleep(0.5)
        own.proc.send_signal(signal.SIGTERM)
        own.proc.wait(timeout=30)
        assert "Traceback" not in own.output()
    finally:
        own.close()
    for sim in (running, idle):
        last = _events(tmp_path / sim["recording"])[-1]
        assert last["event_type"] == "simulation_end" and last["content"]["status"] == "interrupted"
