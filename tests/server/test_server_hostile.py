"""Hostile traffic against `mesa-llm serve`: malformed JSON, unknown commands, oversized messages
and bodies, 200 connections on loopback, path traversal in recording names, foreign Host and
Origin, floods, and a non-loopback host without a token — each refused cleanly, the server stays
up, and the simulation running meanwhile keeps a complete recording.

Skipped without the server extra unless MESA_LLM_REQUIRE_SERVER=1 (set by .ci/run).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import skip_module_unless
from tests.support.processes import ServeProcess

skip_module_unless("server", "fastapi", "uvicorn", "websockets", "httpx")

from fastapi.testclient import TestClient  # noqa: E402
from starlette.testclient import WebSocketDenialResponse  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

from mesa_llm.server import ServerSettings, create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server with a simulation running in the background all along (checked at the end)."""
    running = ServeProcess(tmp_path_factory.mktemp("recordings"))
    try:
        status, sim = running.json("POST", "/api/simulations", {"scenario": "double_auction", "steps": 100_000})
        assert status == 201, sim
        running.json("POST", f"/api/simulations/{sim['id']}/run", {"rate": 20})
        running.background = sim  # type: ignore[attr-defined]
        yield running
        # the server stayed up through everything, and the run's recording is whole
        status, info = running.json("POST", f"/api/simulations/{sim['id']}/stop")
        assert status == 200 and info["status"] == "stopped" and info["step"] > 0, info
        events = [json.loads(line) for line in (running.recordings / sim["recording"]).read_text().splitlines()]
        assert events[-1]["event_type"] == "simulation_end" and events[-1]["content"]["final_step"] == info["step"]
        assert sum(e["event_type"] == "step_end" for e in events) == info["step"]
        assert "Traceback" not in running.output()
    finally:
        running.close()


