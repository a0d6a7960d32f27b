"""Scenario files: the YAML schema (pydantic), loading, ``--set`` overrides and clear errors.

A scenario says which goods trade (tick size, admissible prices), for how many steps, with which
seed, which populations of agents take part (role, policy and its parameters, private values drawn
from seeded distributions, endowments) and a timeline of scheduled events (shocks). Every error
names the file and the field path, e.g. ``double_auction.yaml: populations.0.count: Input should
be greater than 0``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_serializer,
    model_validator,
)

from mesa_llm.agents.policies import (
    DEFAULT_POLICY_FOR_ROLE,
    PolicyRegistry,
    default_policy_registry,
)
from mesa_llm.agents.roles import Role
from mesa_llm.llm.cache import cache_setting_problem, confined_cache_folder
from mesa_llm.mechanisms.base import BUILTIN_MECHANISMS, MechanismParams
from mesa_llm.plugins import Plugins, current_plugins, plugins_used
from mesa_llm.resources import UnreadableFileError, read_regular_file, scenarios_dir, system_file
from mesa_llm.safe_yaml import UnsafeYAMLError, decode_yaml_bytes, load_yaml
from mesa_llm.stress import FlashCrash, LiquidityShock, VolatilitySpike, stress_problems
from mesa_llm.timeline_events import CustomEvent

#: names that end up in file names (scenarios) or in prompts (populations): no path separators,
#: no leading dot, no control characters
SCENARIO_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
POPULATION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
#: most agents one scenario may ever hold in all, whatever MESA_LLM_MAX_AGENTS says
MAX_AGENTS = 1_000_000
#: most agents in all by default: measured on a 2-core / 23 GiB machine (double_auction, ZI-C,
#: recording on), 50,000 agents take ~7 s a step and ~0.7 GiB (100,000: ~14 s, ~1.2 GiB;
#: 200,000: ~30 s, ~2.3 GiB): more would validate and then not run in reasonable time
DEFAULT_MAX_AGENTS = 50_000
#: environment variable that moves the agent limit (up to MAX_AGENTS) on bigger machines
MAX_AGENTS_ENV = "MESA_LLM_MAX_AGENTS"
#: most goods one scenario may trade (each is cleared every step: 10,000 goods took ~1 s a step
#: with 2 agents)
MAX_GOODS = 1_000
#: agents x goods at most, as a multiple of the agent limit: every agent observes every good each
#: step (measured: 20,000 agents x 50 goods ~11-16 s a step, 50,000 x 20 ~20 s, on 2 busy cores)
AGENT_GOODS_FACTOR = 10
#: most persona files one include chain may pass through
MAX_INCLUDE_DEPTH = 8
#: largest scenario or persona file read
MAX_FILE_BYTES = 4 * 1024 * 1024


class ScenarioError(ValueError):
    """A scenario that cannot be loaded: the message names the file and the field path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        # one line, whatever the number of problems: callers print it as the whole error
        if len(problems) == 1:
            message = f"{source}: {problems[0]}"
        else:
            message = f"{source}: {len(problems)} problems: " + "; ".join(problems)
        super().__init__(" ".join(message.split("\n")))


class _Strict(BaseModel):
    # NaN/inf are refused in every numeric field (the YAML loader refuses them too, for free-form params)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- distributions


class Constant(_Strict):
    """Always the same value."""

    distribution: Literal["constant"]
    value: float


class Uniform(_Strict):
    """Uniform on [low, high]."""

    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self


class Normal(_Strict):
    """Normal(mean, sd), clipped to [min, max] when given."""

    distribution: Literal["normal"]
    mean: float
    sd: float = Field(ge=0)
    min: float | None = None
    max: float | None = None


class Choice(_Strict):
    """One of the options, uniformly."""

    distribution: Literal["choice"]
    options: list[float] = Field(min_length=1)


Distribution = Annotated[Constant | Uniform | Normal | Choice, Field(discriminator="distribution")]
#: a value source: a number, an explicit per-unit list, or a distribution
ValueSource = float | list[float] | Distribution


class PrivateSpec(_Strict):
    """Private information of each agent about one good.

    ``values`` (buyers' redemption values) and ``costs`` (sellers' unit costs) are per-unit
    schedules of ``units`` entries: each entry drawn from the source, then sorted (values
    descending, costs ascending) as in Smith's induced-value design. An explicit list is used
    as given. ``fundamental`` is one private value estimate (for fundamental traders).
    """

    values: ValueSource | None = None
    costs: ValueSource | None = None
    units: int = Field(default=1, ge=1, le=100_000)
    fundamental: ValueSource | None = None


class EndowmentSpec(_Strict):
    """Cash (currency units) and holdings (units per good) each agent starts with."""

    cash: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    holdings: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class UtilitySpec(_Strict):
    """An agent's private, linear-additive preferences over one outcome space.

    ``preferences`` per issue: ``increasing`` / ``decreasing`` (numeric issues) or a mapping from
    categorical values to [0, 1]; ``weights`` default to equal. The reservation (BATNA) is either a
    utility in [0, 1] (``reservation``) or, for the price issue, the worst acceptable price
    (``reservation_price``: a number or a seeded distribution, drawn per agent).
    """

    weights: dict[str, float] = Field(default_factory=dict)
    preferences: dict[str, str | dict[str, float]]
    reservation: float | None = Field(default=None, ge=0, le=1)
    reservation_price: ValueSource | None = None
    discount: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _one_reservation(self) -> UtilitySpec:
        if self.reservation is not None and self.reservation_price is not None:
            raise ValueError("give reservation or reservation_price, not both")
        return self


