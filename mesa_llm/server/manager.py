"""The server's simulations: each one a `mesa_llm.Simulation` driven from the event loop.

One simulation is never stepped concurrently: every operation on it holds its `asyncio.Lock`.
A rule-based step runs in a worker thread (a few ms of CPU that would otherwise hold up every
other request); a step with LLM agents runs on the loop (``await sim.astep()``: its calls are
async). A run at a rate is one task per simulation, paused, resumed and stopped by flags, never
cancelled mid-step (a thread cannot be), except an LLM step, which `Simulation.astep` ends cleanly
as "interrupted". Stopping, deleting and shutting down close the simulation, so its recording
always ends with ``simulation_end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mesa_llm.recording.events import SimulationEvent
from mesa_llm.scenario import ScenarioError, resolve_scenario_path
from mesa_llm.server.errors import ApiError, one_line
from mesa_llm.server.settings import MAX_RATE, MAX_STEPS_PER_REQUEST, ServerSettings
from mesa_llm.server.stream import ClientStream, EventFilter, Update
from mesa_llm.simulation import (
    ExternalAgentError,
    Simulation,
    SimulationClosedError,
    StepReport,
    prepare_scenario,
)

#: what a scenario name may look like: a shipped or plugin scenario's name, never a path
SCENARIO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")
#: replies (acks, errors) held for a client that does not read them before it is cut off
MAX_UNSENT_REPLIES = 64

T = TypeVar("T")


async def _wait_thread(future: asyncio.Future[T]) -> T:
    """The result of work running in a worker thread. A cancelled caller still waits for the
    thread to finish (it cannot be stopped) before the cancellation goes on, so the lock it
    holds is not released while the thread still uses the simulation."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(future)
        raise


def report_dict(report: StepReport) -> dict[str, Any]:
    """A step report as JSON (rejections keyed by agent id as text)."""
    return {
        "step": report.step,
        "trades": report.trades,
        "volume": report.volume,
        "rejections": {str(k): v for k, v in report.rejections.items()},
    }


