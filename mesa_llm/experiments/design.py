"""Designs and the run plan: which runs a sweep makes (cells x replicates) and with which seeds.

A *cell* is one condition at one point of the factor design (full factorial grid, or a Latin
hypercube sample from :class:`scipy.stats.qmc.LatinHypercube`). Replicate ``r`` of every cell runs
with the same seed, drawn from one ``numpy.random.SeedSequence(seed).spawn(replicates)``: common
random numbers, so conditions and factor levels are compared on paired runs.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mesa_llm.experiments.spec import Range, SweepSpec

#: condition name of every run when the spec names no conditions
DEFAULT_CONDITION = "default"
#: mixed into the root seed for the LHS sample, so the design does not share draws with the runs
_LHS_STREAM = 0x4C4853


@dataclass(slots=True)
class PlannedRun:
    """One run of a sweep, as plain data (it crosses process boundaries and goes into the table)."""

    run_id: str
    condition: str
    point: int
    replicate: int
    seed: int
    #: factor path -> level of this run's design point
    factors: dict[str, Any]
    #: ``PATH=VALUE`` overrides, conditions first, then factors (a factor wins on the same path)
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """One seed per replicate from ``SeedSequence(seed).spawn(replicates)`` (shared by every cell)."""
    children = np.random.SeedSequence(seed).spawn(replicates)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


def grid_points(factors: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The full factorial of the factors' levels, first factor varying slowest."""
    if not factors:
        return [{}]
    paths = list(factors)
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*(factors[p] for p in paths))]


def lhs_points(factors: dict[str, Range], samples: int, seed: int) -> list[dict[str, Any]]:
    """``samples`` points of a Latin hypercube over the factors' ranges (scipy's qmc), seeded."""
    from scipy.stats import qmc

    paths = list(factors)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _LHS_STREAM]))
    unit = qmc.LatinHypercube(d=len(paths), rng=rng).random(samples)
    lows = [factors[p].low for p in paths]
    highs = [factors[p].high for p in paths]
    scaled = qmc.scale(unit, lows, highs)
    points: list[dict[str, Any]] = []
    for row in scaled:
        point: dict[str, Any] = {}
        for path, value in zip(paths, row, strict=True):
            r = factors[path]
            if r.integer:
                point[path] = int(min(max(round(value), np.ceil(r.low)), np.floor(r.high)))
            elif r.digits is not None:
                point[path] = round(float(value), r.digits)
            else:
                point[path] = float(value)
        points.append(point)
    return points


def design_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The factor design of ``spec``: grid or Latin hypercube points."""
    if spec.design == "lhs":
        ranges = {p: v for p, v in spec.factors.items() if isinstance(v, Range)}
        return lhs_points(ranges, spec.samples or 1, spec.seed)
    lists = {p: v for p, v in spec.factors.items() if isinstance(v, list)}
    return grid_points(lists)


def _override(path: str, value: Any) -> str:
    # JSON is YAML, so the scenario's --set parser reads the value back with its type
    return f"{path}={json.dumps(value)}"


def plan_runs(spec: SweepSpec) -> list[PlannedRun]:
    """Every run of the sweep, replicate-major: replicate 0 of every cell first, so a sweep stopped
    early (budget, kill) leaves complete, paired replicates rather than finished and empty cells."""
    points = design_points(spec)
    seeds = replicate_seeds(spec.seed, spec.replicates)
    conditions = spec.conditions or {DEFAULT_CONDITION: {}}
    width_p = len(str(max(len(points) - 1, 0)))
    width_r = len(str(spec.replicates - 1))
    runs: list[PlannedRun] = []
    for rep, seed in enumerate(seeds):
        for condition, cond_overrides in conditions.items():
            for index, point in enumerate(points):
                overrides = [_override(p, v) for p, v in cond_overrides.items()]
                overrides += [_override(p, v) for p, v in point.items()]
                runs.append(
                    PlannedRun(
                        run_id=f"{condition}.p{index:0{width_p}d}.r{rep:0{width_r}d}",
                        condition=condition,
                        point=index,
                        replicate=rep,
                        seed=seed,
                        factors=dict(point),
                        overrides=overrides,
                    )
                )
    return runs
