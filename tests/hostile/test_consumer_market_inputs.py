"""Bad input to the consumer markets (issue 20) is one line naming the field, never a traceback:
demand parameters without a Bertrand-Nash equilibrium, mu <= 0, negative costs, prices off the
grid, the tick or the range — through ``mesa-llm validate``/``run`` as a user types them, and
through the Python API.

Needs the consumer-markets plugin (``pip install -e plugins/consumer_markets``): skipped without
it, except in CI (``MESA_LLM_REQUIRE_CONSUMER_MARKETS=1``), where it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesa_llm import Simulation
from mesa_llm.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.requires(
    "mesa_llm_consumer_markets", extra="consumer_markets", install="pip install -e plugins/consumer_markets"
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MESA_LLM_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "300"
    return subprocess.run([sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, env=env, timeout=300)


#: (--set overrides, the field the one line must name, words it must say)
BAD = [
    (["mechanisms.0.mu=0"], "mechanisms.0.mu", "greater than 0"),
    (["mechanisms.0.mu=-0.25"], "mechanisms.0.mu", "greater than 0"),
    (["mechanisms.0.cost=-1"], "mechanisms.0.cost", "cannot be negative"),
    (["mechanisms.0.cost=[1.0, -0.5]"], "mechanisms.0.cost", "cannot be negative"),
    (["mechanisms.0.quality=[2.0, 300.0]"], "mechanisms.0.mu", "no Bertrand-Nash equilibrium found"),
    (["mechanisms.0.mu=1e-9"], "mechanisms.0.mu", "no joint-profit maximum found"),
    (["mechanisms.0.price_grid={points: 15}"], "mechanisms.0.initial_price", "1.7 is not on the price grid"),
    (["mechanisms.0.price_grid={points: 15}", "mechanisms.0.initial_price=1.6"], "mechanisms.0.initial_price", "not on the price grid"),
    (["mechanisms.0.price_grid={points: 900}"], "mechanisms.0.price_grid", "closer than the tick size"),
    (["mechanisms.0.initial_price=3.0"], "mechanisms.0.initial_price", "outside the admissible range"),
    (["mechanisms.0.cost=1.0005"], "mechanisms.0.cost", "not a multiple of the tick size"),
    (["mechanisms.0.quality=[2.0, 2.0, 2.0]"], "mechanisms.0.quality", "3 values for 2 firms"),
    (["goods.0.max_price=1.8"], "mechanisms.0.good", "monopoly prices"),
    (["mechanisms.0.firms=shops"], "mechanisms.0.firms", "no population 'shops'"),
    (["mechanisms.0.demand=guess"], "mechanisms.0.demand", "'expected' or 'sampled'"),
]


@pytest.mark.parametrize(("overrides", "field", "words"), BAD)
def test_validate_says_what_and_where_in_one_line(overrides: list[str], field: str, words: str) -> None:
    args = [a for o in overrides for a in ("--set", o)]
    result = _cli("validate", "pricing_competition", *args)
    assert result.returncode == 2  # the CLI's exit status for bad input
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "pricing_competition.yaml: " in lines[0]
    assert f"{field}: " in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_bass_probability_above_one_is_refused() -> None:
    result = _cli("validate", "product_launch", "--set", "mechanisms.0.bass.q=0.99")
    assert result.returncode == 2  # the CLI's exit status for bad input
    assert result.stderr.strip().endswith("mechanisms.0.bass: p + q + advertising.lift = 1.03 is more than 1 (a probability per step)")


def test_run_refuses_before_anything_is_recorded(tmp_path: Path) -> None:
    result = _cli("run", "pricing_competition", "--set", "mechanisms.0.mu=0", "--out", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "mechanisms.0.mu: Input should be greater than 0" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("overrides", "field", "words"), BAD[:6])
def test_the_python_api_raises_the_same_one_line(overrides: list[str], field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        Simulation.from_scenario("pricing_competition", overrides=overrides, record=False)
    text = str(caught.value)
    assert "\n" not in text and f"{field}: " in text and words in text