class LiveSimulation:
    """One simulation of the server: its `Simulation`, its lock, its run task and its clients."""

    def __init__(self, sim_id: str, sim: Simulation, scenario: str, settings: ServerSettings) -> None:
        """Wrap ``sim`` (built from ``scenario``) under the id ``sim_id``."""
        self.id = sim_id
        self.sim = sim
        self.scenario = scenario
        self.settings = settings
        self.created = time.time()
        self.lock = asyncio.Lock()
        self.has_llm = bool(sim.mesa_model.llm_agents)
        self.rate = 0.0
        self.run_target: int | None = None
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self._wake = asyncio.Event()
        self._stopping = False
        self.final_status: str | None = None
        self.error: str | None = None
        self.closed_at: float | None = None
        self.clients: set[ClientStream] = set()
        # events of the step in progress (appended from the stepping thread)
        self._events: list[dict[str, Any]] = []
        self._overflow = 0
        self._want_all = False
        self._want_types: frozenset[str] = frozenset()
        sim.subscribe("*", self._collect)

    # ------------------------------------------------------------------ what it is

    @property
    def closed(self) -> bool:
        """Stopped, finished or failed: no more steps."""
        return self.final_status is not None

    @property
    def status(self) -> str:
        """``idle`` (open, not running), ``running``, ``paused``, or how it ended (``completed``,
        ``stopped``, ``failed``, ``budget_exceeded``, ``interrupted``)."""
        if self.final_status is not None:
            return self.final_status
        if self.task is not None and not self.task.done():
            return "paused" if self.paused else "running"
        return "idle"

    def info(self) -> dict[str, Any]:
        """What the API says about this simulation."""
        sim = self.sim
        path = sim.recording_path
        return {
            "id": self.id,
            "scenario": self.scenario,
            "seed": sim.seed,
            "step": sim.steps,
            "max_steps": sim.max_steps,
            "status": self.status,
            "rate": self.rate,
            "run_until": self.run_target,
            "recording": path.name if path is not None else None,
            "agents": len(sim.agents()),
            "external_agents": sim.external_agents,
            "llm": self.has_llm,
            "clients": len(self.clients),
            "created": self.created,
            "stop_reason": sim.stop_reason,
            "error": self.error,
        }

    # ------------------------------------------------------------------ events and updates

    def _collect(self, event: SimulationEvent) -> None:
        # runs inside the step (in its worker thread for a rule-based one): cheap when no one listens
        if not self.clients or not (self._want_all or event.event_type in self._want_types):
            return
        if len(self._events) >= self.settings.max_events_per_update:
            self._overflow += 1
            return
        self._events.append(event.to_dict())

    def _update(self) -> Update:
        state = self.sim.state()
        environment = {
            "step": state["step"],
            "max_steps": state["max_steps"],
            "status": self.status,
            "rate": self.rate,
            "goods": state["goods"],
            "negotiations": state["negotiations"],
            "alliances": state["alliances"],
            "reputation": state["reputation"],
        }
        update = Update(
            self.id, state["step"], time.time(), [dict(a) for a in state["agents"]], environment, dict(state["metrics"]),
            self._events, self._overflow,
        )  # fmt: skip
        self._events, self._overflow = [], 0
        return update

    def _publish(self, update: Update) -> None:
        for client in list(self.clients):
            client.push(update)

    def _refilter(self) -> None:
        wanted = [c.wanted for c in self.clients]
        self._want_all = any(w is None for w in wanted)
        self._want_types = frozenset().union(*[w for w in wanted if w is not None])

    async def attach(self, wanted: EventFilter) -> ClientStream:
        """A new client: it gets the current state at once, then one update per step."""
        client = ClientStream(wanted, self.settings.client_queue, MAX_UNSENT_REPLIES)
        async with self.lock:
            client.push(self._update_now())
            if self.closed:
                client.close(self._end_message())
                return client
            self.clients.add(client)
            self._refilter()
        return client

    def detach(self, client: ClientStream) -> None:
        """A client went away."""
        self.clients.discard(client)
        client.close()
        self._refilter()

    def _update_now(self) -> Update:
        # the state between steps, with no events (events of a step in progress stay for its update)
        saved = self._events, self._overflow
        self._events, self._overflow = [], 0
        try:
            return self._update()
        finally:
            self._events, self._overflow = saved

    def _end_message(self) -> dict[str, Any]:
        return {"type": "simulation_end", "simulation_id": self.id, "status": self.status, "tick": self.sim.steps}

    # ------------------------------------------------------------------ stepping

    def _step_sync(self) -> tuple[StepReport, Update | None]:
        report = self.sim.step()
        if not self.clients:
            return report, None
        update = self._update()
        update.prepare(list({c.wanted for c in list(self.clients)}))  # JSON made here, not on the loop
        return report, update

    async def _step_locked(self) -> StepReport:
        """One step (the caller holds the lock)."""
        if self.closed or self.sim.done:
            raise ApiError(409, f"simulation {self.id} is {self.status} at step {self.sim.steps}: no more steps")
        # (events recorded since the last update, such as event_scheduled, go with this step's)
        try:
            if self.has_llm:
                report = await self.sim.astep()
                update = self._update() if self.clients else None
            else:
                loop = asyncio.get_running_loop()
                report, update = await _wait_thread(loop.run_in_executor(None, self._step_sync))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the run failed: say so, keep its recording
            self.error = one_line(f"step {self.sim.steps} failed: {type(exc).__name__}: {exc}")
            self._close_locked(None)
            raise ApiError(500, self.error) from None
        if update is not None:
            self._publish(update)
        else:  # no client (any more): nothing collected is kept for a later one
            self._events, self._overflow = [], 0
        if self.sim.done:
            self._close_locked(None)
        return report

    async def step(self, steps: int) -> list[StepReport]:
        """Run ``steps`` steps now (fewer when the run ends first)."""
        if not 1 <= steps <= MAX_STEPS_PER_REQUEST:
            raise ApiError(422, f"steps: between 1 and {MAX_STEPS_PER_REQUEST}, not {steps}")
        reports: list[StepReport] = []
        for _ in range(steps):
            async with self.lock:
                if reports and (self.closed or self.sim.done):
                    break
                reports.append(await self._step_locked())
        return reports

    def run(self, rate: float, steps: int | None) -> None:
        """Step on at ``rate`` steps per second (0: as fast as it goes), for ``steps`` more steps
        (None: to the horizon)."""
        self._check_open()
        if not 0 <= rate <= MAX_RATE:
            raise ApiError(422, f"rate: between 0 (as fast as possible) and {MAX_RATE:g} steps per second, not {rate}")
        if steps is not None and steps < 1:
            raise ApiError(422, f"steps: at least 1 (or null: to the horizon), not {steps}")
        self.rate = float(rate)
        self.run_target = None if steps is None else self.sim.steps + int(steps)
        self.paused = False
        self._wake.set()
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run_loop(), name=f"mesa-llm run {self.id}")

    async def pause(self) -> None:
        """Hold the run after the step in progress (a simulation not running stays as it is).

        Returns once that step has finished, so the step an answer reports is the one held."""
        self._check_open()
        self.paused = True
        self._wake.clear()
        async with self.lock:  # the run loop re-checks ``paused`` under this lock before stepping
            pass
        self._republish_status()

    def resume(self) -> None:
        """Go on running at the last rate (starts a run to the horizon when none is going)."""
        self._check_open()
        self.paused = False
        self._wake.set()
        if self.task is None or self.task.done():
            if self.run_target is not None and self.sim.steps >= self.run_target:
                self.run_target = None
            self.task = asyncio.create_task(self._run_loop(), name=f"mesa-llm run {self.id}")
        self._republish_status()

    def _republish_status(self) -> None:
        # a paused simulation sends no steps: its clients learn of it from a fresh update
        if self.clients and not self.lock.locked():
            self._publish(self._update_now())

    def _check_open(self) -> None:
        if self.closed:
            raise ApiError(409, f"simulation {self.id} is {self.status} at step {self.sim.steps}")

    async def _run_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stopping:
            if self.paused:
                await self._wake.wait()
                next_at = loop.time()
                continue
            if self.closed or self.sim.done or (self.run_target is not None and self.sim.steps >= self.run_target):
                break
            try:
                async with self.lock:
                    if self._stopping or self.paused or self.closed:
                        continue
                    await self._step_locked()
            except ApiError:
                break
            if self.rate > 0:
                next_at += 1.0 / self.rate
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    next_at = loop.time()  # late: no burst to catch up
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep(0)  # let requests and clients in between steps
        if not self.closed and not self._stopping:
            self._republish_status()  # the run reached its target: clients see it idle

    # ------------------------------------------------------------------ steering

    async def schedule(self, event: Mapping[str, Any], at_step: int | None) -> dict[str, Any]:
        """Schedule a timeline event (any built-in, stress or plugin type)."""
        async with self.lock:
            self._check_open()
            try:
                return self.sim.schedule(event, at_step)
            except (ValueError, TypeError) as exc:
                raise ApiError(422, f"event: {exc}") from None
            except SimulationClosedError as exc:
                raise ApiError(409, str(exc)) from None

    async def state(self) -> dict[str, Any]:
        """`Simulation.state`."""
        async with self.lock:
            return dict(self.sim.state())

    async def metrics(self) -> dict[str, Any]:
        """`Simulation.metrics`."""
        async with self.lock:
            return self.sim.metrics()

    def _agent(self, agent_id: int) -> None:
        ids = [a["agent_id"] for a in self.sim.agents()]
        if agent_id not in ids:
            raise ApiError(404, f"simulation {self.id} has no agent {agent_id} (agents are {min(ids)}..{max(ids)})")

    async def observe(self, agent_id: int) -> dict[str, Any]:
        """The observation an agent decides the coming step on."""
        async with self.lock:
            self._agent(agent_id)
            self._check_open()
            try:
                return self.sim.observe(agent_id).to_dict()
            except ExternalAgentError as exc:
                raise ApiError(409, str(exc)) from None
            except SimulationClosedError as exc:
                raise ApiError(409, str(exc)) from None

    async def act(self, agent_id: int, actions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """An external agent's actions for the coming step; returns those refused at once."""
        async with self.lock:
            self._agent(agent_id)
            self._check_open()
            try:
                return self.sim.act(agent_id, list(actions))
            except ExternalAgentError as exc:
                raise ApiError(409, str(exc)) from None
            except SimulationClosedError as exc:
                raise ApiError(409, str(exc)) from None
            except (ValueError, TypeError) as exc:
                raise ApiError(422, f"actions: {exc}") from None

    # ------------------------------------------------------------------ ending

    def _close_locked(self, status: str | None) -> None:
        """Close the simulation (recording ends with ``simulation_end``) and tell the clients."""
        if self.closed:
            return
        if status is None:
            current = self.sim.status
            status = "stopped" if current == "running" else current
        try:
            self.sim.close(status)
        finally:
            self.final_status = status
            self.closed_at = time.time()
            self._stopping = True
            self._wake.set()
            final = self._update_now()
            for client in list(self.clients):
                client.push(final)
                client.close(self._end_message())
            self.clients.clear()

    async def stop(self, status: str | None = None) -> None:
        """End the run now: the step in progress finishes (an LLM step is interrupted), then the
        simulation is closed with ``status`` (default: ``stopped``, or how it ended)."""
        self._stopping = True
        self.paused = False
        self._wake.set()
        task = self.task
        if task is not None and not task.done():
            if self.has_llm:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self.lock:
            self._close_locked(status)


class SimulationManager:
    """The server's simulations by id, within the settings' limits."""

    def __init__(self, settings: ServerSettings, build: Callable[..., Simulation] | None = None) -> None:
        """``build``: how a simulation is made (default `Simulation.from_scenario`; tests pass
        their own to give it a chat model)."""
        self.settings = settings
        self.build = build or Simulation.from_scenario
        self._sims: dict[str, LiveSimulation] = {}
        self._ids = itertools.count(1)
        self._creating = 0

    def all(self) -> list[LiveSimulation]:
        """Every simulation held, oldest first."""
        return list(self._sims.values())

    def get(self, sim_id: str) -> LiveSimulation:
        """The simulation ``sim_id`` (ApiError 404 when there is none)."""
        live = self._sims.get(sim_id)
        if live is None:
            raise ApiError(404, f"no simulation {sim_id!r} (GET /api/simulations lists them)")
        return live

    @property
    def open_count(self) -> int:
        """Simulations that are not closed (those count against the limit)."""
        return sum(not s.closed for s in self._sims.values())

    async def create(
        self,
        scenario: str,
        *,
        overrides: Sequence[str] = (),
        seed: int | None = None,
        model: str | None = None,
        steps: int | None = None,
    ) -> LiveSimulation:
        """Build a simulation of a shipped or plugin scenario, checked as ``mesa-llm validate``
        checks it, recording into the server's recordings folder."""
        if not isinstance(scenario, str) or not SCENARIO_NAME.fullmatch(scenario):
            raise ApiError(422, "scenario: the name of a shipped or plugin scenario (GET /api/scenarios), not a path")
        if self.open_count + self._creating >= self.settings.max_simulations:
            raise ApiError(
                429, f"at most {self.settings.max_simulations} open simulations: stop or delete one first"
            )
        self._creating += 1
        try:
            folder = Path(self.settings.recordings)
            try:
                resolve_scenario_path(scenario)
                # checking the scenario and its templates, then building, is CPU: off the event loop
                spec = await asyncio.to_thread(prepare_scenario, scenario, list(overrides))
                agents = sum(p.count for p in spec.populations)
                if agents > self.settings.max_agents:
                    raise ApiError(
                        422, f"{scenario}: {agents} agents; this server runs at most {self.settings.max_agents} per simulation"
                    )
                sim = await asyncio.to_thread(
                    self.build, scenario, overrides=list(overrides), seed=seed, model=model, steps=steps, out=folder
                )
            except ScenarioError as exc:
                raise ApiError(422, str(exc)) from None
            except OSError as exc:
                raise ApiError(500, f"cannot record in {folder}: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise ApiError(422, f"{scenario}: {exc}") from None
        finally:
            self._creating -= 1
        sim_id = f"sim-{next(self._ids)}"
        live = LiveSimulation(sim_id, sim, scenario, self.settings)
        self._sims[sim_id] = live
        self._forget_old()
        return live

    def _forget_old(self) -> None:
        closed = sorted((s for s in self._sims.values() if s.closed), key=lambda s: s.closed_at or 0)
        for old in closed[: max(0, len(closed) - self.settings.max_finished_kept)]:
            self._sims.pop(old.id, None)

    async def delete(self, sim_id: str) -> dict[str, Any]:
        """Stop a simulation (if it is open) and forget it; its recording stays."""
        live = self.get(sim_id)
        await live.stop()
        self._sims.pop(sim_id, None)
        return live.info()

    async def after_close(self) -> None:
        """Forget the oldest closed simulations beyond the limit (after a stop)."""
        self._forget_old()

    async def shutdown(self) -> None:
        """Stop every simulation: the open ones end as ``interrupted`` (server shutting down)."""
        await asyncio.gather(
            *(s.stop("interrupted" if not s.sim.done else None) for s in self._sims.values() if not s.closed),
            return_exceptions=True,
        )


__all__ = ["LiveSimulation", "SimulationManager", "report_dict"]