class FallbackSpec(_Strict):
    """The built-in policy an LLM population runs when no model is configured."""

    policy: str
    params: dict[str, Any] = Field(default_factory=dict)


class PopulationSpec(_Strict):
    """A group of agents sharing a role, a policy (or an LLM) and how their private values are drawn.

    With ``policy: llm`` the agents are LLM agents: their model comes from ``--model``, else
    ``model`` here, else the scenario's ``llm.model``, else the environment variable
    ``MESA_LLM_MODEL``; with none of these they fall back to the role's built-in rule-based policy.
    ``goal``, ``style`` and ``backstory`` are the persona text their prompts use; ``templates``
    overrides prompt templates (paths relative to the scenario file).
    """

    name: str | None = Field(default=None, description="defaults to the role")
    count: int = Field(ge=0, le=MAX_AGENTS)
    role: Role
    policy: str | None = Field(default=None, description="defaults to the role's built-in policy")
    params: dict[str, Any] = Field(default_factory=dict)
    model: str | None = Field(default=None, min_length=1, description="litellm model string")
    goal: str = ""
    style: str = ""
    backstory: str = ""
    templates: dict[str, str] = Field(default_factory=dict)
    utilities: dict[str, UtilitySpec] = Field(
        default_factory=dict, description="private preferences per outcome space (negotiations)"
    )
    fallback: FallbackSpec | None = Field(
        default=None, description="rule-based policy of an LLM population that has no model"
    )
    private: dict[str, PrivateSpec] = Field(default_factory=dict)
    endowment: EndowmentSpec = Field(default_factory=EndowmentSpec)
    credit_limit: float = Field(default=0.0, ge=0, description="cash may go this far below zero")
    short_limit: int = Field(default=0, ge=0, description="holdings may go this far below zero")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str | None) -> str | None:
        # population names appear in prompts and file names: no newlines, quotes or separators
        if name is not None and not re.fullmatch(POPULATION_NAME_PATTERN, name):
            raise ValueError(
                f"{name[:80]!r}: use 1-64 letters, digits, spaces, '_', '.' or '-', starting with a letter or digit"
            )
        return name

    @property
    def label(self) -> str:
        """The population's name (its role when unnamed)."""
        return self.name or self.role.value

    @property
    def policy_name(self) -> str:
        """The policy used, after falling back to the role's default."""
        if self.policy is not None:
            return self.policy
        return self.fallback_policy

    @property
    def fallback_policy(self) -> str:
        """The rule-based policy used when an LLM population has no model (``fallback`` or the role's)."""
        if self.fallback is not None:
            return self.fallback.policy
        return DEFAULT_POLICY_FOR_ROLE.get(self.role.value, "idle")

    @property
    def fallback_params(self) -> dict[str, Any]:
        """Parameters of the fallback policy."""
        return dict(self.fallback.params) if self.fallback is not None else {}

    @property
    def wants_llm(self) -> bool:
        """Whether this population is meant to be driven by an LLM."""
        return self.policy == "llm"


class PersonaSpec(PopulationSpec):
    """One named agent (a persona file): a population of one unless ``count`` says otherwise."""

    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=0, le=MAX_AGENTS)


