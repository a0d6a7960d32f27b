"""The sweep spec: what a ``mesa-llm sweep`` file may say, validated by pydantic at the boundary.

A spec names a scenario, the factors to vary (``--set`` paths and their levels, or ranges for a
Latin hypercube), optional named conditions (arms crossed with the factors), the number of
replicates and the root seed. It is read through :func:`mesa_llm.safe_yaml.load_yaml` (bounded
size, depth and aliases; no duplicate keys) and every problem is one line naming the file and field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mesa_llm.metric_names import canonical
from mesa_llm.resources import UnreadableFileError, read_regular_file, system_file
from mesa_llm.safe_yaml import UnsafeYAMLError, decode_yaml_bytes, load_yaml

#: names that become parts of file names (the experiment, its conditions)
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: a ``--set`` path: dot-separated field names or list indices
OVERRIDE_PATH = r"^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,15}$"
#: largest spec file read
MAX_SPEC_BYTES = 1024 * 1024
#: most runs one sweep may plan (cells x replicates): a typo should not plan a billion runs
MAX_RUNS = 100_000
#: longest factor level or condition value, as JSON text (a level is a value such as 0.5 or "zi_c")
MAX_LEVEL_CHARS = 1_000
#: integer levels are stored in an int64 column of the results table
MIN_INT_LEVEL, MAX_INT_LEVEL = -(2**63), 2**63 - 1
#: integer ranges (design: lhs) are sampled as floats: they must stay exact
MAX_INT_RANGE = 2**53


class SweepSpecError(ValueError):
    """A sweep spec that cannot be used; the message is one line naming the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Range(_Strict):
    """A continuous (or integer) factor range for a Latin hypercube design."""

    low: float
    high: float
    integer: bool = False
    #: round sampled values to this many decimals (e.g. 2 for a price on a 0.01 tick)
    digits: int | None = Field(default=None, ge=0, le=12)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class SweepSpec(_Strict):
    """A validated sweep: scenario x conditions x factor levels x replicates."""

    name: str
    scenario: str = Field(min_length=1, max_length=4096)
    steps: int | None = Field(default=None, ge=1, le=1_000_000)
    replicates: int = Field(default=1, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    factors: dict[str, list[Any] | Range] = Field(default_factory=dict)
    design: Literal["grid", "lhs"] = "grid"
    #: number of LHS points (design: lhs only)
    samples: int | None = Field(default=None, ge=1, le=100_000)
    conditions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    metrics: list[str] | None = None
    #: seconds one run may take before it is stopped and recorded as ``timeout``
    timeout_s: float = Field(default=600.0, gt=0, le=7 * 86_400)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(SAFE_NAME, name):
            raise ValueError(f"{name[:80]!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return name

    @field_validator("factors")
    @classmethod
    def _factor_paths(cls, factors: dict[str, Any]) -> dict[str, Any]:
        for path, levels in factors.items():
            _check_path(path)
            if isinstance(levels, list) and not levels:
                raise ValueError(f"{path}: give at least one level")
        return factors

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, conditions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in conditions.items():
            if not re.fullmatch(SAFE_NAME, str(name)):
                raise ValueError(f"condition {str(name)[:80]!r}: use 1-64 letters, digits, '_', '.' or '-'")
            for path in overrides:
                _check_path(str(path), f"condition {name}: ")
        return conditions

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, metrics: list[str] | None) -> list[str] | None:
        if metrics is None:
            return None
        if not metrics:
            raise ValueError("list at least one metric, or leave metrics out for every scalar of the summary")
        for metric in metrics:
            if not re.fullmatch(OVERRIDE_PATH, metric):
                raise ValueError(
                    f"metric {metric[:80]!r}: expected a summary key such as allocative_efficiency or goods.widget.smiths_alpha"
                )
        metrics = [canonical(m)[0] for m in metrics]  # old names: the vocabulary's (see `metric_notes`)
        if len(set(metrics)) != len(metrics):
            raise ValueError("a metric is listed twice")
        return metrics

    @staticmethod
    def metric_notes(raw_metrics: Any) -> list[str]:
        """One deprecation note per old metric name in a spec's raw ``metrics`` list."""
        if not isinstance(raw_metrics, list):
            return []
        return [note for m in raw_metrics if isinstance(m, str) and (note := canonical(m)[1]) is not None]

    @model_validator(mode="after")
    def _storable(self) -> SweepSpec:
        # a level reaches a --set override (JSON text) and a column of the results table: one that
        # neither can hold must stop the spec here, not leave a folder every resume crashes on
        for path, levels in self.factors.items():
            if isinstance(levels, Range):
                if levels.integer and max(abs(levels.low), abs(levels.high)) > MAX_INT_RANGE:
                    raise ValueError(f"factors.{path}: an integer range must lie within ±2**53")
                continue
            for level in levels:
                _check_level(level, f"factors.{path}", column=True)
        for name, overrides in self.conditions.items():
            for path, value in overrides.items():
                _check_level(value, f"conditions.{name}.{path}", column=False)
        return self

    @model_validator(mode="after")
    def _design(self) -> SweepSpec:
        ranges = [p for p, v in self.factors.items() if isinstance(v, Range)]
        lists = [p for p, v in self.factors.items() if isinstance(v, list)]
        if self.design == "grid":
            if ranges:
                raise ValueError(f"factors {', '.join(ranges)}: a grid needs a list of levels (ranges are for design: lhs)")
            if self.samples is not None:
                raise ValueError("samples: only for design: lhs")
        else:
            if lists:
                raise ValueError(f"factors {', '.join(lists)}: design lhs needs ranges {{low, high}}, not lists")
            if not ranges:
                raise ValueError("design lhs needs at least one factor range")
            if self.samples is None:
                raise ValueError("design lhs needs samples: N")
        if self.n_runs > MAX_RUNS:
            raise ValueError(f"the sweep plans {self.n_runs:,} runs, more than {MAX_RUNS:,}")
        return self

    @property
    def n_cells(self) -> int:
        """Cells (condition x factor point) this spec plans."""
        if self.design == "lhs":
            points = self.samples or 1
        else:
            points = 1
            for levels in self.factors.values():
                points *= len(levels) if isinstance(levels, list) else 1
        return points * max(1, len(self.conditions))

    @property
    def n_runs(self) -> int:
        """Runs this spec plans (cells x replicates)."""
        return self.n_cells * self.replicates


def _check_level(value: Any, where: str, *, column: bool) -> None:
    """ValueError (one line naming ``where``) unless ``value`` is a JSON value of bounded size and,
    for a factor's level (``column``), an integer an int64 column holds."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(
            f"{where}: {shown} is not a JSON value (use a number, text, true/false, null, a list or a mapping)"
        ) from None
    if len(text) > MAX_LEVEL_CHARS:
        raise ValueError(f"{where}: a level longer than {MAX_LEVEL_CHARS:,} characters ({len(text):,} as JSON)")
    if column and isinstance(value, int) and not isinstance(value, bool) and not MIN_INT_LEVEL <= value <= MAX_INT_LEVEL:
        raise ValueError(f"{where}: level {value} is outside the integers a results table stores (-2**63 to 2**63-1)")


def _check_path(path: str, prefix: str = "") -> None:
    if not re.fullmatch(OVERRIDE_PATH, path):
        raise ValueError(f"{prefix}{path[:80]!r} is not a --set path (dot-separated field names or list indices)")


def parse_sweep_spec(raw: Any, source: str = "<spec>") -> SweepSpec:
    """Validate a parsed spec mapping; :class:`SweepSpecError` (one line) naming the field."""
    if not isinstance(raw, dict):
        raise SweepSpecError(f"{source}: the file must hold a mapping of fields")
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append(f"{where}: {message}" if where else message)
        problems = list(dict.fromkeys(problems))[:5]
        raise SweepSpecError(f"{source}: " + "; ".join(" ".join(p.split()) for p in problems)) from None


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried ("list[any]", "Range"): not part of the field path
    return isinstance(part, str) and (part in ("Range",) or part.startswith("list["))


def read_spec_text(path: Path) -> str:
    """The UTF-8 text of a spec file (bounded size); SweepSpecError naming the file."""
    if system_file(path):
        raise SweepSpecError(f"{path}: not a sweep spec file (a system file under /proc, /sys or /dev)")
    try:
        data = read_regular_file(path, MAX_SPEC_BYTES)
    except UnreadableFileError as exc:
        raise SweepSpecError(f"{path}: {exc}") from None
    try:
        return decode_yaml_bytes(data)
    except UnsafeYAMLError as exc:
        raise SweepSpecError(f"{path}: {exc}") from None


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file; :class:`SweepSpecError` (one line) on any problem."""
    file = Path(path)
    text = read_spec_text(file)
    try:
        raw = load_yaml(text)
    except UnsafeYAMLError as exc:
        raise SweepSpecError(f"{file}: {exc}") from None
    return parse_sweep_spec(raw, str(file))
