"""Scenario files: the YAML schema (pydantic), loading, ``--set`` overrides and clear errors.

A scenario says which goods trade (tick size, admissible prices), for how many steps, with which
seed, which populations of agents take part (role, policy and its parameters, private values drawn
from seeded distributions, endowments) and a timeline of scheduled events (shocks). Every error
names the file and the field path, e.g. ``double_auction.yaml: populations.0.count: Input should
be greater than 0``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mesa_llm.agents.policies import (
    DEFAULT_POLICY_FOR_ROLE,
    PolicyRegistry,
    default_policy_registry,
)
from mesa_llm.agents.roles import Role
from mesa_llm.resources import scenarios_dir


class ScenarioError(ValueError):
    """A scenario that cannot be loaded: the message names the file and the field path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        if len(problems) == 1:
            message = f"{source}: {problems[0]}"
        else:
            message = f"{source}: {len(problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in problems
            )
        super().__init__(message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class PopulationSpec(_Strict):
    """A group of agents sharing a role, a policy (or an LLM) and how their private values are drawn.

    With ``policy: llm`` the agents are LLM agents: their model comes from ``--model``, else
    ``model`` here, else the scenario's ``llm.model``, else the environment variable
    ``MESA_LLM_MODEL``; with none of these they fall back to the role's built-in rule-based policy.
    ``goal``, ``style`` and ``backstory`` are the persona text their prompts use; ``templates``
    overrides prompt templates (paths relative to the scenario file).
    """

    name: str | None = Field(default=None, description="defaults to the role")
    count: int = Field(ge=0, le=1_000_000)
    role: Role
    policy: str | None = Field(default=None, description="defaults to the role's built-in policy")
    params: dict[str, Any] = Field(default_factory=dict)
    model: str | None = Field(default=None, min_length=1, description="litellm model string")
    goal: str = ""
    style: str = ""
    backstory: str = ""
    templates: dict[str, str] = Field(default_factory=dict)
    private: dict[str, PrivateSpec] = Field(default_factory=dict)
    endowment: EndowmentSpec = Field(default_factory=EndowmentSpec)
    credit_limit: float = Field(default=0.0, ge=0, description="cash may go this far below zero")
    short_limit: int = Field(default=0, ge=0, description="holdings may go this far below zero")

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
        """The role's built-in rule-based policy (used when an LLM population has no model)."""
        return DEFAULT_POLICY_FOR_ROLE.get(self.role.value, "idle")

    @property
    def wants_llm(self) -> bool:
        """Whether this population is meant to be driven by an LLM."""
        return self.policy == "llm"


class PersonaSpec(PopulationSpec):
    """One named agent (a persona file): a population of one unless ``count`` says otherwise."""

    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=0, le=1_000_000)


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


class LLMSettings(_Strict):
    """How LLM agents reach their models (no keys here: litellm reads them from the environment)."""

    model: str | None = Field(default=None, min_length=1, description="default model of LLM populations")
    api_base: str | None = Field(default=None, description="OpenAI-compatible server URL")
    concurrency: int = Field(default=8, ge=1, le=4096, description="calls in flight per model")
    timeout: float = Field(default=60.0, gt=0, description="seconds per call attempt")
    max_attempts: int = Field(default=4, ge=1, le=20, description="attempts on transient errors")
    max_cost_usd: float | None = Field(default=None, gt=0, description="stop the run past this cost")
    max_tokens: int | None = Field(default=None, gt=0, description="stop the run past this many tokens")
    cache: str | None = Field(default=None, description="'memory' or a folder for a disk cache of answers")
    templates: dict[str, str] = Field(default_factory=dict, description="prompt overrides")
    structured_output_models: list[str] = Field(
        default_factory=list,
        description="models without tool calling: their agents act through JSON-schema output",
    )
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)


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


TimelineEvent = Annotated[ShiftPrivate | Endow, Field(discriminator="type")]