class GoodSpec(_Strict):
    """A traded good and its admissible price range (currency units)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    reference_price: float = Field(gt=0, allow_inf_nan=False)
    min_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> GoodSpec:
        if self.min_price is not None and self.max_price is not None and self.min_price >= self.max_price:
            raise ValueError("min_price must be below max_price")
        return self


class MarketSpec(_Strict):
    """Rules of the call market."""

    k: float = Field(default=0.5, ge=0, le=1, description="k-rule inside the clearing range")
    fee_per_unit: float = Field(default=0.0, ge=0, description="fee per unit per side, to the house")
    price_history: int = Field(default=20, ge=1, le=10_000, description="clearing prices shown")
    recent_trades: int = Field(default=5, ge=0, le=1_000, description="own trades shown")
    messages_shown: int = Field(default=10, ge=0, le=10_000, description="latest messages shown")
    private_units_shown: int = Field(
        default=10, ge=1, le=100_000, description="next units' values/costs shown per good"
    )
    max_orders_per_step: int = Field(default=20, ge=1, description="orders one agent may place a step")
    check_invariants: bool = Field(default=False, description="check conservation after every step")
    call_market: bool = Field(default=True, description="agents may place orders in the call market")


class IssueSpec(_Strict):
    """One negotiable issue: continuous (with an optional tick), integer, or categorical."""

    name: str = Field(min_length=1, max_length=64)
    type: Literal["continuous", "integer", "categorical"]
    low: float | None = None
    high: float | None = None
    tick: float | None = Field(default=None, gt=0)
    values: list[str] | None = None

    @model_validator(mode="after")
    def _complete(self) -> IssueSpec:
        if self.type == "categorical":
            if not self.values:
                raise ValueError("a categorical issue needs values")
        else:
            if self.low is None or self.high is None:
                raise ValueError("a numeric issue needs low and high")
            if self.high < self.low:
                raise ValueError("high must be >= low")
            if self.type == "integer" and (self.low != int(self.low) or self.high != int(self.high)):
                raise ValueError("an integer issue needs integer bounds")
        return self


class OutcomeSpaceSpec(_Strict):
    """The issues of a negotiation. ``price`` (per unit), ``quantity`` and ``delivery`` (steps after
    the agreement) are settled through the ledger; the other issues only matter to utilities."""

    issues: list[IssueSpec] = Field(min_length=1)

    @field_validator("issues")
    @classmethod
    def _unique(cls, issues: list[IssueSpec]) -> list[IssueSpec]:
        names = [i.name for i in issues]
        if len(set(names)) != len(names):
            raise ValueError("issue names must be unique")
        return issues


SessionProtocol = Literal[
    "alternating_offers", "call_for_proposals", "single_text", "first_price", "second_price", "english"
]


class SessionSpec(_Strict):
    """A negotiation or auction the scenario opens at ``at_step`` between populations."""

    protocol: SessionProtocol
    at_step: int = Field(default=1, ge=1)
    good: str | None = None
    space: str | None = Field(default=None, description="outcome space (negotiations)")
    buyers: str | None = Field(default=None, description="population of buyers")
    sellers: str | None = Field(default=None, description="population of sellers (auction: the seller)")
    mediators: str | None = None
    bidders: str | None = None
    pairing: Literal["one_to_one", "all_pairs"] = "one_to_one"
    max_rounds: int = Field(default=20, ge=1, le=10_000)
    first_mover: Literal["buyer", "seller"] = "seller"
    max_agreements: int = Field(default=1, ge=1)
    quantity: int = Field(default=1, ge=1)
    reserve_price: float = Field(default=0.0, ge=0)
    start_price: float | None = Field(default=None, gt=0)
    increment: float | None = Field(default=None, gt=0)
    bidding_rounds: int = Field(default=1, ge=1)
    value_low: float | None = Field(
        default=None,
        ge=0,
        description="lowest possible bidder value, shown to bidders (the first-price equilibrium needs it); "
        "default: the low end of the bidders' uniform values, else 0",
    )


class NegotiationSettings(_Strict):
    """Outcome spaces, scheduled sessions and contract rules of a scenario's negotiations."""

    spaces: dict[str, OutcomeSpaceSpec] = Field(default_factory=dict)
    sessions: list[SessionSpec] = Field(default_factory=list)
    open_sessions: bool = Field(default=False, description="agents may open bilateral negotiations")
    default_spaces: dict[str, str] = Field(default_factory=dict, description="good -> space for opened sessions")
    max_rounds: int = Field(default=20, ge=1, description="rounds of sessions agents open")
    call_for_proposals: bool = Field(default=False, description="buyers may call for proposals")
    penalty_rate: float = Field(default=0.1, ge=0, description="breach penalty, share of contract value")
    penalty_fixed: float = Field(default=0.0, ge=0)
    delivery_offset: int = Field(default=0, ge=0, description="steps between agreement and delivery")


class RulesSpec(_Strict):
    """Hard rules the exchange enforces (the regulator acts on discretionary ones)."""

    price_caps: dict[str, float] = Field(default_factory=dict)
    price_floors: dict[str, float] = Field(default_factory=dict)
    position_limits: dict[str, int] = Field(default_factory=dict, description="max holding per agent")
    max_fine: float | None = Field(default=None, gt=0)


class ReputationSpec(_Strict):
    """How reputation moves (a public score in [0, 1])."""

    initial: float = Field(default=0.5, ge=0, le=1)
    fulfilled_gain: float = Field(default=0.05, ge=0, le=1)
    breach_loss: float = Field(default=0.2, ge=0, le=1)
    fine_loss: float = Field(default=0.1, ge=0, le=1)
    flag_loss: float = Field(default=0.05, ge=0, le=1)


class SocialSettings(_Strict):
    """Alliances, gossip and reputation."""

    alliances: bool = False
    gossip: bool = True
    reputation: ReputationSpec = Field(default_factory=ReputationSpec)
    reputation_shown: int = Field(default=20, ge=0, description="reputation scores in an observation")


class LLMSettings(_Strict):
    """How LLM agents reach their models (no keys here: litellm reads them from the environment)."""

    model: str | None = Field(default=None, min_length=1, description="default model of LLM populations")
    api_base: str | None = Field(default=None, description="OpenAI-compatible server URL")
    concurrency: int = Field(default=8, ge=1, le=4096, description="calls in flight per model")
    timeout: float = Field(default=60.0, gt=0, description="seconds per call attempt")
    max_attempts: int = Field(default=4, ge=1, le=20, description="attempts on transient errors")
    max_cost_usd: float | None = Field(default=None, gt=0, description="stop the run past this cost")
    max_tokens: int | None = Field(default=None, gt=0, description="stop the run past this many tokens")
    step_timeout: float | None = Field(
        default=120.0, gt=0, le=86_400, allow_inf_nan=False, description="seconds a step's LLM calls may take per round of `concurrency` calls (None: no bound)"
    )
    max_failed_steps: int = Field(
        default=3, ge=0, le=1_000_000, description="stop after this many steps whose every LLM call failed (0: never)"
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, allow_inf_nan=False,
        description="sampling temperature of LLM populations that set none (None: the provider's default)",
    )
    cache: str | None = Field(
        default=None, description="'memory', or a folder inside the scenario's folder for a disk cache of answers"
    )
    templates: dict[str, str] = Field(default_factory=dict, description="prompt overrides")
    structured_output_models: list[str] = Field(
        default_factory=list,
        description="models without tool calling: their agents act through JSON-schema output",
    )
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    # bounds on one answer (an LLM can answer anything): see mesa_llm.llm.bounds
    max_tool_calls: int = Field(default=8, ge=1, le=100, description="tool calls taken from one answer")
    max_argument_chars: int = Field(
        default=4_000, ge=100, le=100_000, description="longest tool-call arguments accepted"
    )
    max_answer_chars: int = Field(default=4_000, ge=100, le=100_000, description="longest answer text kept")

    @field_validator("cache")
    @classmethod
    def _confined_cache(cls, value: str | None) -> str | None:
        # confined like templates: where answers are written is not the scenario file's to choose
        problem = cache_setting_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(f"{value[:80]!r} {problem}")  # type: ignore[index]
        return value


