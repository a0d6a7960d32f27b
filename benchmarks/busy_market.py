"""What the rule-based benchmarks share: the busy market they time, and running a benchmark's
function against another checkout of the code.

The busy market is the ``double_auction`` scenario with ``agents`` ZI-C traders (half buyers,
half sellers) holding 100-unit schedules and enough cash and goods that every agent places an
order every step; the invariant check (a test's job, not a benchmark's) is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["busy_market", "in_checkout"]

HERE = Path(__file__).resolve().parent


def busy_market(agents: int, steps: int) -> Any:
    """The busy market's scenario (a `ScenarioSpec`, from whichever ``mesa_llm`` is imported)."""
    from mesa_llm.scenario import load_scenario

    half = agents // 2
    return load_scenario(
        "double_auction",
        overrides=[
            f"populations.0.count={half}", f"populations.1.count={agents - half}",
            "populations.0.private.widget.units=100", "populations.1.private.widget.units=100",
            "populations.0.endowment.cash=100000", "populations.1.endowment.holdings.widget=100",
            f"steps={steps}", "market.check_invariants=false",
        ],
    )  # fmt: skip


def in_checkout(code: str | None, module: str, function: str, *args: Any, **kwargs: Any) -> Any:
    """``module.function(*args, **kwargs)`` (a benchmark script here; JSON in, JSON out) run in a
    fresh process whose ``mesa_llm`` is ``code``'s (a checkout of another revision; None: this one)."""
    root = str(Path(code).resolve()) if code is not None else str(HERE.parent)
    script = (
        "import importlib, json, sys; sys.path.insert(0, sys.argv[1]); "
        "f = getattr(importlib.import_module(sys.argv[2]), sys.argv[3]); "
        "print(json.dumps(f(*json.loads(sys.argv[4]), **json.loads(sys.argv[5]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(HERE), module, function, json.dumps(args), json.dumps(kwargs)],
        env={**os.environ, "PYTHONPATH": root}, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])
