"""Experiments at scale: sweeps over conditions x factors x seeds, on local cores or Ray, resumable,
within an LLM budget, with paired statistics (``mesa-llm sweep`` and ``mesa-llm sweep-report``).

Nothing here runs at import; the heavy parts (scipy, pyarrow, Ray) load when used.
"""

from mesa_llm.experiments.design import PlannedRun, plan_runs, replicate_seeds
from mesa_llm.experiments.spec import SweepSpec, SweepSpecError, load_sweep_spec, parse_sweep_spec
from mesa_llm.experiments.sweep import SweepResult, SweepTally, run_sweep

__all__ = [
    "PlannedRun",
    "SweepResult",
    "SweepSpec",
    "SweepSpecError",
    "SweepTally",
    "load_sweep_spec",
    "parse_sweep_spec",
    "plan_runs",
    "replicate_seeds",
    "run_sweep",
]
