"""The layers of docs/architecture/layers.md hold: the world's parts never import the model that runs them, front-ends
go through `mesa_llm.Simulation`, and nothing outside the model touches its private attributes.

Read from the source (every import statement, also those inside functions and under
TYPE_CHECKING), so a new back-reference fails here rather than as an import cycle later.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mesa_llm"

#: the only modules that import the model: the model itself and `mesa_llm.Simulation`, through which
#: every front-end (CLI, replay, sweeps, dashboard, conformance checks, the server and RL) runs
MAY_IMPORT_MODEL = {"mesa_llm.model", "mesa_llm.simulation"}
#: front-ends: they build and drive runs through Simulation
FRONT_ENDS = ("mesa_llm.cli", "mesa_llm.replay", "mesa_llm.experiments", "mesa_llm.dashboard", "mesa_llm.testing", "mesa_llm.server", "mesa_llm.rl")
#: what plugin discovery may import of ours (docs/architecture/layers.md: nothing above agents/)
PLUGINS_MAY_IMPORT = (
    "mesa_llm.agents", "mesa_llm.actions", "mesa_llm.timeline_events", "mesa_llm.market",
    "mesa_llm.negotiation", "mesa_llm.social", "mesa_llm.llm", "mesa_llm.resources",
    "mesa_llm.mechanisms.base",  # the mechanism interface (it imports the actions only)
)  # fmt: skip
#: what the game master must never reach up to
ABOVE_THE_WORLD = ("mesa_llm.model", "mesa_llm.cli", "mesa_llm.replay", "mesa_llm.populations", "mesa_llm.llm_wiring")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _modules() -> dict[str, set[str]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = _imports(path)
    return out


def _hits(imports: set[str], banned: str) -> list[str]:
    return sorted(i for i in imports if i == banned or i.startswith(banned + "."))


def test_only_the_simulation_imports_the_model() -> None:
    modules = _modules()
    assert "mesa_llm.world.resolver" in modules  # the walk found the package
    offenders = {m: _hits(i, "mesa_llm.model") for m, i in modules.items() if m not in MAY_IMPORT_MODEL}
    assert {m: h for m, h in offenders.items() if h} == {}


def test_front_ends_run_through_the_simulation() -> None:
    modules = _modules()
    front = {m for m in modules if any(m == f or m.startswith(f + ".") for f in FRONT_ENDS)}
    drivers = ("mesa_llm.cli", "mesa_llm.replay", "mesa_llm.experiments.worker", "mesa_llm.dashboard.sessions",
               "mesa_llm.server.manager", "mesa_llm.rl.env", "mesa_llm.rl.evaluate")  # fmt: skip
    assert set(drivers) <= front
    for name in drivers:
        assert _hits(modules[name], "mesa_llm.simulation"), name


#: what a `policy: rl` agent (mesa_llm.agents.policies.rl) loads of mesa_llm.rl: the one import from
#: below the front-ends into one, so it must not pull the Simulation, the model or a front-end in
RL_POLICY_LOADS = ("mesa_llm.rl.checkpoint", "mesa_llm.rl.codecs", "mesa_llm.rl._deps")
ABOVE_THE_AGENTS = ("mesa_llm.simulation", "mesa_llm.model", "mesa_llm.cli", "mesa_llm.server", "mesa_llm.replay", "mesa_llm.experiments")


def test_what_an_rl_policy_loads_stays_below_the_front_ends() -> None:
    modules = _modules()
    policy = sorted(i for i in modules["mesa_llm.agents.policies.rl"] if i.startswith("mesa_llm.rl"))
    assert policy and all(any(_hits({i}, m) for m in RL_POLICY_LOADS) for i in policy), policy
    for name in RL_POLICY_LOADS:
        ours = {i for i in modules[name] if i.startswith("mesa_llm.rl")}
        assert all(any(_hits({i}, m) for m in RL_POLICY_LOADS) for i in ours), (name, sorted(ours))
        assert [h for b in ABOVE_THE_AGENTS for h in _hits(modules[name], b)] == [], name


def test_the_world_never_reaches_above_itself() -> None:
    # the mechanisms (call market, desk, plugin interface) are the world's parts too
    world = {
        m: i for m, i in _modules().items() if m.split(".")[:2] in (["mesa_llm", "world"], ["mesa_llm", "mechanisms"])
    }
    assert {"mesa_llm.world.exchange", "mesa_llm.world.desk", "mesa_llm.world.observer"} <= set(world)
    assert {"mesa_llm.mechanisms.base", "mesa_llm.mechanisms.call_market"} <= set(world)
    offenders = {m: [h for b in ABOVE_THE_WORLD for h in _hits(i, b)] for m, i in world.items()}
    assert {m: h for m, h in offenders.items() if h} == {}


def test_the_world_is_handed_its_recorder_and_never_imports_the_recording() -> None:
    # DESIGN.md: the game master is handed the recorder; its parts make events (`mesa_llm.text_batch`) and
    # never import the recording, nor `mesa_llm.record_batch` (which writes through the recorder)
    modules = _modules()
    world = {m: i for m, i in modules.items() if m.split(".")[:2] in (["mesa_llm", "world"], ["mesa_llm", "mechanisms"])}
    assert "mesa_llm.text_batch" in world["mesa_llm.mechanisms.call_market"]  # the walk sees what it hands over
    offenders = {m: _hits(i, "mesa_llm.recording") + _hits(i, "mesa_llm.record_batch") for m, i in world.items()}
    assert {m: h for m, h in offenders.items() if h} == {}
    assert _hits(modules["mesa_llm.text_batch"], "mesa_llm.recording") == []


#: an expression that names a model: ``model``, ``self.model``, ``sim._model``, ``x.mesa_model``
_MODEL_NAME = re.compile(r"^_?(mesa_)?model$")


def _private_reaches(path: Path) -> list[str]:
    """``<model>._attr`` accesses in a module (dunders aside), as ``line: text``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        value = node.value
        name = value.attr if isinstance(value, ast.Attribute) else value.id if isinstance(value, ast.Name) else None
        if name is not None and _MODEL_NAME.match(name):
            out.append((node.lineno, f"{node.lineno}: {ast.unparse(node)}"))
    return [text for _, text in sorted(out)]