class RecordingSpec(_Strict):
    """What the recorder writes beyond the always-recorded events."""

    observations: bool = True
    agent_states: Literal["end", "every_step"] = "end"


class ShiftPrivate(_Strict):
    """Change private values, costs or fundamentals from ``at_step`` on (a demand/supply/value shock)."""

    type: Literal["shift_private"]
    at_step: int = Field(ge=1)
    populations: list[str] | None = Field(default=None, description="all populations if omitted")
    good: str
    field: Literal["values", "costs", "fundamental"]
    add: float = 0.0
    scale: float = Field(default=1.0, ge=0)
    description: str = ""


class Endow(_Strict):
    """Give (or take, with negative amounts) cash and goods from ``at_step`` on (an endowment shock)."""

    type: Literal["endow"]
    at_step: int = Field(ge=1)
    populations: list[str] | None = None
    cash: float = 0.0
    holdings: dict[str, int] = Field(default_factory=dict)
    description: str = ""


class SetParams(_Strict):
    """Change the policy parameters of populations from ``at_step`` on (e.g. a volatility spike:
    noise traders' sigma x3; a liquidity shock: market makers quote less and wider)."""

    type: Literal["set_params"]
    at_step: int = Field(ge=1)
    populations: list[str] | None = None
    params: dict[str, Any] = Field(min_length=1)
    description: str = ""


#: stress events (flash_crash, volatility_spike, liquidity_shock) are documented in mesa_llm.stress
TimelineEvent = Annotated[
    ShiftPrivate | Endow | SetParams | FlashCrash | VolatilitySpike | LiquidityShock,
    Field(discriminator="type"),
]

# ---- plugin event types (the mesa_llm.events entry points): a timeline entry of another type is
# validated by its plugin's CustomEvent subclass, imported when a scenario first names it
_BUILTIN_TIMELINE: TypeAdapter[Any] = TypeAdapter(TimelineEvent)
#: the ``type`` tags of the built-in timeline events (a plugin event type may not reuse one)
BUILTIN_EVENT_TYPES: frozenset[str] = frozenset(
    tag for cls in get_args(get_args(TimelineEvent)[0]) for tag in get_args(cls.model_fields["type"].annotation)
)


