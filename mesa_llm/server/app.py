"""The FastAPI application: REST routes and the per-simulation WebSocket, all through
`mesa_llm.Simulation` (via `SimulationManager`), behind `mesa_llm.server.security.Gate`.

`create_app(settings)` builds one; ``mesa-llm serve`` runs it with uvicorn. Every error is JSON
``{"error": "one line"}`` with a 4xx/5xx status, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from mesa_llm.server import docs
from mesa_llm.server.catalog import CheckpointStore, policies, scenarios
from mesa_llm.server.errors import ApiError, one_line
from mesa_llm.server.manager import LiveSimulation, SimulationManager, report_dict
from mesa_llm.server.models import (
    ActionRequest,
    ActionResult,
    ActRequest,
    ActResult,
    AgentInfo,
    Checkpoints,
    CreateSimulation,
    ErrorBody,
    EventsPage,
    Health,
    Policies,
    RecordingInfo,
    RunRequest,
    ScenarioInfo,
    ScheduleRequest,
    ScheduleResult,
    SimulationInfo,
    StepRequest,
    StepResult,
)
from mesa_llm.server.recordings import RecordingStore
from mesa_llm.server.security import SUBPROTOCOL, Connections, Gate, offered_subprotocols
from mesa_llm.server.settings import MAX_EVENTS_PAGE, ServerSettings
from mesa_llm.server.stream import EventFilter, dumps
from mesa_llm.simulation import Simulation

_log = logging.getLogger("mesa_llm.server")

#: an event type name in a stream's ``events`` filter
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: the commands a WebSocket client may send (``{"type": "control", "command": ...}``)
COMMANDS = ("pause", "resume", "stop", "step", "run", "schedule_event")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "malformed request (not JSON, a bad name)"),
        (401, "bearer token missing or wrong"),
        (403, "Host or Origin not allowed"),
        (404, "no such simulation, agent, recording or checkpoint"),
        (409, "the simulation cannot do that now (it ended; the agent is not external)"),
        (413, "request body too large"),
        (422, "invalid value (the message names the field; a scenario error is the line `mesa-llm validate` prints)"),
        (429, "too many open simulations"),
    )
}


class StrictJSONResponse(JSONResponse):
    """JSON without NaN or infinities (they become null)."""

    def render(self, content: Any) -> bytes:
        """Compact, strict JSON."""
        return dumps(content).encode("utf-8")


def _package_version() -> str:
    try:
        return version("mesa_llm")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _validation_line(exc: ValidationError | RequestValidationError) -> tuple[int, str]:
    errors = list(exc.errors())
    if not errors:
        return 422, "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        return 400, one_line(f"request body: not valid JSON ({ctx.get('error', 'malformed')})")
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body" or len(first.get("loc", ())) == 1)
    message = f"{where or 'request'}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return 422, one_line(message)


def _event_filter(text: str | None) -> EventFilter:
    if text is None or text.strip() in ("", "*"):
        return None
    if text.strip() == "none":
        return frozenset()
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if not _EVENT_TYPE.fullmatch(n)]
    if bad or len(names) > 64:
        raise ApiError(422, "events: '*', 'none' or a comma-separated list of event types such as trade,clearing")
    return frozenset(names)


class TokenBucket:
    """At most ``rate`` messages per second on average, bursts of ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Whether one more message is allowed now."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def create_app(
    settings: ServerSettings | None = None,
    *,
    build: Callable[..., Simulation] | None = None,
) -> FastAPI:
    """The server's ASGI application (FastAPI behind the `Gate`).

    ``build``: how simulations are made (default `Simulation.from_scenario`; tests pass one that
    adds a chat model)."""
    settings = settings or ServerSettings()
    manager = SimulationManager(settings, build)
    store = RecordingStore(settings.recordings)
    checkpoints = CheckpointStore(settings.checkpoints)
    connections = Connections()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Ctrl-C, SIGTERM, the end of a test client: every open simulation's recording is ended
        await manager.shutdown()

    app = FastAPI(
        title="mesa-llm server",
        version=_package_version(),
        description=docs.API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=StrictJSONResponse,
        responses=_ERRORS,
    )
    app.state.manager = manager
    app.state.connections = connections
    app.add_middleware(Gate, settings=settings, connections=connections)

    # ------------------------------------------------------------------ errors

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return StrictJSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, message = _validation_line(exc)
        return StrictJSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"not found: {request.url.path} (GET /docs lists the API)"
        elif exc.status_code == 405:
            message = f"method not allowed: {request.method} {request.url.path}"
        else:
            message = one_line(exc.detail)
        return StrictJSONResponse({"error": one_line(message)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        line = one_line(f"internal error: {type(exc).__name__}: {exc}")
        _log.error("%s %s: %s", request.method, request.url.path, line)
        return StrictJSONResponse({"error": line}, status_code=500)

    # ------------------------------------------------------------------ pages

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> Response:
        return docs.page_response("index.html", "text/html; charset=utf-8", request.headers.get("host", ""))

    @app.get("/page.js", include_in_schema=False)
    async def page_js(request: Request) -> Response:
        return docs.page_response("page.js", "text/javascript; charset=utf-8", request.headers.get("host", ""))

    @app.get("/page.css", include_in_schema=False)
    async def page_css(request: Request) -> Response:
        return docs.page_response("page.css", "text/css; charset=utf-8", request.headers.get("host", ""))

    @app.get("/docs", include_in_schema=False)
    async def reference() -> HTMLResponse:
        return docs.reference_page(app.openapi())

    # ------------------------------------------------------------------ server

    @app.get("/api/health", response_model=Health, tags=["server"])
    async def health() -> dict[str, Any]:
        """The server is up; whether a bearer token is needed; its limits."""
        return {
            "status": "ok",
            "version": _package_version(),
            "token_required": settings.token is not None,
            "simulations": len(manager.all()),
            "open_simulations": manager.open_count,
            "connections": connections.open_sockets,
            "limits": {
                "max_simulations": settings.max_simulations,
                "max_agents": settings.max_agents,
                "max_connections": settings.max_connections,
                "max_body_bytes": settings.max_body_bytes,
                "max_message_bytes": settings.max_message_bytes,
                "messages_per_second": settings.messages_per_second,
                "max_events_per_update": settings.max_events_per_update,
            },
        }

    @app.get("/api/scenarios", response_model=list[ScenarioInfo], tags=["catalog"])
    async def list_scenarios() -> list[dict[str, Any]]:
        """Shipped and plugin scenarios, by name (what `POST /api/simulations` takes)."""
        return await asyncio.to_thread(scenarios)

    @app.get("/api/policies", response_model=Policies, tags=["catalog"])
    async def list_policies() -> dict[str, Any]:
        """Built-in and plugin decision policies, and the RL checkpoints (with the rl extra)."""
        rows = await asyncio.to_thread(policies)
        return {"policies": rows, "checkpoints": await asyncio.to_thread(checkpoints.entries)}

    @app.get("/api/checkpoints", response_model=Checkpoints, tags=["catalog"])
    async def list_checkpoints() -> dict[str, Any]:
        """The RL checkpoints of the server's checkpoints folder (with the rl extra)."""
        return await asyncio.to_thread(checkpoints.entries)

    @app.post("/api/checkpoints/action", response_model=ActionResult, tags=["catalog"])
    async def checkpoint_action(body: ActionRequest) -> dict[str, Any]:
        """The actions a checkpoint takes for an observation (501 without `mesa_llm.rl`)."""
        actions = await asyncio.to_thread(checkpoints.act, body.checkpoint, body.observation)
        return {"checkpoint": body.checkpoint, "actions": actions}

    # ------------------------------------------------------------------ simulations

    @app.get("/api/simulations", response_model=list[SimulationInfo], tags=["simulations"])
    async def list_simulations() -> list[dict[str, Any]]:
        """Every simulation the server holds (open ones, and the latest closed ones until deleted)."""
        return [s.info() for s in manager.all()]

    @app.post("/api/simulations", response_model=SimulationInfo, status_code=201, tags=["simulations"])
    async def create_simulation(body: CreateSimulation) -> dict[str, Any]:
        """Build a simulation of a scenario (idle until stepped or run). A bad override is the
        one line `mesa-llm validate` prints."""
        live = await manager.create(
            body.scenario, overrides=body.overrides, seed=body.seed, model=body.model, steps=body.steps
        )
        return live.info()

    @app.get("/api/simulations/{sim_id}", response_model=SimulationInfo, tags=["simulations"])
    async def get_simulation(sim_id: str) -> dict[str, Any]:
        """One simulation."""
        return manager.get(sim_id).info()

    @app.delete("/api/simulations/{sim_id}", response_model=SimulationInfo, tags=["simulations"])
    async def delete_simulation(sim_id: str) -> dict[str, Any]:
        """Stop a simulation (its recording ends with simulation_end) and forget it; the recording stays."""
        return await manager.delete(sim_id)

    @app.post("/api/simulations/{sim_id}/step", response_model=StepResult, tags=["control"])
    async def step(sim_id: str, body: StepRequest | None = None) -> dict[str, Any]:
        """Run ``steps`` steps now and report each."""
        live = manager.get(sim_id)
        reports = await live.step(body.steps if body is not None else 1)
        return {"reports": [report_dict(r) for r in reports], "simulation": live.info()}

    @app.post("/api/simulations/{sim_id}/run", response_model=SimulationInfo, tags=["control"])
    async def run(sim_id: str, body: RunRequest | None = None) -> dict[str, Any]:
        """Step on by itself at ``rate`` steps per second (0: as fast as it goes) for ``steps``
        steps (null: to the horizon); the WebSocket streams each step."""
        live = manager.get(sim_id)
        body = body or RunRequest.model_validate({})
        live.run(body.rate, body.steps)
        return live.info()

    @app.post("/api/simulations/{sim_id}/pause", response_model=SimulationInfo, tags=["control"])
    async def pause(sim_id: str) -> dict[str, Any]:
        """Hold the run after the step in progress (answers once that step has finished)."""
        live = manager.get(sim_id)
        await live.pause()
        return live.info()

    @app.post("/api/simulations/{sim_id}/resume", response_model=SimulationInfo, tags=["control"])
    async def resume(sim_id: str) -> dict[str, Any]:
        """Go on running (starts a run to the horizon at the last rate if none is going)."""
        live = manager.get(sim_id)
        live.resume()
        return live.info()

    @app.post("/api/simulations/{sim_id}/stop", response_model=SimulationInfo, tags=["control"])
    async def stop(sim_id: str) -> dict[str, Any]:
        """End the run now: the recording ends with simulation_end ("stopped"); state stays readable."""
        live = manager.get(sim_id)
        await live.stop()
        await manager.after_close()
        return live.info()

    @app.post("/api/simulations/{sim_id}/events", response_model=ScheduleResult, tags=["control"])
    async def schedule(sim_id: str, body: ScheduleRequest) -> dict[str, Any]:
        """Schedule a timeline or stress event (recorded, so a replay repeats it)."""
        live = manager.get(sim_id)
        event = await live.schedule(body.event, body.at_step)
        return {"event": event, "simulation": live.info()}

    @app.get("/api/simulations/{sim_id}/state", tags=["simulations"])
    async def state(sim_id: str) -> dict[str, Any]:
        """The state between steps: step, each agent's role, policy, cash and holdings; per good the
        best resting bid/ask, depth and last price; open sessions; alliances; reputation; metrics."""
        return await manager.get(sim_id).state()

    @app.get("/api/simulations/{sim_id}/metrics", tags=["simulations"])
    async def metrics(sim_id: str) -> dict[str, Any]:
        """The headline metrics so far: trades, volume, fees, allocative_efficiency (and negotiation, LLM use)."""
        return await manager.get(sim_id).metrics()

    @app.get("/api/simulations/{sim_id}/agents", response_model=list[AgentInfo], tags=["agents"])
    async def agents(sim_id: str) -> list[dict[str, Any]]:
        """Every agent: id, name, population, role, policy (``external``: driven through this API)."""
        return manager.get(sim_id).sim.agents()

    @app.get("/api/simulations/{sim_id}/agents/{agent_id}/observation", tags=["agents"])
    async def observe(sim_id: str, agent_id: int) -> dict[str, Any]:
        """What the agent decides the coming step on (account, private values, market,
        ``available_actions`` with their argument schemas, last step's rejections)."""
        return await manager.get(sim_id).observe(agent_id)

    @app.post("/api/simulations/{sim_id}/agents/{agent_id}/actions", response_model=ActResult, tags=["agents"])
    async def act(sim_id: str, agent_id: int, body: ActRequest) -> dict[str, Any]:
        """An external agent's actions for the coming step (then step or run the simulation)."""
        live = manager.get(sim_id)
        refused = await live.act(agent_id, body.actions)
        return {"refused": refused, "agent_id": agent_id, "step": live.sim.steps + 1}

    # ------------------------------------------------------------------ recordings

    @app.get("/api/recordings", response_model=list[RecordingInfo], tags=["recordings"])
    async def list_recordings() -> list[dict[str, Any]]:
        """The recordings of the server's recordings folder, newest first."""
        return await asyncio.to_thread(store.entries)

    @app.get("/api/recordings/{name}/events", response_model=EventsPage, tags=["recordings"])
    async def recording_events(
        name: str,
        from_step: Annotated[int | None, Query(ge=0, description="first step (inclusive)")] = None,
        to_step: Annotated[int | None, Query(ge=0, description="last step (inclusive)")] = None,
        type: Annotated[list[str] | None, Query(description="event types (repeat, or comma-separate)")] = None,  # noqa: A002
        agent_id: Annotated[int | None, Query(description="only this agent's events")] = None,
        offset: Annotated[int, Query(ge=0, description="events to skip (the previous page's next_offset)")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE, description="events per page")] = 100,
    ) -> dict[str, Any]:
        """A page of a recording's events, filtered by step range, type and agent."""
        types = [t.strip() for v in (type or []) for t in v.split(",") if t.strip()] or None
        return await asyncio.to_thread(
            store.events, name, from_step=from_step, to_step=to_step, event_types=types, agent_id=agent_id,
            offset=offset, limit=limit,
        )  # fmt: skip

    @app.get("/api/recordings/{name}/summary", tags=["recordings"])
    async def recording_summary(name: str) -> dict[str, Any]:
        """Every metric of the run (`mesa_llm.analysis.summary_metrics`)."""
        return await asyncio.to_thread(store.summary, name)

    # ------------------------------------------------------------------ websocket

    @app.websocket("/api/simulations/{sim_id}/stream")
    async def stream(websocket: WebSocket, sim_id: str) -> None:
        try:
            live = manager.get(sim_id)
            wanted = _event_filter(websocket.query_params.get("events"))
        except ApiError as exc:
            if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
                await websocket.send_denial_response(StrictJSONResponse({"error": exc.message}, status_code=exc.status))
            else:
                await websocket.close(1008, exc.message[:120])
            return
        offered = offered_subprotocols(websocket.scope)
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await _serve_client(websocket, live, wanted, settings)

    return app


async def _serve_client(websocket: WebSocket, live: LiveSimulation, wanted: EventFilter, settings: ServerSettings) -> None:
    """One WebSocket client: its updates go out through a writer task; its control messages are
    read, bounded, rate-limited and answered here."""
    client = await live.attach(wanted)

    async def writer() -> None:
        with contextlib.suppress(Exception):  # the client went away: the reader sees it too
            while True:
                text = await client.next_message()
                if text is None:
                    break
                await websocket.send_text(text)
            await websocket.close(1000)

    task = asyncio.create_task(writer())
    bucket = TokenBucket(settings.messages_per_second)
    limited = 0  # messages ignored since the last rate-limit error was sent
    last_notice = 0.0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if task.done():
                break
            request_id: Any = None
            reply: dict[str, Any]
            held = False
            if not bucket.take():
                limited += 1
                now = time.monotonic()
                if now - last_notice >= 1.0:  # one notice a second, not one per ignored message
                    last_notice = now
                    reply = {
                        "type": "error",
                        "id": None,
                        "error": f"rate limit: at most {settings.messages_per_second:g} messages per second; "
                        f"{limited} message(s) ignored",
                    }
                    limited = 0
                    if not client.reply(reply):
                        await websocket.close(1008, "too many unread replies")
                        break
                continue
            try:
                text = message.get("text")
                if text is None:
                    raise ApiError(400, "binary messages are not understood: send JSON text")
                if len(text) > settings.max_message_bytes or len(text.encode()) > settings.max_message_bytes:
                    raise ApiError(413, f"message larger than {settings.max_message_bytes} bytes: ignored")
                try:
                    data = json.loads(text)
                except ValueError as exc:
                    raise ApiError(400, f"not JSON: {exc}") from None
                if not isinstance(data, dict):
                    raise ApiError(400, 'a message is a JSON object: {"type": "control", "command": ..., "params": {...}}')
                request_id = data.get("id")
                if not isinstance(request_id, str | int | float | type(None)) or isinstance(request_id, bool):
                    request_id = None
                if data.get("type") != "control":
                    raise ApiError(400, f"unknown message type {str(data.get('type'))[:40]!r}: only 'control' messages are read")
                client.hold()  # a stop ends the stream: its ack goes out before simulation_end
                held = True
                result = await _control(live, data.get("command"), data.get("params"))
                reply = {"type": "ack", "id": request_id, "command": data.get("command"), "result": result}
            except ApiError as exc:
                reply = {"type": "error", "id": request_id, "error": exc.message}
            except ValidationError as exc:
                reply = {"type": "error", "id": request_id, "error": "params." + _validation_line(exc)[1]}
            except Exception as exc:  # noqa: BLE001 - answered, logged in one line; the connection stays
                line = one_line(f"internal error: {type(exc).__name__}: {exc}")
                _log.error("websocket %s: %s", live.id, line)
                reply = {"type": "error", "id": request_id, "error": line}
            queued = client.reply(reply)
            if held:
                client.release()
            if not queued:
                await websocket.close(1008, "too many unread replies")
                break
    except WebSocketDisconnect:
        pass
    finally:
        live.detach(client)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _control(live: LiveSimulation, command: Any, params: Any) -> dict[str, Any]:
    """Carry out one control message; the result is what its ack carries."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApiError(400, "params: a JSON object")
    if command == "pause":
        await live.pause()
    elif command == "resume":
        live.resume()
    elif command == "stop":
        await live.stop()
    elif command == "step":
        reports = await live.step(StepRequest.model_validate(params).steps)
        return {"reports": [report_dict(r) for r in reports], "simulation": live.info()}
    elif command == "run":
        body = RunRequest.model_validate(params)
        live.run(body.rate, body.steps)
    elif command == "schedule_event":
        schedule = ScheduleRequest.model_validate(params)
        event = await live.schedule(schedule.event, schedule.at_step)
        return {"event": event, "simulation": live.info()}
    else:
        raise ApiError(400, f"unknown command {str(command)[:40]!r}: one of {', '.join(COMMANDS)}")
    return {"simulation": live.info()}


__all__ = ["COMMANDS", "StrictJSONResponse", "TokenBucket", "create_app"]