def test_nothing_outside_the_model_touches_its_private_attributes() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "model.py" and path.parent == PACKAGE:
            continue
        hits = _private_reaches(path)
        if hits:
            offenders[str(path.relative_to(PACKAGE))] = hits
    assert offenders == {}


def test_the_private_reach_check_sees_reaches(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("a = model._by_id\nb = self._model._llm_header()\nc = sim.mesa_model._x\nd = model.__class__\ne = other._y\n")
    assert _private_reaches(source) == ["1: model._by_id", "2: self._model._llm_header", "3: sim.mesa_model._x"]


def test_the_walk_sees_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mesa_llm.model import MarketModel\n"
        "def f():\n    import mesa_llm.cli\n"
    )
    assert _hits(_imports(source), "mesa_llm.model") == ["mesa_llm.model", "mesa_llm.model.MarketModel"]
    assert _hits(_imports(source), "mesa_llm.cli") == ["mesa_llm.cli"]


def test_plugin_discovery_imports_nothing_above_the_agents() -> None:
    modules = _modules()
    ours = sorted(i for i in modules["mesa_llm.plugins"] if i == "mesa_llm" or i.startswith("mesa_llm."))
    assert "mesa_llm.agents.policies.base" in ours  # the walk sees its (function-local) imports
    assert [i for i in ours if not any(_hits({i}, allowed) for allowed in PLUGINS_MAY_IMPORT)] == []


def test_nothing_of_the_package_imports_its_testing_helpers() -> None:
    # mesa_llm.testing is for the test suites of projects on top (plugins): the product never needs it
    offenders = {
        m: _hits(i, "mesa_llm.testing")
        for m, i in _modules().items()
        if m != "mesa_llm.testing" and not m.startswith("mesa_llm.testing.")
    }
    assert {m: h for m, h in offenders.items() if h} == {}


def test_the_model_stays_the_step_pipeline() -> None:
    """model.py builds the run and steps it; what it records, tallies and schedules lives elsewhere
    (payloads, tallies, timeline, ...). A model growing past 450 lines is taking a job back."""
    lines = (PACKAGE / "model.py").read_text().count("\n")
    assert lines <= 450, f"mesa_llm/model.py has {lines} lines"