class ScenarioSpec(_Strict):
    """A complete, validated scenario."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(default=0, ge=0)
    steps: int = Field(ge=1, le=1_000_000)
    tick_size: float = Field(default=0.01, gt=0, allow_inf_nan=False)
    goods: list[GoodSpec] = Field(min_length=1)
    market: MarketSpec = Field(default_factory=MarketSpec)
    populations: list[PopulationSpec] = Field(min_length=1)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    recording: RecordingSpec = Field(default_factory=RecordingSpec)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    #: folder of the scenario file (prompt overrides and includes are relative to it)
    source_dir: Path | None = Field(default=None, exclude=True)

    @field_validator("goods")
    @classmethod
    def _unique_goods(cls, goods: list[GoodSpec]) -> list[GoodSpec]:
        names = [g.name for g in goods]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate good names: {', '.join(dupes)}")
        return goods

    @model_validator(mode="after")
    def _cross_references(self) -> ScenarioSpec:
        if sum(p.count for p in self.populations) == 0:
            raise ValueError("populations: the scenario has no agents (every count is 0)")
        goods = {g.name for g in self.goods}
        labels = [p.label for p in self.populations]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
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


def _on_tick(value: float, tick: float) -> bool:
    ticks = value / tick
    return math.isclose(ticks, round(ticks), rel_tol=1e-9, abs_tol=1e-9)


# --------------------------------------------------------------------------- loading


def shipped_scenarios() -> dict[str, Path]:
    """Shipped scenario names and their files."""
    return {p.stem: p for p in sorted(scenarios_dir().glob("*.yaml"))}


def scenario_summary(path: Path) -> str:
    """The one-line description of a scenario file (its ``description`` field's first line)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return "(unreadable)"
    if isinstance(raw, dict):
        return str(raw.get("description", "")).strip().splitlines()[0] if raw.get("description") else ""
    return ""


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A shipped scenario's file for a name, or the given path; ScenarioError if neither exists."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or "/" in str(name_or_path):
        if not candidate.is_file():
            raise ScenarioError(str(name_or_path), ["file not found"])
        return candidate
    shipped = shipped_scenarios()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise ScenarioError(
        str(name_or_path),
        [f"no such scenario file or shipped scenario; shipped: {', '.join(shipped)}"],
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
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ValueError(f"--set {text!r}: value is not valid YAML ({exc})") from None
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
                node[index]  # noqa: B018 - bounds check
            except (ValueError, IndexError):
                raise ValueError(f"--set {'.'.join(path)}: {where} is not a valid list index") from None
            if last:
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
    return spec


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, [f"cannot read: {exc}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(source, [f"invalid YAML: {where}{problem}"]) from None
    if not isinstance(raw, dict):
        raise ScenarioError(source, ["the file must hold a mapping of fields"])
    return raw


def _expand_includes(raw: dict[str, Any], base: Path) -> None:
    """Replace ``{include: persona.yaml, ...}`` population entries by the file's fields (+ overrides)."""
    populations = raw.get("populations")
    if not isinstance(populations, list):
        return
    for i, entry in enumerate(populations):
        if isinstance(entry, dict) and "include" in entry:
            target = Path(str(entry["include"]))
            if not target.is_absolute():
                target = base / target
            if not target.is_file():
                raise ValueError(f"populations.{i}.include: file not found: {target}")
            included = _read_yaml_mapping(target)
            included.setdefault("count", 1)
            merged = {**included, **{k: v for k, v in entry.items() if k != "include"}}
            populations[i] = merged


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
    for i, pop in enumerate(spec.populations):
        name = pop.policy_name
        if name not in registry:
            problems.append(
                f"populations.{i}.policy: unknown policy {name!r}; known policies: "
                f"{', '.join(registry.names())}"
            )
            continue
        try:
            registry.validate_params(name, pop.params)
        except ValidationError as exc:
            problems.extend(_format_errors(exc, prefix=f"populations.{i}.params"))
    if problems:
        raise ScenarioError(source, problems)
    return spec


def _format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for err in exc.errors():
        # drop pydantic's union-member tags (e.g. 'uniform') from the path: users never write them
        loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
        path = ".".join(([prefix] if prefix else []) + loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append(f"{path}: {msg}")
    # union errors repeat one problem per member: keep each once, in order
    return list(dict.fromkeys(problems))


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part in {"constant", "uniform", "normal", "choice", "float", "list[float]"}
        or part.startswith(("function-", "tagged-union"))
    )
