"""The REST API of `mesa-llm serve` through httpx (FastAPI's TestClient): simulations created,
stepped, run, steered and closed through `Simulation`; an external agent driven end to end;
recordings listed, paged and summarised; policies and checkpoints; errors as one JSON line.

Skipped without the server extra unless MESA_LLM_REQUIRE_SERVER=1 (set by .ci/run).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.extras import skip_module_unless

skip_module_unless("server", "fastapi", "uvicorn", "websockets", "httpx")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from mesa_llm.cli import app as cli_app  # noqa: E402
from mesa_llm.server import ServerSettings, create_app  # noqa: E402

ME = {
    "name": "me", "role": "buyer", "count": 1, "policy": "external",
    "private": {"widget": {"units": 2, "values": [150.0, 140.0]}}, "endowment": {"cash": 1000.0},
}  # fmt: skip
WITH_ME = [f"populations.2={json.dumps(ME)}"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(ServerSettings(recordings=tmp_path / "rec", extra_hosts=("testserver",)))
    with TestClient(app) as c:
        yield c


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/simulations", json={"scenario": "double_auction", **body})
    assert response.status_code == 201, response.text
    return response.json()


def _wait(client: TestClient, sim_id: str, status: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.get(f"/api/simulations/{sim_id}").json()
        if info["status"] in status:
            return info
        time.sleep(0.02)
    raise AssertionError(f"{sim_id} never reached {status}: {info}")


# ----------------------------------------------------------------------------- simulations


def test_create_list_get_step_state_metrics_delete(client: TestClient, tmp_path: Path) -> None:
    sim = _create(client, seed=3, steps=12)
    assert sim["status"] == "idle" and sim["step"] == 0 and sim["max_steps"] == 12 and sim["seed"] == 3
    assert [s["id"] for s in client.get("/api/simulations").json()] == [sim["id"]]
    result = client.post(f"/api/simulations/{sim['id']}/step", json={"steps": 3}).json()
    assert [r["step"] for r in result["reports"]] == [1, 2, 3]
    assert result["simulation"]["step"] == 3
    state = client.get(f"/api/simulations/{sim['id']}/state").json()
    assert state["step"] == 3 and len(state["agents"]) == 12 and "widget" in state["goods"]
    metrics = client.get(f"/api/simulations/{sim['id']}/metrics").json()
    assert metrics["trades"] == sum(r["trades"] for r in result["reports"])
    agents = client.get(f"/api/simulations/{sim['id']}/agents").json()
    assert {a["role"] for a in agents} == {"buyer", "seller"}
    deleted = client.delete(f"/api/simulations/{sim['id']}").json()
    assert deleted["status"] == "stopped"
    assert client.get(f"/api/simulations/{sim['id']}").status_code == 404
    recording = tmp_path / "rec" / sim["recording"]
    last = _events(recording)[-1]
    assert last["event_type"] == "simulation_end" and last["content"]["status"] == "stopped"
    assert last["content"]["final_step"] == 3


def test_a_run_at_a_rate_pauses_resumes_and_completes_with_its_recording(client: TestClient, tmp_path: Path) -> None:
    sim = _create(client, seed=1, steps=40)
    sid = sim["id"]
    started = time.monotonic()
    assert client.post(f"/api/simulations/{sid}/run", json={"rate": 100, "steps": 10}).json()["status"] == "running"
    info = _wait(client, sid, {"idle"})
    assert info["step"] == 10  # the run stops at its target, the simulation stays open
    assert time.monotonic() - started >= 0.08  # 10 steps at 100/s take at least ~0.09 s
    client.post(f"/api/simulations/{sid}/run", json={"rate": 0})
    client.post(f"/api/simulations/{sid}/pause")
    paused = _wait(client, sid, {"paused", "completed"})
    if paused["status"] == "paused":
        step = paused["step"]
        time.sleep(0.2)
        assert client.get(f"/api/simulations/{sid}").json()["step"] == step  # held
        assert client.post(f"/api/simulations/{sid}/resume").json()["status"] == "running"
    done = _wait(client, sid, {"completed"})
    assert done["step"] == 40
    assert client.post(f"/api/simulations/{sid}/step", json={"steps": 1}).status_code == 409
    events = _events(tmp_path / "rec" / done["recording"])
    assert events[-1]["event_type"] == "simulation_end" and events[-1]["content"]["status"] == "completed"


def test_pause_answers_once_the_step_in_progress_has_finished(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesa_llm.server.manager import LiveSimulation

    step_sync = LiveSimulation._step_sync

    def slow_step(self: LiveSimulation) -> Any:
        time.sleep(0.15)  # a step long enough that a pause lands in the middle of one
        return step_sync(self)

    monkeypatch.setattr(LiveSimulation, "_step_sync", slow_step)
    sid = _create(client, steps=1_000)["id"]
    client.post(f"/api/simulations/{sid}/run", json={"rate": 0})
    time.sleep(0.2)
    paused = client.post(f"/api/simulations/{sid}/pause").json()
    assert paused["status"] == "paused" and paused["step"] >= 1
    time.sleep(0.4)  # more than two steps' time: nothing may still be finishing
    assert client.get(f"/api/simulations/{sid}").json()["step"] == paused["step"]


def test_stop_ends_the_recording_and_the_state_stays_readable(client: TestClient, tmp_path: Path) -> None:
    sim = _create(client, steps=10_000)
    client.post(f"/api/simulations/{sim['id']}/run", json={"rate": 0})
    time.sleep(0.2)
    stopped = client.post(f"/api/simulations/{sim['id']}/stop").json()
    assert stopped["status"] == "stopped" and 0 < stopped["step"] < 10_000
    assert client.get(f"/api/simulations/{sim['id']}/state").json()["step"] == stopped["step"]
    events = _events(tmp_path / "rec" / sim["recording"])
    assert events[-1]["content"] == events[-1]["content"] | {"status": "stopped", "final_step": stopped["step"]}
    # every step that was run is in the recording, complete
    assert sum(e["event_type"] == "step_end" for e in events) == stopped["step"]


def test_schedule_a_stress_event_through_the_api(client: TestClient, tmp_path: Path) -> None:
    sim = _create(client, steps=20)
    sid = sim["id"]
    answer = client.post(f"/api/simulations/{sid}/events", json={"event": {"type": "flash_crash", "magnitude": 0.2, "duration": 5}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["event"]["at_step"] == 1 and answer.json()["event"]["type"] == "flash_crash"
    bad = client.post(f"/api/simulations/{sid}/events", json={"event": {"type": "flash_crash", "magnitude": "big"}})
    assert bad.status_code == 422 and "magnitude" in bad.json()["error"] and "\n" not in bad.json()["error"]
    client.post(f"/api/simulations/{sid}/step", json={"steps": 2})
    client.post(f"/api/simulations/{sid}/stop")
    events = _events(tmp_path / "rec" / sim["recording"])
    applied = [e for e in events if e["event_type"] == "scheduled_event" and e["step"] == 1]
    assert applied and any("flash_crash" in json.dumps(e["content"]) for e in applied)


# ----------------------------------------------------------------------------- external agents


def test_an_external_agent_end_to_end(client: TestClient, tmp_path: Path) -> None:
    sim = _create(client, seed=3, steps=5, overrides=WITH_ME)
    sid = sim["id"]
    [me] = sim["external_agents"]
    base = f"/api/simulations/{sid}/agents/{me}"
    obs = client.get(f"{base}/observation").json()
    assert obs["agent_id"] == me and obs["account"]["cash"] == 1000.0
    assert "place_order" in json.dumps(obs["available_actions"])
    order = {"type": "place_order", "good": "widget", "side": "buy", "price": 199.0, "quantity": 1}
    answer = client.post(f"{base}/actions", json={"actions": [order]}).json()
    assert answer == {"refused": [], "agent_id": me, "step": 1}
    # a sell without goods passes the schema and is refused by the world's rules when the step resolves
    client.post(f"/api/simulations/{sid}/step", json={"steps": 1})
    sell = {"type": "place_order", "good": "widget", "side": "sell", "price": 10.0, "quantity": 3}
    client.post(f"{base}/actions", json={"actions": [sell]})
    report = client.post(f"/api/simulations/{sid}/step", json={"steps": 1}).json()["reports"][0]
    assert [r["type"] for r in report["rejections"][str(me)]] == ["place_order"]
    state = client.get(f"/api/simulations/{sid}/state").json()
    mine = next(a for a in state["agents"] if a["agent_id"] == me)
    assert mine["holdings"]["widget"] == 1 and mine["cash"] < 1000.0  # the buy at 199 filled
    refused = client.post(f"{base}/actions", json={"actions": [{"type": "fly_to_the_moon"}]}).json()["refused"]
    assert len(refused) == 1 and "\n" not in json.dumps(refused)
    # not external / no such agent
    assert client.post(f"/api/simulations/{sid}/agents/1/actions", json={"actions": []}).status_code == 409
    assert client.get(f"/api/simulations/{sid}/agents/99/observation").status_code == 404
    client.post(f"/api/simulations/{sid}/stop")
    events = _events(tmp_path / "rec" / sim["recording"])
    assert any(e["event_type"] == "external_actions" and e["agent_id"] == me for e in events)


# ----------------------------------------------------------------------------- errors


def test_a_bad_override_is_the_line_validate_prints(client: TestClient) -> None:
    for override in ("steps=abc", "populations.0.count=-1", "nonsense.field=1"):
        answer = client.post("/api/simulations", json={"scenario": "double_auction", "overrides": [override]})
        assert answer.status_code == 422
        result = CliRunner().invoke(cli_app, ["validate", "double_auction", "--set", override])
        assert result.exit_code == 2
        assert result.output.strip() == f"error: {answer.json()['error']}"
    unknown = client.post("/api/simulations", json={"scenario": "no_such_scenario"})
    assert unknown.status_code == 422 and unknown.json()["error"].startswith("no_such_scenario: no such scenario")


def test_errors_are_one_json_line_with_a_proper_status(client: TestClient) -> None:
    cases = [
        (client.get("/api/simulations/sim-404"), 404, "no simulation 'sim-404'"),
        (client.post("/api/simulations", content=b'{"scenario": ', headers={"content-type": "application/json"}), 400, "not valid JSON"),
        (client.post("/api/simulations", json={"scenario": "double_auction", "seed": "three"}), 422, "seed"),
        (client.post("/api/simulations", json={"scenario": "double_auction", "colour": "red"}), 422, "colour"),
        (client.post("/api/simulations", json={"scenario": "/etc/passwd"}), 422, "not a path"),
        (client.get("/api/nothing-here"), 404, "not found"),
        (client.put("/api/health"), 405, "method not allowed"),
    ]
    for response, status, text in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error"} and text in body["error"] and "\n" not in body["error"]
        assert "Traceback" not in response.text


def test_the_open_simulation_limit(tmp_path: Path) -> None:
    app = create_app(ServerSettings(recordings=tmp_path, max_simulations=2, extra_hosts=("testserver",)))
    with TestClient(app) as client:
        first, _second = _create(client, steps=5), _create(client, steps=5)
        refused = client.post("/api/simulations", json={"scenario": "double_auction"})
        assert refused.status_code == 429 and "at most 2 open simulations" in refused.json()["error"]
        client.post(f"/api/simulations/{first['id']}/stop")  # a closed one does not count
        assert client.post("/api/simulations", json={"scenario": "double_auction"}).status_code == 201


def test_the_agent_limit_is_checked_before_a_simulation_is_built(tmp_path: Path) -> None:
    built: list[str] = []

    def build(*args: Any, **kwargs: Any) -> Any:
        from mesa_llm import Simulation

        built.append(args[0])
        return Simulation.from_scenario(*args, **kwargs)

    settings = ServerSettings(recordings=tmp_path, max_agents=20, extra_hosts=("testserver",))
    with TestClient(create_app(settings, build=build)) as client:
        refused = client.post("/api/simulations", json={"scenario": "double_auction", "overrides": ["populations.0.count=15"]})
        assert refused.status_code == 422 and "21 agents" in refused.json()["error"] and "at most 20" in refused.json()["error"]
        assert built == []
        assert client.post("/api/simulations", json={"scenario": "double_auction", "overrides": ["populations.0.count=14"]}).status_code == 201
        assert built == ["double_auction"]


def test_shutdown_closes_every_open_simulation(tmp_path: Path) -> None:
    app = create_app(ServerSettings(recordings=tmp_path, extra_hosts=("testserver",)))
    with TestClient(app) as client:
        running = _create(client, steps=100_000)
        idle = _create(client, steps=5)
        client.post(f"/api/simulations/{running['id']}/run", json={"rate": 0})
        time.sleep(0.1)
    for sim in (running, idle):
        last = _events(tmp_path / sim["recording"])[-1]
        assert last["event_type"] == "simulation_end" and last["content"]["status"] == "interrupted"


# ----------------------------------------------------------------------------- recordings


def test_recordings_are_listed_paged_filtered_and_summarised(client: TestClient) -> None:
    sim = _create(client, seed=2, steps=15)
    client.post(f"/api/simulations/{sim['id']}/step", json={"steps": 15})
    listed = client.get("/api/recordings").json()
    assert [r["name"] for r in listed] == [sim["recording"]]
    base = f"/api/recordings/{sim['recording']}"
    trades = client.get(f"{base}/events", params={"type": "trade", "limit": 1000}).json()
    assert trades["total"] == len(trades["events"]) > 3
    assert {e["event_type"] for e in trades["events"]} == {"trade"}
    # paging walks the same events in order
    pages, offset = [], 0
    while offset is not None:
        page = client.get(f"{base}/events", params={"type": "trade", "limit": 2, "offset": offset}).json()
        pages += page["events"]
        offset = page["next_offset"]
    assert [e["event_id"] for e in pages] == [e["event_id"] for e in trades["events"]]
    window = client.get(f"{base}/events", params={"from_step": 3, "to_step": 5, "type": "step_start,step_end"}).json()
    assert sorted({e["step"] for e in window["events"]}) == [3, 4, 5] and window["total"] == 6
    agent = client.get(f"{base}/events", params={"agent_id": 1, "type": ["order", "observation"]}).json()
    assert agent["total"] > 0 and {e["agent_id"] for e in agent["events"]} == {1}
    summary = client.get(f"{base}/summary").json()
    assert summary["trades"] == trades["total"] and summary["scenario"] == "double_auction"


def test_a_corrupt_recording_is_one_line_naming_it_not_the_server_path(client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir(exist_ok=True)
    (folder / "broken.jsonl").write_text('{"event_id": 1}\nnot json\n')
    answer = client.get("/api/recordings/broken.jsonl/summary")
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("broken.jsonl") and str(tmp_path) not in answer.json()["error"]


# ----------------------------------------------------------------------------- catalog


def test_scenarios_policies_and_checkpoints_without_rl(client: TestClient) -> None:
    names = {s["name"] for s in client.get("/api/scenarios").json()}
    assert {"double_auction", "financial_market_stress"} <= names
    policies = client.get("/api/policies").json()
    rows = {p["name"]: p for p in policies["policies"]}
    assert rows["zi_c"]["source"] == "builtin" and rows["zi_c"]["status"] == "loaded"
    assert rows["external"]["source"] == "builtin"
    if importlib.util.find_spec("mesa_llm_sample_plugin") is not None:
        assert rows["sample_reference_trader"]["source"] == "plugin"
    if importlib.util.find_spec("mesa_llm.rl") is None:
        assert policies["checkpoints"]["rl_available"] is False and policies["checkpoints"]["checkpoints"] == []
        answer = client.post("/api/checkpoints/action", json={"checkpoint": "x", "observation": {}})
        assert answer.status_code == 501 and "mesa_llm.rl" in answer.json()["error"]


class _Checkpoint:
    def __init__(self, path: Path) -> None:
        self.price = float(path.read_text())

    def act(self, observation: dict[str, Any]) -> list[dict[str, Any]]:
        good = next(iter(observation["market"]))
        return [{"type": "place_order", "good": good, "side": "buy", "price": self.price, "quantity": 1}]


def test_a_checkpoint_answers_an_observation_through_the_rl_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("mesa_llm.rl")
    fake.__spec__ = importlib.machinery.ModuleSpec("mesa_llm.rl", None)
    loaded: list[Path] = []

    def load_checkpoint(path: Path) -> _Checkpoint:
        loaded.append(path)
        return _Checkpoint(path)

    fake.load_checkpoint = load_checkpoint  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mesa_llm.rl", fake)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "bidder.txt").write_text("123.5")
    (folder / ".hidden").write_text("1")
    outside = tmp_path / "secret.txt"
    outside.write_text("1")
    (folder / "link.txt").symlink_to(outside)
    app = create_app(ServerSettings(recordings=tmp_path / "rec", checkpoints=folder, extra_hosts=("testserver",)))
    with TestClient(app) as client:
        listed = client.get("/api/checkpoints").json()
        assert listed["rl_available"] is True
        assert [c["name"] for c in listed["checkpoints"]] == ["bidder.txt"]  # no link, no hidden file
        sim = _create(client, seed=3, steps=5, overrides=WITH_ME)
        [me] = sim["external_agents"]
        obs = client.get(f"/api/simulations/{sim['id']}/agents/{me}/observation").json()
        for _ in range(2):
            answer = client.post("/api/checkpoints/action", json={"checkpoint": "bidder.txt", "observation": obs})
            assert answer.status_code == 200, answer.text
        assert answer.json()["actions"][0]["price"] == 123.5
        assert loaded == [folder / "bidder.txt"]  # loaded once, lazily
        played = client.post(f"/api/simulations/{sim['id']}/agents/{me}/actions", json={"actions": answer.json()["actions"]})
        assert played.json()["refused"] == []
        for name in ("link.txt", "../secret.txt", "..", "a/b"):
            refused = client.post("/api/checkpoints/action", json={"checkpoint": name, "observation": obs})
            assert refused.status_code in (400, 404), (name, refused.text)
        assert loaded == [folder / "bidder.txt"]


# ----------------------------------------------------------------------------- docs


def test_the_openapi_document_describes_every_route_and_its_bodies(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    expected = {
        ("post", "/api/simulations"), ("get", "/api/simulations"), ("get", "/api/simulations/{sim_id}"),
        ("delete", "/api/simulations/{sim_id}"), ("post", "/api/simulations/{sim_id}/step"),
        ("post", "/api/simulations/{sim_id}/run"), ("post", "/api/simulations/{sim_id}/pause"),
        ("post", "/api/simulations/{sim_id}/resume"), ("post", "/api/simulations/{sim_id}/stop"),
        ("post", "/api/simulations/{sim_id}/events"), ("get", "/api/simulations/{sim_id}/state"),
        ("get", "/api/simulations/{sim_id}/metrics"), ("get", "/api/simulations/{sim_id}/agents/{agent_id}/observation"),
        ("post", "/api/simulations/{sim_id}/agents/{agent_id}/actions"), ("get", "/api/recordings"),
        ("get", "/api/recordings/{name}/events"), ("get", "/api/recordings/{name}/summary"), ("get", "/api/policies"),
        ("post", "/api/checkpoints/action"),
    }  # fmt: skip
    assert expected <= {(m, p) for p, ops in paths.items() for m in ops}
    create = paths["/api/simulations"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CreateSimulation")
    assert set(create["responses"]) >= {"201", "422", "429"}
    schemas = doc["components"]["schemas"]
    assert {"scenario", "overrides", "seed", "steps", "model"} <= set(schemas["CreateSimulation"]["properties"])
    assert "policy\": \"external" in schemas["CreateSimulation"]["properties"]["overrides"]["description"]
    assert "state_update" in doc["info"]["description"] and "schedule_event" in doc["info"]["description"]
    page = client.get("/docs")
    assert page.status_code == 200 and "/api/simulations/{sim_id}/agents/{agent_id}/actions" in page.text
    assert "<script" not in page.text.lower() and "cdn" not in page.text.lower()
