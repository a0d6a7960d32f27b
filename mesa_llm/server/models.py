"""The API's request and response bodies (pydantic): what `/openapi.json` and `/docs` describe."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mesa_llm.server.settings import MAX_RATE, MAX_STEPS_PER_REQUEST


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every refusal: one line saying what is wrong and where (a field, a file, a name)."""

    error: str = Field(examples=["no simulation 'sim-9' (GET /api/simulations lists them)"])


class Health(BaseModel):
    """The server is up; whether API requests need a bearer token."""

    status: Literal["ok"] = "ok"
    version: str
    token_required: bool
    simulations: int
    open_simulations: int
    connections: int
    limits: dict[str, int | float]


class ScenarioInfo(BaseModel):
    """A scenario the server can run."""

    name: str
    description: str
    plugin: str | None = Field(None, description="the plugin distribution that ships it; null for shipped ones")


class CreateSimulation(_Body):
    """A new simulation of a shipped or plugin scenario, checked as `mesa-llm validate` checks it."""

    scenario: str = Field(description="a scenario name from GET /api/scenarios", examples=["double_auction"])
    overrides: list[str] = Field(
        default_factory=list,
        max_length=200,
        description=(
            "`--set` style PATH=VALUE strings (VALUE read as YAML/JSON). Add an externally driven agent with "
            '`populations.N={"name": "me", "role": "buyer", "count": 1, "policy": "external", '
            '"private": {"widget": {"units": 2, "values": [150, 140]}}, "endowment": {"cash": 1000}}` '
            "where N is the number of populations the scenario has (2 for double_auction)."
        ),
        examples=[["steps=50", "populations.0.count=8"]],
    )
    seed: int | None = Field(None, ge=0, description="overrides the scenario's seed")
    steps: int | None = Field(None, ge=1, le=1_000_000, description="overrides the scenario's number of steps")
    model: str | None = Field(
        None, max_length=200, description="litellm model of every LLM population (the server's environment holds the keys)"
    )


class SimulationInfo(BaseModel):
    """A simulation held by the server."""

    id: str = Field(examples=["sim-1"])
    scenario: str
    seed: int
    step: int = Field(description="steps completed")
    max_steps: int
    status: str = Field(
        description="idle (open, not running), running, paused, or how it ended: completed, stopped, failed, "
        "budget_exceeded, interrupted"
    )
    rate: float = Field(description="steps per second of the run (0: as fast as possible)")
    run_until: int | None = Field(description="the step the current run stops at (null: the horizon)")
    recording: str | None = Field(description="the recording's name under GET /api/recordings")
    agents: int
    external_agents: list[int] = Field(description="ids of the agents driven through .../agents/{id}/actions")
    llm: bool = Field(description="whether LLM agents take part")
    clients: int = Field(description="WebSocket clients watching it")
    created: float = Field(description="seconds since the epoch")
    stop_reason: str | None
    error: str | None = Field(description="why its last step failed, if one did")


class StepRequest(_Body):
    """Run steps now."""

    steps: int = Field(1, ge=1, le=MAX_STEPS_PER_REQUEST)


class StepReportBody(BaseModel):
    """What one step did; ``rejections``: per external agent (id as text), the actions the world refused."""

    step: int
    trades: int
    volume: int
    rejections: dict[str, list[dict[str, Any]]]


class StepResult(BaseModel):
    """The steps run and the simulation after them."""

    reports: list[StepReportBody]
    simulation: SimulationInfo


class RunRequest(_Body):
    """Step on by itself at a rate."""

    rate: float = Field(0.0, ge=0, le=MAX_RATE, description="steps per second; 0: as fast as it goes")
    steps: int | None = Field(None, ge=1, description="steps to run (null: to the horizon)")


class ScheduleRequest(_Body):
    """A timeline event: any built-in type (shift_private, endow, set_params), stress type
    (flash_crash, volatility_spike, liquidity_shock) or plugin type, validated as the scenario's
    own timeline is."""

    event: dict[str, Any] = Field(examples=[{"type": "flash_crash", "magnitude": 0.2, "duration": 5}])
    at_step: int | None = Field(None, ge=0, description="the step it acts at (null: the next step)")


class ScheduleResult(BaseModel):
    """The event as it was scheduled (validated, ``at_step`` filled in)."""

    event: dict[str, Any]
    simulation: SimulationInfo


class AgentInfo(BaseModel):
    """One agent of a simulation."""

    agent_id: int
    name: str
    population: str
    role: str
    policy: str


class ActRequest(_Body):
    """An external agent's actions for the coming step: tagged dicts such as
    ``{"type": "place_order", "good": "widget", "side": "buy", "price": 101.5, "quantity": 1}``;
    the observation's ``available_actions`` lists what the agent may do. An empty list: it waits."""

    actions: list[dict[str, Any]] = Field(max_length=100)


class ActResult(BaseModel):
    """The actions refused at once (type and reason); the others are checked against the world's
    rules when the step resolves them (see the step's ``rejections``)."""

    refused: list[dict[str, Any]]
    agent_id: int
    step: int = Field(description="the step the actions are for")


class RecordingInfo(BaseModel):
    """A recording file of the server's recordings folder."""

    name: str
    bytes: int
    modified: float


class RecordedEvent(BaseModel):
    """One recorded event (the recording contract's envelope and content)."""

    event_id: str
    timestamp: str
    step: int
    agent_id: int | None
    event_type: str
    content: dict[str, Any]


class EventsPage(BaseModel):
    """A page of a recording's events; ask again with ``offset=next_offset`` for the next one."""

    recording: str
    total: int = Field(description="events matching the filters")
    offset: int
    limit: int
    next_offset: int | None
    events: list[RecordedEvent]


class PolicyInfo(BaseModel):
    """A decision policy a population can name (``policy:`` in a scenario)."""

    name: str
    source: Literal["builtin", "plugin"]
    plugin: str | None = None
    status: Literal["loaded", "failed"]
    reason: str | None
    summary: str
    llm: bool


class CheckpointInfo(BaseModel):
    """An RL checkpoint of the checkpoints folder."""

    name: str
    kind: Literal["file", "folder"]
    bytes: int
    modified: float


class Checkpoints(BaseModel):
    """The RL checkpoints, when `mesa_llm.rl` is installed and a folder is configured."""

    rl_available: bool
    folder_configured: bool
    checkpoints: list[CheckpointInfo]
    note: str | None = None


class Policies(BaseModel):
    """Every policy and RL checkpoint."""

    policies: list[PolicyInfo]
    checkpoints: Checkpoints


class ActionRequest(_Body):
    """An observation (as GET .../observation returns it) to be answered by a checkpoint."""

    checkpoint: str = Field(description="a checkpoint name from GET /api/checkpoints")
    observation: dict[str, Any]


class ActionResult(BaseModel):
    """The checkpoint's actions (post them to .../agents/{id}/actions to play them)."""

    checkpoint: str
    actions: list[dict[str, Any]]


__all__ = [
    "ActRequest",
    "ActResult",
    "ActionRequest",
    "ActionResult",
    "AgentInfo",
    "CheckpointInfo",
    "Checkpoints",
    "CreateSimulation",
    "ErrorBody",
    "EventsPage",
    "Health",
    "Policies",
    "PolicyInfo",
    "RecordedEvent",
    "RecordingInfo",
    "RunRequest",
    "ScenarioInfo",
    "ScheduleRequest",
    "ScheduleResult",
    "SimulationInfo",
    "StepReportBody",
    "StepRequest",
    "StepResult",
]