def _timeline_entry(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    tag = value.get("type") if isinstance(value, Mapping) else None
    if not isinstance(tag, str) or tag in BUILTIN_EVENT_TYPES:
        return _BUILTIN_TIMELINE.validate_python(value) if isinstance(value, Mapping) else handler(value)
    context = info.context if isinstance(info.context, Mapping) else {}
    plugins = context.get("plugins") or current_plugins()
    entry = plugins.lookup("events", tag, BUILTIN_EVENT_TYPES)
    if entry is None:
        known = sorted(BUILTIN_EVENT_TYPES | set(plugins.names("events", BUILTIN_EVENT_TYPES)))
        raise ValueError(f"unknown event type {tag[:80]!r}; known types: {', '.join(known)}")
    if not entry.usable:
        raise ValueError(f"event type {tag!r} of plugin {entry.origin} {entry.status}: {entry.reason}")
    return entry.obj.model_validate(value)


#: one timeline entry: a built-in event, or a plugin's (serialised with all its own fields)
TimelineEntry = Annotated[
    TimelineEvent | SerializeAsAny[CustomEvent],
    Field(union_mode="left_to_right"),
    WrapValidator(_timeline_entry),
]


def _mechanism_entry(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """One ``mechanisms`` entry, validated by the ``Params`` of the plugin mechanism its ``type``
    names (the ``mesa_llm.mechanisms`` entry points, imported when a scenario first names one)."""
    if isinstance(value, MechanismParams):
        return value
    if not isinstance(value, Mapping):
        raise ValueError("a mechanism is a mapping with a 'type' (the mechanism's name) and its parameters")
    tag = value.get("type")
    if not isinstance(tag, str):
        raise ValueError("give the mechanism's name as 'type' (see mesa-llm plugins)")
    if tag in BUILTIN_MECHANISMS:
        raise ValueError(f"{tag!r} is built in: configure it with the scenario's 'market' or 'negotiation' section")
    context = info.context if isinstance(info.context, Mapping) else {}
    plugins = context.get("plugins") or current_plugins()
    entry = plugins.lookup("mechanisms", tag, BUILTIN_MECHANISMS)
    if entry is None:
        known = plugins.names("mechanisms", BUILTIN_MECHANISMS)
        raise ValueError(f"unknown mechanism type {tag[:80]!r}; plugin mechanisms: {', '.join(known) or 'none installed'}")
    if not entry.usable:
        raise ValueError(f"mechanism type {tag!r} of plugin {entry.origin} {entry.status}: {entry.reason}")
    return entry.obj.Params.model_validate(value)


#: one ``mechanisms`` entry: a plugin mechanism's parameters (serialised with all its own fields)
MechanismEntry = Annotated[SerializeAsAny[MechanismParams], WrapValidator(_mechanism_entry)]


class ScenarioSpec(_Strict):
    """A complete, validated scenario."""

    name: str = Field(description="also the recording's file name stem")
    description: str = ""
    seed: int = Field(default=0, ge=0, lt=2**63)
    steps: int = Field(ge=1, le=1_000_000)
    tick_size: float = Field(default=0.01, ge=1e-8, le=1e6)
    goods: list[GoodSpec] = Field(min_length=1, max_length=MAX_GOODS)
    market: MarketSpec = Field(default_factory=MarketSpec)
    populations: list[PopulationSpec] = Field(min_length=1)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    recording: RecordingSpec = Field(default_factory=RecordingSpec)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    negotiation: NegotiationSettings = Field(default_factory=NegotiationSettings)
    rules: RulesSpec = Field(default_factory=RulesSpec)
    social: SocialSettings = Field(default_factory=SocialSettings)
    mechanisms: list[MechanismEntry] = Field(
        default_factory=list,
        description="plugin market mechanisms (mesa_llm.mechanisms entry points), each {type: NAME, ...params}",
    )
    #: folder of the scenario file (prompt overrides and includes are relative to it)
    source_dir: Path | None = Field(default=None, exclude=True)

    @model_serializer(mode="wrap")
    def _without_empty_mechanisms(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a scenario without plugin mechanisms dumps as it always did (recordings, run ids)
        data = handler(self)
        if not self.mechanisms and isinstance(data, dict):
            data.pop("mechanisms", None)
        return data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(SCENARIO_NAME_PATTERN, name):
            raise ValueError(
                f"{name[:80]!r} cannot name a recording file: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        return name

    @field_validator("goods")
    @classmethod
    def _unique_goods(cls, goods: list[GoodSpec]) -> list[GoodSpec]:
        names = [g.name for g in goods]
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # list.count per name: quadratic
        if dupes:
            raise ValueError(f"duplicate good names: {', '.join(dupes)}")
        return goods

    @model_validator(mode="after")
    def _within_capacity(self) -> ScenarioSpec:
        # here, not only in validate_scenario: every validated spec (the dashboard's counts too) holds
        problems = capacity_problems(self.populations, len(self.goods))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _cross_references(self) -> ScenarioSpec:
        if sum(p.count for p in self.populations) == 0:
            raise ValueError("populations: the scenario has no agents (every count is 0)")
        goods = {g.name for g in self.goods}
        labels = [p.label for p in self.populations]
        dupes = sorted(n for n, k in Counter(labels).items() if k > 1)
        if dupes:
            raise ValueError(f"populations: duplicate names {', '.join(dupes)} (set 'name')")
        for i, pop in enumerate(self.populations):
            for good in list(pop.private) + list(pop.endowment.holdings):
                if good not in goods:
                    raise ValueError(f"populations.{i}: unknown good {good!r}")
        for i, event in enumerate(self.timeline):
            if isinstance(event, ShiftPrivate) and event.good not in goods:
                raise ValueError(f"timeline.{i}.good: unknown good {event.good!r}")
            if isinstance(event, Endow):
                for good in event.holdings:
                    if good not in goods:
                        raise ValueError(f"timeline.{i}.holdings: unknown good {good!r}")
            for name in event.populations or []:
                if name not in labels:
                    raise ValueError(f"timeline.{i}.populations: unknown population {name!r}")
        spaces = self.negotiation.spaces
        for i, pop in enumerate(self.populations):
            for space in pop.utilities:
                if space not in spaces:
                    raise ValueError(f"populations.{i}.utilities: unknown outcome space {space!r}")
        for i, session in enumerate(self.negotiation.sessions):
            where = f"negotiation.sessions.{i}"
            for role_field in ("buyers", "sellers", "mediators", "bidders"):
                label = getattr(session, role_field)
                if label is not None and label not in labels:
                    raise ValueError(f"{where}.{role_field}: unknown population {label!r}")
            if session.good is not None and session.good not in goods:
                raise ValueError(f"{where}.good: unknown good {session.good!r}")
            auction = session.protocol in ("first_price", "second_price", "english")
            if auction:
                if session.sellers is None or session.bidders is None or session.good is None:
                    raise ValueError(f"{where}: an auction needs sellers, bidders and a good")
                if session.protocol == "english" and (session.start_price is None or session.increment is None):
                    raise ValueError(f"{where}: an English auction needs start_price and increment")
                if session.value_low is None:  # common knowledge of the symmetric private-values model
                    bidders = self.populations[labels.index(session.bidders)]
                    source = bidders.private.get(session.good, PrivateSpec()).values
                    if isinstance(source, Uniform):
                        session.value_low = source.low
            else:
                if session.space is None or session.space not in spaces:
                    raise ValueError(f"{where}.space: unknown outcome space {session.space!r}")
                if session.buyers is None or session.sellers is None:
                    raise ValueError(f"{where}: a negotiation needs buyers and sellers")
                if session.protocol == "single_text" and session.mediators is None:
                    raise ValueError(f"{where}: single_text needs mediators")
        for good, space in self.negotiation.default_spaces.items():
            if good not in goods:
                raise ValueError(f"negotiation.default_spaces: unknown good {good!r}")
            if space not in spaces:
                raise ValueError(f"negotiation.default_spaces.{good}: unknown outcome space {space!r}")
        for rule in ("price_caps", "price_floors", "position_limits"):
            for good in getattr(self.rules, rule):
                if good not in goods:
                    raise ValueError(f"rules.{rule}: unknown good {good!r}")
        for i, good_spec in enumerate(self.goods):
            for field_name in ("reference_price", "min_price", "max_price"):
                value = getattr(good_spec, field_name)
                if value is not None and not _on_tick(value, self.tick_size):
                    raise ValueError(
                        f"goods.{i}.{field_name}: {value} is not a multiple of the tick size {self.tick_size}"
                    )
        return self

    def good(self, name: str) -> GoodSpec:
        """The good called ``name``."""
        for g in self.goods:
            if g.name == name:
                return g
        raise KeyError(name)

    def plugins_used(self) -> list[dict[str, str]]:
        """The plugins a run of this scenario uses (see :func:`mesa_llm.plugins.plugins_used`)."""
        return plugins_used(self)


def _on_tick(value: float, tick: float) -> bool:
    ticks = value / tick
    return math.isclose(ticks, round(ticks), rel_tol=1e-9, abs_tol=1e-9)


# --------------------------------------------------------------------------- loading


def shipped_scenarios() -> dict[str, Path]:
    """Shipped scenario names and their files."""
    return {p.stem: p for p in sorted(scenarios_dir().glob("*.yaml"))}


def plugin_scenarios(plugins: Plugins | None = None) -> dict[str, tuple[Path, str]]:
    """Scenarios from plugins (the ``mesa_llm.scenarios`` entry points, imported now): name ->
    (file, ``distribution version``). A name a shipped scenario has is refused."""
    plugins = plugins if plugins is not None else current_plugins()
    out: dict[str, tuple[Path, str]] = {}
    if plugins.entries("scenarios"):
        for entry in plugins.usable("scenarios", builtin=set(shipped_scenarios())):
            out.update({name: (Path(path), entry.origin) for name, path in entry.obj.items()})
    return dict(sorted(out.items()))


def scenario_summary(path: Path) -> str:
    """The one-line description of a scenario file (its ``description`` field's first line)."""
    try:
        raw = _read_yaml_mapping(path)
    except ScenarioError:
        return "(unreadable)"
    description = raw.get("description")
    return str(description).strip().splitlines()[0] if description and str(description).strip() else ""


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A shipped scenario's file for a name, or the given path; ScenarioError if neither exists.

    A path must name a regular ``.yaml``/``.yml`` file outside /proc, /sys and /dev (a /proc file
    reads as a regular file and may hold the environment's secrets); it is read with a bound."""
    candidate = Path(name_or_path)
    text = str(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or "/" in text or "\\" in text:
        if system_file(candidate):
            raise ScenarioError(text, ["not a scenario file (a system file under /proc, /sys or /dev)"])
        if candidate.suffix not in (".yaml", ".yml"):
            raise ScenarioError(text, ["not a scenario file: a scenario is a .yaml or .yml file (or a shipped name)"])
        if not candidate.is_file():
            what = "a folder" if candidate.is_dir() else "a device, FIFO or socket" if candidate.exists() else None
            raise ScenarioError(text, [f"not a regular file ({what})" if what else "file not found"])
        return candidate
    shipped = shipped_scenarios()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    plugins = current_plugins()
    from_plugins = plugin_scenarios(plugins)
    if str(name_or_path) in from_plugins:
        return from_plugins[str(name_or_path)][0]
    raise ScenarioError(
        str(name_or_path),
        [
            f"no such scenario file or shipped scenario; shipped: {', '.join(shipped)}"
            + (f"; from plugins: {', '.join(from_plugins)}" if from_plugins else "")
            + (f" ({plugins.describe_settings()})" if not plugins.enabled or plugins.allow is not None else "")
        ],
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``path.to.field=value`` (value read as YAML) into its path and value."""
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected PATH=VALUE, e.g. market.k=0.3")
    path, _, value = text.partition("=")
    parts = [p for p in path.strip().split(".") if p]
    if not parts:
        raise ValueError(f"--set {text!r}: empty path")
    try:
        parsed = load_yaml(value) if value.strip() else ""
    except UnsafeYAMLError as exc:
        raise ValueError(f"--set {path.strip()}: {exc}") from None
    return parts, parsed


def apply_override(raw: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` inside the raw scenario dict (list items by index)."""
    node: Any = raw
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            try:
                index = int(key)
                if not 0 <= index <= len(node) or (index == len(node) and not last):
                    raise IndexError(index)
            except (ValueError, IndexError):
                raise ValueError(f"--set {'.'.join(path)}: {where} is not a valid list index") from None
            if index == len(node):
                node.append(value)  # the index just past the end appends (e.g. one more population)
            elif last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise ValueError(f"--set {'.'.join(path)}: {'.'.join(path[:depth])} is not a mapping or list")


def load_scenario(
    name_or_path: str | Path,
    overrides: list[str] | None = None,
    registry: PolicyRegistry | None = None,
) -> ScenarioSpec:
    """Load, override and validate a scenario (a shipped name or a YAML path)."""
    path = resolve_scenario_path(name_or_path)
    source = str(path)
    raw = _read_yaml_mapping(path)
    try:
        _expand_includes(raw, path.parent)
    except ScenarioError:
        raise
    except ValueError as exc:
        raise ScenarioError(source, [str(exc)]) from None
    for text_override in overrides or []:
        try:
            parts, value = parse_override(text_override)
            apply_override(raw, parts, value)
        except ValueError as exc:
            raise ScenarioError(source, [str(exc)]) from None
    spec = validate_scenario(raw, source=source, registry=registry)
    spec.source_dir = path.parent.resolve()
    if spec.llm.cache not in (None, "memory"):
        try:  # now that the folder is known: no symlink out of it
            confined_cache_folder(spec.llm.cache, spec.source_dir)
        except ValueError as exc:
            raise ScenarioError(source, [str(exc)]) from None
    return spec


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping a YAML file holds, read through the safe loader (size, depth, aliases, duplicates, NaN)."""
    source = str(path)
    try:
        data = read_regular_file(path, MAX_FILE_BYTES)
    except UnreadableFileError as exc:
        raise ScenarioError(source, [str(exc)]) from None
    try:
        raw = load_yaml(decode_yaml_bytes(data))
    except UnsafeYAMLError as exc:
        raise ScenarioError(source, [str(exc)]) from None
    if not isinstance(raw, dict):
        raise ScenarioError(source, ["the file must hold a mapping of fields"])
    return raw


def _expand_includes(raw: dict[str, Any], base: Path) -> None:
    """Replace ``{include: persona.yaml, ...}`` population entries by the file's fields (+ overrides).

    Includes are trusted no more than the scenario: each names a regular file inside the
    scenario's folder (relative, no escape through ``..`` or symlinks); an included file may
    include another, up to :data:`MAX_INCLUDE_DEPTH` files, and a cycle is an error.
    """
    populations = raw.get("populations")
    if not isinstance(populations, list):
        return
    root = base.resolve()
    for i, entry in enumerate(populations):
        if isinstance(entry, dict) and "include" in entry:
            populations[i] = _included(entry, root, root, f"populations.{i}", [])


def _included(entry: dict[str, Any], base: Path, root: Path, where: str, chain: list[Path]) -> dict[str, Any]:
    """The fields of the file ``entry`` includes (relative to ``base``, confined to ``root``)."""
    target = confined_path(entry["include"], base, f"{where}.include", root=root)
    if target in chain:
        cycle = " -> ".join(p.name for p in [*chain, target])
        raise ValueError(f"{where}.include: include cycle {cycle}")
    if len(chain) >= MAX_INCLUDE_DEPTH:
        raise ValueError(f"{where}.include: more than {MAX_INCLUDE_DEPTH} nested includes")
    included = _read_yaml_mapping(target)
    if "include" in included:
        included = _included(included, target.parent, root, f"{where} ({target.name})", [*chain, target])
    included.setdefault("count", 1)
    return {**included, **{k: v for k, v in entry.items() if k != "include"}}


def confined_path(value: Any, base: Path, where: str, root: Path | None = None) -> Path:
    """The regular file ``value`` names relative to ``base``; ValueError if it is absolute, leaves
    ``root`` (default ``base``; through ``..`` or a symlink), or is not a regular file (a folder, a
    device, missing)."""
    root = root if root is not None else base
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a relative file path")
    relative = Path(value)
    if relative.is_absolute() or value.startswith("~"):
        raise ValueError(f"{where}: {value!r} must be a path relative to the scenario's folder")
    target = (base / relative).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{where}: {value!r} leaves the scenario's folder")
    if not target.is_file():
        what = "a folder" if target.is_dir() else "not a regular file" if target.exists() else "file not found"
        raise ValueError(f"{where}: {value!r}: {what}")
    return target


def load_persona(path: str | Path) -> PersonaSpec:
    """Load one persona YAML file (name, role, goal, style, backstory, model, private values,
    endowment, template overrides); errors name the file and the field."""
    p = Path(path)
    raw = _read_yaml_mapping(p)
    try:
        return PersonaSpec.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(str(p), _format_errors(exc)) from None


def validate_scenario(
    raw: dict[str, Any], source: str = "<scenario>", registry: PolicyRegistry | None = None
) -> ScenarioSpec:
    """Validate a raw scenario dict, including each population's policy name and parameters."""
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(source, _format_errors(exc)) from None
    registry = registry or default_policy_registry()
    problems = []
    for i, pop in enumerate(spec.populations):
        if pop.model is not None and not pop.wants_llm:
            problems.append(f"populations.{i}.model: only LLM populations (policy: llm) take a model")
        if pop.templates and not pop.wants_llm:
            problems.append(f"populations.{i}.templates: only LLM populations (policy: llm) use prompt templates")
    for i, pop in enumerate(spec.populations):
        if pop.fallback is not None:
            if pop.fallback.policy not in registry or pop.fallback.policy == "llm":
                problems.append(
                    f"populations.{i}.fallback.policy: unknown rule-based policy {pop.fallback.policy!r}; "
                    f"known policies: {', '.join(n for n in registry.names() if n != 'llm')}"
                )
            else:
                try:
                    registry.validate_params(pop.fallback.policy, pop.fallback.params)
                except ValidationError as exc:
                    problems.extend(_format_errors(exc, prefix=f"populations.{i}.fallback.params"))
        name = pop.policy_name
        if name not in registry:
            problems.append(f"populations.{i}.policy: {registry.unknown(name)}")
            continue
        try:
            registry.validate_params(name, pop.params)
        except ValidationError as exc:
            problems.extend(_format_errors(exc, prefix=f"populations.{i}.params"))
            continue
        # a policy's own checks against the scenario (e.g. an rl checkpoint's spaces)
        check_population = getattr(registry.get(name), "check_population", None)
        if callable(check_population):
            problems.extend(check_population(spec, i, pop.params))
    by_label = {p.label: p for p in spec.populations}
    for i, event in enumerate(spec.timeline):
        if not isinstance(event, SetParams):
            continue
        for label in event.populations or list(by_label):
            pop = by_label[label]
            if pop.policy_name not in registry:
                continue
            params_model = registry.get(pop.policy_name).Params
            known = set(params_model.model_fields)
            relevant = {k: v for k, v in event.params.items() if k in known}
            if event.populations and not relevant:
                problems.append(
                    f"timeline.{i}.params: none of {sorted(event.params)} is a parameter of policy "
                    f"{pop.policy_name!r} (population {label!r})"
                )
                continue
            try:
                params_model.model_validate({**pop.params, **relevant})
            except ValidationError as exc:
                problems.extend(_format_errors(exc, prefix=f"timeline.{i}.params"))
    problems.extend(stress_problems(spec.timeline, spec.populations, [g.name for g in spec.goods]))
    for i, mechanism in enumerate(spec.mechanisms):
        mechanism_class = current_plugins().require("mechanisms", mechanism.type, BUILTIN_MECHANISMS)
        problems.extend(f"mechanisms.{i}.{p}" for p in mechanism_class.scenario_problems(mechanism, spec))
    problems.extend(_size_problems(spec))
    if problems:
        raise ScenarioError(source, problems)
    return spec


#: largest amount of money, in ticks, a price or an endowment may stand for (int64 with headroom,
#: and exact as a float)
MAX_TICKS = 10**15
#: rough bytes per agent and per private unit (measured: ~11.5 KB per ZI-C agent with 4 units,
#: recording on, at 100,000 and 200,000 agents; ~72 B per unit)
_BYTES_PER_AGENT = 12 * 1024
_BYTES_PER_UNIT = 96


def max_agents() -> int:
    """The most agents a scenario may hold in all: ``MESA_LLM_MAX_AGENTS`` if set (1 to
    :data:`MAX_AGENTS`), else :data:`DEFAULT_MAX_AGENTS`; ValueError (one line) if it is malformed."""
    import os

    text = os.environ.get(MAX_AGENTS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_AGENTS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_AGENTS:
        raise ValueError(f"{MAX_AGENTS_ENV}={text[:40]!r}: expected a whole number from 1 to {MAX_AGENTS:,}")
    return value


def capacity_problems(populations: list[PopulationSpec], goods: int = 1) -> list[str]:
    """Why these populations, trading ``goods`` goods, cannot run on this machine: more agents in
    all than :func:`max_agents`, more agents x goods than :data:`AGENT_GOODS_FACTOR` times that, or
    more memory (agents x private units) than the machine has to give; empty if they can."""
    problems = []
    agents = sum(p.count for p in populations)
    try:
        limit = max_agents()
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if agents > limit:
            problems.append(
                f"populations.*.count: {agents:,} agents in all; at most {limit:,} "
                f"(measured on a 2-core machine: ~7 s a step at {DEFAULT_MAX_AGENTS:,}; {MAX_AGENTS_ENV} raises it)"
            )
        elif agents * goods > AGENT_GOODS_FACTOR * limit:
            problems.append(
                f"populations.*.count: {agents:,} agents x {goods:,} goods = {agents * goods:,} agent-goods; at most "
                f"{AGENT_GOODS_FACTOR * limit:,} (every agent observes every good each step; {MAX_AGENTS_ENV} raises it)"
            )
    units = sum(p.count * sum(s.units for s in p.private.values()) for p in populations)
    needed = agents * _BYTES_PER_AGENT + units * _BYTES_PER_UNIT
    available = _usable_memory()
    if available is not None and needed > available:
        problems.append(
            f"populations: {agents:,} agents with {units:,} private units need about "
            f"{needed / 2**30:,.1f} GiB of memory; this machine has {available / 2**30:,.1f} GiB to give "
            "(lower count or private.*.units)"
        )
    return problems


def _size_problems(spec: ScenarioSpec) -> list[str]:
    """Bounds the schema alone cannot state: money within int64 ticks (agents in all and memory
    are :func:`capacity_problems`, checked by the spec itself)."""
    problems = []
    tick = spec.tick_size
    for i, good in enumerate(spec.goods):
        for name in ("reference_price", "min_price", "max_price"):
            value = getattr(good, name)
            if value is not None and value / tick > MAX_TICKS:
                problems.append(f"goods.{i}.{name}: {value} is more than {MAX_TICKS:.0e} ticks of {tick}")
    for i, pop in enumerate(spec.populations):
        cash = pop.endowment.cash + pop.credit_limit
        if cash / tick > MAX_TICKS:
            problems.append(f"populations.{i}.endowment.cash: {cash} is more than {MAX_TICKS:.0e} ticks of {tick}")
    return problems


def _usable_memory() -> int | None:
    """Three quarters of this machine's physical memory (bytes), or None where it cannot be read."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.75)
    except (AttributeError, ValueError, OSError):
        return None


def _format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for err in exc.errors():
        # drop pydantic's union-member tags (e.g. 'uniform') from the path: users never write them
        loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
        path = ".".join(([prefix] if prefix else []) + loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        if not loc and not prefix and re.match(r"^(populations\.\*\.count: |populations: [\d,]+ agents with |MESA_LLM_MAX_AGENTS=)", msg):
            problems.append(msg)  # a spec-wide check that names its own field
            continue
        problems.append(f"{path}: {msg}")
    # union errors repeat one problem per member: keep each once, in order
    return list(dict.fromkeys(problems))


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part in {"constant", "uniform", "normal", "choice", "float", "list[float]"}
        or part.startswith(("function-", "tagged-union"))
    )