async def _recv(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _reply(ws: ClientConnection) -> dict[str, Any]:
    """The next ack or error (state updates skipped)."""
    while True:
        message = await _recv(ws)
        if message["type"] in ("ack", "error"):
            return message


def _alive(server: ServeProcess) -> None:
    status, health = server.json("GET", "/api/health")
    assert status == 200 and health["status"] == "ok"


# ----------------------------------------------------------------------------- messages


def test_malformed_unknown_and_oversized_messages_are_answered_and_the_socket_stays(server: ServeProcess) -> None:
    sim = server.background  # type: ignore[attr-defined]

    async def drive() -> None:
        async with connect(server.ws(f"/api/simulations/{sim['id']}/stream?events=none"), max_size=None) as ws:
            cases = [
                ("{not json", "not JSON"),
                ("[1, 2]", "a JSON object"),
                (json.dumps({"type": "subscribe"}), "unknown message type 'subscribe'"),
                (json.dumps({"type": "control", "command": "self_destruct", "id": 7}), "unknown command 'self_destruct'"),
                (json.dumps({"type": "control", "command": "step", "params": {"steps": -3}}), "params.steps"),
                (json.dumps({"type": "control", "command": "run", "params": "fast"}), "params: a JSON object"),
                (json.dumps({"type": "control", "command": "schedule_event", "params": {"event": {"type": "meteor"}}}), "unknown event type 'meteor'"),
                (json.dumps({"type": "control", "command": "pause", "params": {}, "pad": "x" * 70_000}), "larger than 65536 bytes"),
            ]  # fmt: skip
            for text, expected in cases:
                await ws.send(text)
                reply = await _reply(ws)
                assert reply["type"] == "error" and expected in reply["error"], (text[:60], reply)
                assert "\n" not in reply["error"] and "Traceback" not in reply["error"]
                await asyncio.sleep(0.06)  # under the rate limit
            await ws.send(b"\x00\x01binary")
            assert "binary" in (await _reply(ws))["error"]
            await asyncio.sleep(0.06)
            await ws.send(json.dumps({"type": "control", "command": "resume", "id": "still-here"}))
            ack = await _reply(ws)
            assert ack["type"] == "ack" and ack["id"] == "still-here"

        # a frame beyond what the server reads at all (1 MiB) closes that connection, nothing else
        async with connect(server.ws(f"/api/simulations/{sim['id']}/stream?events=none"), max_size=None) as ws:
            await _recv(ws)
            await ws.send("x" * (2 * 1024 * 1024))
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(50):
                    await _recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    asyncio.run(drive())
    _alive(server)


def test_a_flood_is_rate_limited_and_the_connection_goes_on(server: ServeProcess) -> None:
    sim = server.background  # type: ignore[attr-defined]

    async def drive() -> None:
        async with connect(server.ws(f"/api/simulations/{sim['id']}/stream?events=none")) as ws:
            started = time.monotonic()
            for i in range(200):
                await ws.send(json.dumps({"type": "control", "command": "resume", "id": i}))
            elapsed = time.monotonic() - started
            acks, errors = 0, []
            until = time.monotonic() + 1.5  # the answers to the flood (state updates go on meanwhile)
            with contextlib.suppress(TimeoutError):
                while time.monotonic() < until:
                    message = await _recv(ws, until - time.monotonic())
                    if message["type"] == "ack":
                        acks += 1
                    elif message["type"] == "error":
                        errors.append(message["error"])
            assert acks <= 20 + 20 * (elapsed + 0.5) < 200  # the burst and the rate, not the flood
            assert errors and all("rate limit" in e for e in errors) and len(errors) <= 3
            await ws.send(json.dumps({"type": "control", "command": "resume", "id": "after"}))
            assert (await _reply(ws))["id"] == "after"

    asyncio.run(drive())
    _alive(server)


def test_200_connections_on_loopback(server: ServeProcess) -> None:
    sim = server.background  # type: ignore[attr-defined]

    async def one() -> ClientConnection | int:
        try:
            return await connect(server.ws(f"/api/simulations/{sim['id']}/stream"), open_timeout=60)
        except InvalidStatus as exc:
            body = json.loads(exc.response.body or b"{}")
            assert "too many connections" in body.get("error", ""), body
            return exc.response.status_code

    async def drive() -> None:
        results = await asyncio.gather(*(one() for _ in range(200)))
        sockets = [r for r in results if not isinstance(r, int)]
        refused = [r for r in results if isinstance(r, int)]
        try:
            assert len(sockets) == 64 and refused == [503] * 136  # the limit, refused with a reason
            status, health = server.json("GET", "/api/health")
            assert status == 200 and health["connections"] == 64
            stepped = health and server.json("GET", f"/api/simulations/{sim['id']}")[1]["step"]
            # the accepted ones are served
            assert (await _recv(sockets[-1]))["type"] == "state_update"
            await asyncio.sleep(0.3)
            assert server.json("GET", f"/api/simulations/{sim['id']}")[1]["step"] > stepped
        finally:
            await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
        deadline = time.monotonic() + 10
        while server.json("GET", "/api/health")[1]["connections"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        again = await connect(server.ws(f"/api/simulations/{sim['id']}/stream"))
        await again.close()

    asyncio.run(drive())
    _alive(server)


def test_oversized_and_malformed_request_bodies(server: ServeProcess) -> None:
    big = json.dumps({"scenario": "double_auction", "overrides": ["x=" + "y" * (2 * 1024 * 1024)]}).encode()
    status, text = server.raw("POST", "/api/simulations", big, {"Content-Type": "application/json"})
    assert status == 413 and json.loads(text) == {"error": "request body larger than 1048576 bytes"}
    # the same without a Content-Length (chunked): counted as it arrives
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/api/simulations")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for start in range(0, len(big), 65536):
            chunk = big[start : start + 65536]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the rest
    response = conn.getresponse()
    assert response.status == 413 and "larger than" in json.loads(response.read())["error"]
    conn.close()
    for body in (b"{", b'{"scenario": "double_auction",}', b"\xff\xfe", b"null"):
        status, text = server.raw("POST", "/api/simulations", body, {"Content-Type": "application/json"})
        assert status in (400, 422) and set(json.loads(text)) == {"error"} and "Traceback" not in text
    _alive(server)


# ----------------------------------------------------------------------------- names and paths


def test_path_traversal_in_recording_names(server: ServeProcess, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"password": "hunter2"}\n')
    (server.recordings / "link.jsonl").symlink_to(secret)
    (server.recordings / "folder.jsonl").mkdir()
    os.mkfifo(server.recordings / "fifo.jsonl")
    names = [
        "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fsecret.jsonl", "..", "%2e%2e", "%2Fetc%2Fpasswd",
        "..%5C..%5Csecret.jsonl", "link.jsonl", "folder.jsonl", "fifo.jsonl", "secret.jsonl%00.jsonl",
        f"{'%2E%2E%2F' * 3}{secret.name}", "~root%2F.bashrc",
    ]  # fmt: skip
    for name in names:
        for what in ("events", "summary"):
            status, text = server.raw("GET", f"/api/recordings/{name}/{what}")
            assert status in (400, 404), (name, status, text)
            assert set(json.loads(text)) == {"error"} and "hunter2" not in text and "root:" not in text
    listed = [r["name"] for r in server.json("GET", "/api/recordings")[1]]
    assert not {"link.jsonl", "folder.jsonl", "fifo.jsonl"} & set(listed)
    _alive(server)


# ----------------------------------------------------------------------------- host, origin, token


def test_foreign_host_and_origin_are_refused(server: ServeProcess) -> None:
    sim = server.background  # type: ignore[attr-defined]
    for headers in ({"Host": f"evil.example:{server.port}"}, {"Host": "127.0.0.1:1"}, {"Origin": "http://evil.example"}):
        status, text = server.raw("POST", f"/api/simulations/{sim['id']}/pause", b"", headers)
        assert status == 403 and set(json.loads(text)) == {"error"}
    assert server.json("GET", f"/api/simulations/{sim['id']}")[1]["status"] == "running"  # nothing was done

    async def drive() -> None:
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws(f"/api/simulations/{sim['id']}/stream"), origin="http://evil.example")
        assert refused.value.response.status_code == 403
        own = await connect(server.ws(f"/api/simulations/{sim['id']}/stream"), origin=f"http://127.0.0.1:{server.port}")
        await own.close()

    asyncio.run(drive())


def test_a_non_loopback_host_needs_a_token() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "mesa_llm", "serve", "--host", host, "--port", "0"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2 and time.monotonic() - started < 60
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "not a loopback address" in lines[0] and "--token-file" in lines[0]
        assert "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="not a loopback address"):
        ServerSettings(host="0.0.0.0")


def test_with_a_token_every_api_call_carries_it(tmp_path: Path) -> None:
    token = "s3cret-token-" + "x" * 20
    settings = ServerSettings(recordings=tmp_path, host="0.0.0.0", port=8000, token=token, extra_hosts=("testserver",))
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/health").json()["token_required"] is True  # public: says a token is needed
        assert client.get("/").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"}, {"Authorization": f"Basic {token}"}):
            refused = client.get("/api/simulations", headers=headers)
            assert refused.status_code == 401 and set(refused.json()) == {"error"} and token not in refused.text
        good = {"Authorization": f"Bearer {token}"}
        created = client.post("/api/simulations", json={"scenario": "double_auction", "steps": 3}, headers=good)
        assert created.status_code == 201
        sid = created.json()["id"]
        with pytest.raises(WebSocketDenialResponse), client.websocket_connect(f"/api/simulations/{sid}/stream"):
            pass
        # a browser sends the token as a subprotocol; a program as the header
        with client.websocket_connect(f"/api/simulations/{sid}/stream", subprotocols=["mesa-llm", f"bearer.{token}"]) as ws:
            assert ws.accepted_subprotocol == "mesa-llm"
            assert json.loads(ws.receive_text())["type"] == "state_update"
        with client.websocket_connect(f"/api/simulations/{sid}/stream", headers=good) as ws:
            assert json.loads(ws.receive_text())["type"] == "state_update"


def test_a_token_file_is_read_or_generated_privately(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    own = ServeProcess(tmp_path / "rec", "--token-file", str(token_file))
    try:
        token = token_file.read_text().strip()
        assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        # generated: printed once, with the file it is kept in
        assert own.output().count(token) == 1 and str(token_file) in own.output()
        status, text = own.raw("GET", "/api/simulations")
        assert status == 401
        status, text = own.raw("GET", "/api/simulations", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(text) == []
    finally:
        own.close()
    again = ServeProcess(tmp_path / "rec", "--token-file", str(token_file))
    try:  # read from the file: never printed again
        assert token not in again.output()
        status, _ = again.raw("GET", "/api/simulations", headers={"Authorization": f"Bearer {token}"})
        assert status == 200
    finally:
        again.close()
    for content in ("short", "two words here and more", ""):
        token_file.write_text(content)
        result = subprocess.run(
            [sys.executable, "-m", "mesa_llm", "serve", "--port", "0", "--token-file", str(token_file)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2 and "--token-file" in result.stderr and len(result.stderr.strip().splitlines()) == 1
