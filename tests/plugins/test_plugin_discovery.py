"""Plugin discovery with distributions made on the fly (a ``*.dist-info`` folder and a module in a
temporary folder, found by importlib.metadata like an installed package): laziness, the
allow-list, clashes with built-in names, failures, metric functions that misbehave."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mesa_llm.agents.policies import ZeroIntelligenceConstrained, default_policy_registry
from mesa_llm.analysis import load_recording
from mesa_llm.analysis.metrics import summary_metrics
from mesa_llm.analysis.report import metric_rows
from mesa_llm.model import MarketModel
from mesa_llm.plugin_commands import plugin_report
from mesa_llm.plugins import Plugins, current_plugins, using_plugins
from mesa_llm.scenario import (
    ScenarioError,
    ScenarioSpec,
    load_scenario,
    resolve_scenario_path,
    validate_scenario,
)

ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()

POLICY = '''
from typing import ClassVar
from mesa_llm.actions import Decision
from mesa_llm.agents.policies import DecisionPolicy

class Quiet(DecisionPolicy):
    name: ClassVar[str] = "{name}"
    def decide(self, observation, rng):
        return Decision()
'''

EVENT = '''
from typing import Literal
from pydantic import Field
from mesa_llm.timeline_events import CustomEvent

class Bonus(CustomEvent):
    type: Literal["{name}"]
    amount: float = Field(gt=0)
    def apply(self, ctx):
        return {{}}
'''


def make_distribution(root: Path, entry_points: dict[str, dict[str, str]], source: str = "", *, dist: str | None = None) -> str:
    """A distribution in ``root``: module ``fakeN`` holding ``source`` (``{module}`` in entry point
    values names it) and its entry points; returns the module name."""
    module = f"fake_plugin_{next(_counter)}_{os.getpid()}"
    dist = dist or module.replace("_", "-")
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value.format(module=module)}" for name, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return module


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))  # the fake modules import from here
    return root


def _spec(small: dict[str, Any], **changes: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(small))
    raw.update(changes)
    return raw


SMALL: dict[str, Any] = {
    "name": "tiny",
    "seed": 1,
    "steps": 3,
    "goods": [{"name": "widget", "reference_price": 100.0}],
    "populations": [
        {"name": "buyers", "role": "buyer", "count": 2, "private": {"widget": {"values": 150.0}}, "endowment": {"cash": 500.0}},
        {"name": "sellers", "role": "seller", "count": 2, "private": {"widget": {"costs": 50.0}}, "endowment": {"holdings": {"widget": 1}}},
    ],
}


def test_nothing_is_discovered_or_imported_until_needed(plugin_root: Path) -> None:
    module = make_distribution(plugin_root, {"mesa_llm.policies": {"quiet_one": "{module}:Quiet"}}, POLICY.format(name="quiet_one"))
    code = (
        "import sys\n"
        "import mesa_llm, mesa_llm.cli, mesa_llm.model, mesa_llm.scenario, mesa_llm.analysis\n"
        "import mesa_llm.plugins as plugins\n"
        "listed = lambda: sorted(g for p in plugins._cached.values() for g in p._entries)\n"
        f"print(listed(), {module!r} in sys.modules)\n"
        "from mesa_llm.agents.policies import default_policy_registry\n"
        "registry = default_policy_registry()\n"
        f"print(listed(), {module!r} in sys.modules)\n"
        "print('quiet_one' in registry, " + repr(module) + " in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugin_root)])}
    env.pop("MESA_LLM_PLUGINS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split("\n")
    # nothing listed at import; the policies listed on first need; the plugin imported on first use
    assert out[:3] == ["[] False", "['policies'] False", "True True"]


def test_the_allow_list_reads_distribution_names_as_pip_does() -> None:
    assert Plugins.from_environment({}).enabled and Plugins.from_environment({}).allow is None
    none = Plugins.from_environment({"MESA_LLM_PLUGINS": " "})
    assert not none.enabled and not none.allowed("anything")
    some = Plugins.from_environment({"MESA_LLM_PLUGINS": "My_Plugin, other.thing,"})
    assert some.allowed("my-plugin") and some.allowed("Other-Thing") and not some.allowed("mesa-llm-sample-plugin")


def test_a_plugin_policy_is_usable_by_name_and_hidden_when_not_allowed(plugin_root: Path, tmp_path: Path) -> None:
    module = make_distribution(plugin_root, {"mesa_llm.policies": {"quiet_two": "{module}:Quiet"}}, POLICY.format(name="quiet_two"))
    raw = _spec(SMALL)
    raw["populations"][0]["policy"] = "quiet_two"
    with using_plugins(Plugins(path=[str(plugin_root)])):
        spec = validate_scenario(raw)
        model = MarketModel(spec, output_dir=tmp_path)
        assert {type(a.policy).__module__ for a in model.populations["buyers"]} == {module}
        model.run()
        header = json.loads(Path(model.recording_path).read_text().splitlines()[0])["content"]
        assert header["plugins"] == [
            {"group": "mesa_llm.policies", "name": "quiet_two", "distribution": module.replace("_", "-"), "version": "1.0"}
        ]
    for hidden in (Plugins(path=[str(plugin_root)], enabled=False), Plugins(path=[str(plugin_root)], allow=["someone-else"])):
        with using_plugins(hidden), pytest.raises(ScenarioError, match="populations.0.policy: unknown policy 'quiet_two'"):
            validate_scenario(raw)


def test_names_that_clash_with_built_ins_are_refused_with_a_clear_message(plugin_root: Path) -> None:
    folder = plugin_root / "clash_scenarios"
    folder.mkdir()
    (folder / "double_auction.yaml").write_text("name: x\n", encoding="utf-8")
    source = POLICY.format(name="zi_c") + EVENT.format(name="endow") + f"\nFOLDER = {str(folder)!r}\n"
    make_distribution(
        plugin_root,
        {
            "mesa_llm.policies": {"zi_c": "{module}:Quiet"},
            "mesa_llm.events": {"endow": "{module}:Bonus"},
            "mesa_llm.scenarios": {"clashing": "{module}:FOLDER"},
        },
        source,
        dist="clash-plugin",
    )
    plugins = Plugins(path=[str(plugin_root)])
    with using_plugins(plugins):
        # the built-ins keep their names
        assert default_policy_registry().get("zi_c") is ZeroIntelligenceConstrained
        assert resolve_scenario_path("double_auction").parent.name == "scenarios"
        rows = {r["group"]: r for r in plugin_report(plugins)}
    assert {g: (r["status"], r["reason"]) for g, r in rows.items()} == {
        "mesa_llm.policies": ("refused", "policy 'zi_c' clashes with a built-in policy; rename it in the plugin"),
        "mesa_llm.events": ("refused", "event type 'endow' clashes with a built-in event type; rename it in the plugin"),
        "mesa_llm.scenarios": ("refused", "scenario 'double_auction' clashes with a built-in scenario; rename it in the plugin"),
    }
    # and through the real command
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugin_root)])}
    env.pop("MESA_LLM_PLUGINS", None)
    listed = subprocess.run([sys.executable, "-m", "mesa_llm", "plugins", "--json"], capture_output=True, text=True, env=env, check=True)
    clash = [r for r in json.loads(listed.stdout) if r["distribution"] == "clash-plugin"]
    assert [r["status"] for r in clash] == ["refused"] * 3


def test_two_plugins_with_one_name_the_second_is_refused(plugin_root: Path) -> None:
    first = make_distribution(plugin_root, {"mesa_llm.policies": {"quiet_three": "{module}:Quiet"}}, POLICY.format(name="quiet_three"), dist="aaa-plugin")
    make_distribution(plugin_root, {"mesa_llm.policies": {"quiet_three": "{module}:Quiet"}}, POLICY.format(name="quiet_three"), dist="bbb-plugin")
    plugins = Plugins(path=[str(plugin_root)])
    with using_plugins(plugins):
        assert default_policy_registry().get("quiet_three").__module__ == first
    rows = plugin_report(plugins)
    assert [(r["distribution"], r["status"], r["reason"]) for r in rows] == [
        ("aaa-plugin", "loaded", None),
        ("bbb-plugin", "refused", "policy 'quiet_three' is also provided by aaa-plugin 1.0"),
    ]


@pytest.mark.parametrize(
    ("source", "value", "reason"),
    [
        ("raise ImportError('needs a library that is missing')\n", "{module}:Quiet", "ImportError: needs a library that is missing"),
        (POLICY.format(name="other_name"), "{module}:Quiet", "Quiet.name is 'other_name', not the entry point's name 'quiet_four'"),
        ("X = 3\n", "{module}:X", "expected a DecisionPolicy subclass, got int 3"),
        ("import sys\nsys.exit(3)\n", "{module}:Quiet", "SystemExit: 3"),
    ],
)
def test_a_policy_that_cannot_load_is_one_line_where_it_is_used(plugin_root: Path, source: str, value: str, reason: str) -> None:
    make_distribution(plugin_root, {"mesa_llm.policies": {"quiet_four": value}}, source, dist="bad-policy")
    raw = _spec(SMALL)
    raw["populations"][1]["policy"] = "quiet_four"
    plugins = Plugins(path=[str(plugin_root)])
    with using_plugins(plugins):
        validate_scenario(_spec(SMALL))  # a scenario that does not use it is unaffected
        with pytest.raises(ScenarioError) as info:
            validate_scenario(raw, source="s.yaml")
    assert str(info.value) == (
        f"s.yaml: populations.1.policy: policy 'quiet_four' cannot be used: plugin policy 'quiet_four' (bad-policy 1.0) failed: {reason}"
    )
    assert [(r["status"], r["reason"]) for r in plugin_report(plugins)] == [("failed", reason)]


def test_plugin_event_types_validate_with_their_class_and_unknown_types_list_the_known(plugin_root: Path) -> None:
    make_distribution(plugin_root, {"mesa_llm.events": {"bonus_one": "{module}:Bonus"}}, EVENT.format(name="bonus_one"))
    with using_plugins(Plugins(path=[str(plugin_root)])):
        raw = _spec(SMALL, timeline=[{"type": "bonus_one", "at_step": 2, "amount": 5, "populations": ["buyers"]}])
        spec = validate_scenario(raw)
        assert type(spec.timeline[0]).__name__ == "Bonus"
        # serialised with its own fields, and read back (a recording's header, the dashboard's copies)
        dumped = spec.model_dump(mode="json")["timeline"]
        assert dumped == [{"type": "bonus_one", "at_step": 2, "populations": ["buyers"], "description": "", "amount": 5.0}]
        assert ScenarioSpec.model_validate(spec.model_dump(mode="json")).timeline == spec.timeline
        for event, problem in (
            ({"type": "bonus_one", "at_step": 2, "amount": -1}, "timeline.0.amount: Input should be greater than 0"),
            ({"type": "bonus_one", "at_step": 2, "amount": 1, "oops": 1}, "timeline.0.oops: unknown field"),
            ({"type": "bonus_one", "at_step": 2, "amount": 1, "populations": ["nobody"]}, "(top level): timeline.0.populations: unknown population 'nobody'"),
            ({"type": "meteor", "at_step": 2}, "timeline.0: unknown event type 'meteor'; known types: bonus_one, endow, flash_crash, liquidity_shock, set_params, shift_private, volatility_spike"),
            ({"type": "endow", "at_step": 2, "cash": "x"}, "timeline.0.endow.cash: Input should be a valid number"),
        ):
            with pytest.raises(ScenarioError) as info:
                validate_scenario(_spec(SMALL, timeline=[event]), source="s.yaml")
            assert str(info.value).startswith(f"s.yaml: {problem}")
    with using_plugins(Plugins(enabled=False)), pytest.raises(ScenarioError, match="unknown event type 'bonus_one'; known types: endow, flash_crash"):
        validate_scenario(_spec(SMALL, timeline=[{"type": "bonus_one", "at_step": 2, "amount": 5}]))


def test_plugin_scenarios_run_by_name_and_their_includes_stay_in_their_folder(plugin_root: Path, tmp_path: Path) -> None:
    folder = plugin_root / "my_scenarios"
    (folder / "personas").mkdir(parents=True)
    raw = _spec(SMALL, name="from_plugin")
    raw["populations"][1] = {"include": "personas/sellers.yaml"}
    (folder / "from_plugin.yaml").write_text(json.dumps(raw), encoding="utf-8")
    (folder / "personas" / "sellers.yaml").write_text(json.dumps(SMALL["populations"][1]), encoding="utf-8")
    (folder / "escaping.yaml").write_text(json.dumps({**raw, "populations": [{"include": "../outside.yaml"}]}), encoding="utf-8")
    (plugin_root / "outside.yaml").write_text(json.dumps(SMALL["populations"][1]), encoding="utf-8")
    make_distribution(plugin_root, {"mesa_llm.scenarios": {"mine": "{module}:FOLDER"}}, f"FOLDER = {str(folder)!r}\n", dist="scenario-plugin")
    with using_plugins(Plugins(path=[str(plugin_root)])):
        spec = load_scenario("from_plugin")
        assert spec.source_dir == folder.resolve() and spec.populations[1].label == "sellers"
        with pytest.raises(ScenarioError, match="populations.0.include: '../outside.yaml' leaves the scenario's folder"):
            load_scenario("escaping")
    with using_plugins(Plugins(enabled=False)), pytest.raises(ScenarioError, match="no such scenario file or shipped scenario.*plugins are disabled"):
        load_scenario("from_plugin")


def test_a_metric_that_fails_is_one_line_and_none_never_a_crash(plugin_root: Path, tmp_path: Path) -> None:
    source = '''
    def good(rec):
        return {"trades": len(rec.trades), "flag": True, "nan": float("nan")}

    def broken(rec):
        return 1 / 0

    def wrong(rec):
        return [1, 2]

    def text(rec):
        return {"value": "high"}
    '''
    make_distribution(
        plugin_root,
        {"mesa_llm.metrics": {"m_good": "{module}:good", "m_broken": "{module}:broken", "m_wrong": "{module}:wrong", "m_text": "{module}:text", "m_gone": "{module}:missing"}},
        source,
        dist="metric-plugin",
    )
    with using_plugins(Plugins(enabled=False)):
        model = MarketModel(validate_scenario(_spec(SMALL)), output_dir=tmp_path)
        model.run()
        assert "plugins" not in summary_metrics(load_recording(model.recording_path))
    rec = load_recording(model.recording_path)
    with using_plugins(Plugins(path=[str(plugin_root)])):
        metrics = summary_metrics(rec)
    assert metrics["plugins"] == {
        "m_broken": None,
        "m_gone": None,
        "m_good": {"trades": len(rec.trades), "flag": 1, "nan": None},
        "m_text": None,
        "m_wrong": None,
    }
    assert metrics["plugin_errors"] == [
        "plugin metric 'm_broken' (metric-plugin 1.0) failed: ZeroDivisionError: division by zero",
        f"plugin metric 'm_gone' (metric-plugin 1.0) failed: AttributeError: module '{_module_of(plugin_root, 'metric')}' has no attribute 'missing'",
        "plugin metric 'm_text' (metric-plugin 1.0) failed: ValueError: 'value' is str, not a number or None",
        "plugin metric 'm_wrong' (metric-plugin 1.0) failed: ValueError: returned list, not a dict of named numbers",
    ]
    rows = {key: value for key, _, value in metric_rows(metrics)}
    assert rows["plugins.m_good.trades"] == str(len(rec.trades)) and rows["plugins.m_broken"] == "n/a"


def _module_of(root: Path, dist_part: str) -> str:
    info = next(root.glob(f"{dist_part}_plugin-1.0.dist-info"))
    text = (info / "entry_points.txt").read_text()
    return text.split("= ", 1)[1].split(":", 1)[0]


def test_the_process_plugins_follow_the_environment_and_using_plugins_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESA_LLM_PLUGINS", "")
    assert not current_plugins().enabled
    monkeypatch.setenv("MESA_LLM_PLUGINS", "x-plugin")
    assert current_plugins().allow == frozenset({"x-plugin"})
    inner = Plugins(enabled=False)
    with using_plugins(inner):
        assert current_plugins() is inner
    assert current_plugins() is not inner and current_plugins().allowed("x-plugin")


def test_the_live_dashboard_injects_a_plugin_event_of_the_scenario(plugin_root: Path, tmp_path: Path) -> None:
    from mesa_llm.dashboard.sessions import LiveSession

    make_distribution(plugin_root, {"mesa_llm.events": {"bonus_two": "{module}:Bonus"}}, EVENT.format(name="bonus_two"))
    with using_plugins(Plugins(path=[str(plugin_root)])):
        spec = validate_scenario(_spec(SMALL, timeline=[{"type": "bonus_two", "at_step": 3, "amount": 5, "description": "a bonus"}]))
        live = LiveSession(spec, output_dir=tmp_path)
        assert live.step()
        label = next(k for k in live.stress_presets() if k.startswith("bonus_two"))
        assert live.inject(label) == "bonus_two at step 2"
        assert type(live.model.scenario.timeline[-1]).__name__ == "Bonus"
        assert live.step()
        live.close()
