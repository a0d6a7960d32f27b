"""The installed test plugins end to end, through the real CLI: tests/plugins/sample_plugin (one
entry point in each group) and tests/plugins/broken_plugin (every entry point fails to import).

.ci/run installs both (pip install -e) and sets MESA_LLM_REQUIRE_PLUGINS=1, so there a missing
install fails; elsewhere these tests skip without them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from mesa_llm.analysis import load_recording
from mesa_llm.cli import app
from mesa_llm.model import MarketModel
from mesa_llm.plugins import Plugins, using_plugins
from mesa_llm.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "mesa-llm-sample-plugin"
BROKEN = "mesa-llm-broken-plugin"
GROUPS = ("mesa_llm.scenarios", "mesa_llm.policies", "mesa_llm.metrics", "mesa_llm.events")


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(autouse=True, scope="module")
def _plugins_installed() -> None:
    missing = [d for d in (SAMPLE, BROKEN) if not _installed(d)]
    if not missing:
        return
    hint = "pip install -e tests/plugins/sample_plugin -e tests/plugins/broken_plugin"
    if os.environ.get("MESA_LLM_REQUIRE_PLUGINS") == "1":
        pytest.fail(f"MESA_LLM_REQUIRE_PLUGINS=1 but {', '.join(missing)} not installed: {hint}")
    pytest.skip(f"{', '.join(missing)} not installed ({hint})")


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m mesa_llm ARGS`` with this checkout's code; MESA_LLM_PLUGINS only as given."""
    environ = {k: v for k, v in os.environ.items() if k != "MESA_LLM_PLUGINS"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ["COLUMNS"] = "200"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=600
    )


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _invoke(*args: str, env: dict[str, str] | None = None) -> _Result:
    """The CLI in this process (quicker than a subprocess); MESA_LLM_PLUGINS only as given."""
    environ: dict[str, str | None] = {"MESA_LLM_PLUGINS": None, "COLUMNS": "200"}
    environ.update(env or {})
    result = CliRunner().invoke(app, list(args), env=environ)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return _Result(result.exit_code, result.stdout, result.stderr)


def _events(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """``mesa-llm run sample_market --json`` (the plugin's scenario, by name, from another folder)."""
    folder = tmp_path_factory.mktemp("sample_run")
    result = _cli("run", "sample_market", "--json", "--out", str(folder / "rec"), cwd=folder)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    return summary, _events(summary["recording"]), folder


def test_plugins_json_lists_every_group_with_distribution_version_and_status() -> None:
    result = _cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    sample = {r["group"]: r for r in rows if r["distribution"] == SAMPLE}
    assert set(sample) == set(GROUPS)
    version = metadata.version(SAMPLE)
    assert {(r["name"], r["version"], r["status"], r["reason"]) for r in sample.values()} == {
        ("sample_scenarios", version, "loaded", None),
        ("sample_reference_trader", version, "loaded", None),
        ("sample_trades_per_step", version, "loaded", None),
        ("sample_cash_grant", version, "loaded", None),
    }
    broken = [r for r in rows if r["distribution"] == BROKEN]
    assert {r["group"] for r in broken} == {"mesa_llm.scenarios", "mesa_llm.policies", "mesa_llm.events"}
    for row in broken:  # listed as failed, with a one-line reason
        assert row["status"] == "failed"
        assert row["reason"].startswith("RuntimeError: mesa_llm_broken_plugin fails to import")
        assert "\n" not in row["reason"]
    table = _cli("plugins")
    assert table.returncode == 0
    assert f"{SAMPLE}=={version}" in table.stdout
    assert "failed: mesa_llm.policies 'broken_policy'" in table.stdout


def test_the_plugin_scenario_runs_by_name_and_its_policy_acts(sample_run) -> None:
    summary, events, _ = sample_run
    header = events[0]["content"]
    assert summary["scenario"] == "sample_market" and events[-1]["content"]["status"] == "completed"
    buyers = {a["agent_id"] for a in header["agents"] if a["population"] == "buyers"}
    assert {a["policy"] for a in header["agents"] if a["population"] == "buyers"} == {"sample_reference_trader"}
    # the persona file the scenario includes (relative to the plugin's folder) made the sellers
    assert {a["policy"] for a in header["agents"] if a["population"] == "sellers"} == {"zi_c"}
    bids = [e for e in events if e["event_type"] == "order" and e["agent_id"] in buyers]
    assert bids and {e["content"]["price"] for e in bids} == {100.0}  # the reference price, as the policy says
    assert {e["content"]["side"] for e in bids} == {"buy"}
    assert summary["trades"] > 0


def test_the_recording_header_names_the_plugins_the_run_used(sample_run) -> None:
    _, events, _ = sample_run
    version = metadata.version(SAMPLE)
    assert sorted(events[0]["content"]["plugins"], key=lambda p: p["group"]) == [
        {"group": "mesa_llm.events", "name": "sample_cash_grant", "distribution": SAMPLE, "version": version},
        {"group": "mesa_llm.policies", "name": "sample_reference_trader", "distribution": SAMPLE, "version": version},
        {"group": "mesa_llm.scenarios", "name": "sample_scenarios", "distribution": SAMPLE, "version": version},
    ]


def test_a_run_without_plugins_has_an_empty_plugin_list(tmp_path: Path) -> None:
    result = _cli("run", "double_auction", "--steps", "2", "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert _events(json.loads(result.stdout)["recording"])[0]["content"]["plugins"] == []


def test_scenarios_lists_the_plugin_scenario_with_its_plugin() -> None:
    result = _cli("scenarios")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "sample_market" in line)
    assert f"{SAMPLE} {metadata.version(SAMPLE)}" in line
    assert "double_auction" in result.stdout
    assert "plugin scenarios 'broken_scenarios' (mesa-llm-broken-plugin" in result.stderr  # one note, no traceback
    assert "Traceback" not in result.stderr


def test_the_plugin_event_issues_cash_through_the_ledger(tmp_path: Path) -> None:
    with using_plugins(Plugins()):
        spec = load_scenario("sample_market")
        model = MarketModel(spec, output_dir=tmp_path, check_invariants=True)
        ledger = model.exchange.ledger
        issued, buyers = ledger.issued_cash, model.populations["buyers"]
        cash = {a.unique_id: ledger.account(a.unique_id).cash for a in buyers}
        model.run()
    grant_ticks = model.money.to_ticks(50.0)
    assert ledger.issued_cash == issued + 3 * grant_ticks  # issued, not taken from anyone
    events = _events(model.recording_path)
    grant = [e for e in events if e["event_type"] == "scheduled_event"]
    assert [(e["step"], e["content"]["event"]["type"]) for e in grant] == [(3, "sample_cash_grant")]
    assert grant[0]["content"]["agents_affected"] == 3 and grant[0]["content"]["cash_per_agent"] == 50.0
    spent = {a.unique_id: 0 for a in buyers}  # each buyer's cash: endowment + grant - what it paid
    for e in events:
        if e["event_type"] == "trade" and e["content"]["buyer_id"] in spent:
            c = e["content"]
            spent[c["buyer_id"]] += model.money.to_ticks(c["price"]) * c["quantity"] + model.money.to_ticks(c["buyer_fee"])
    for agent in buyers:
        assert ledger.account(agent.unique_id).cash == cash[agent.unique_id] + grant_ticks - spent[agent.unique_id]
    ledger.check_invariants()


def test_the_plugin_metric_is_in_analyze(sample_run) -> None:
    summary, events, folder = sample_run
    result = _invoke("analyze", summary["recording"], "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    trades = [e for e in events if e["event_type"] == "trade"]
    per_step = pd.Series([e["step"] for e in trades]).value_counts()
    assert metrics["plugins"]["sample_trades_per_step"] == {"mean": len(trades) / 6, "max": int(per_step.max())}
    assert "plugin_errors" not in metrics
    table = _invoke("analyze", summary["recording"])
    assert "sample_trades_per_step: mean (plugin)" in table.stdout
    report = folder / "report.html"
    assert _invoke("analyze", summary["recording"], "--html", str(report)).returncode == 0
    assert "sample_trades_per_step: max (plugin)" in report.read_text(encoding="utf-8")


def test_the_plugin_metric_is_a_sweep_column(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "name: plugin_sweep\nscenario: sample_market\nreplicates: 2\nseed: 3\nsteps: 4\n"
        "metrics: [trades]\n",
        encoding="utf-8",
    )
    result = _cli("sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(table["status"]) == ["ok", "ok"]
    for _, row in table.iterrows():  # the column holds each run's own value
        rec = load_recording(tmp_path / "out" / row["recording"])
        per_step = rec.trades.groupby("step").size()
        assert row["plugins.sample_trades_per_step.mean"] == pytest.approx(len(rec.trades) / 4)
        assert row["plugins.sample_trades_per_step.max"] == int(per_step.max())
        assert row["trades"] == len(rec.trades)


def test_the_allow_list_and_no_plugins_hide_them(tmp_path: Path) -> None:
    only_broken = json.loads(_cli("plugins", "--json", env={"MESA_LLM_PLUGINS": "mesa_llm_broken_plugin"}).stdout)
    assert only_broken and {r["distribution"] for r in only_broken} == {BROKEN}
    assert json.loads(_invoke("plugins", "--json", env={"MESA_LLM_PLUGINS": ""}).stdout) == []
    disabled = _invoke("--no-plugins", "plugins", "--json")
    assert json.loads(disabled.stdout) == []
    assert "plugins are disabled" in disabled.stderr
    for args, env in (
        (["--no-plugins", "run", "sample_market"], None),
        (["run", "sample_market"], {"MESA_LLM_PLUGINS": BROKEN}),
    ):
        result = _invoke(*args, "--out", str(tmp_path), env=env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "sample_market: no such scenario file or shipped scenario" in lines[0]
    assert not list(tmp_path.iterdir())
    allowed = _invoke("run", "sample_market", "--steps", "2", "--out", str(tmp_path), env={"MESA_LLM_PLUGINS": f" {SAMPLE} ,other"})
    assert allowed.returncode == 0, allowed.stderr
    # --no-plugins held for that command only: the next one has its plugins back
    assert any(r["distribution"] == SAMPLE for r in json.loads(_invoke("plugins", "--json").stdout))


def test_the_broken_plugin_breaks_no_command_that_does_not_use_it(tmp_path: Path) -> None:
    result = _cli("run", "double_auction", "--steps", "3", "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 3
    assert result.stderr == ""
    assert _invoke("validate", "double_auction").returncode == 0
    # a scenario that does use it: one line naming the plugin and why
    scenario = tmp_path / "uses_broken.yaml"
    scenario.write_text(
        load_scenario("double_auction").model_dump_json().replace('"zi_c"', '"broken_policy"', 1), encoding="utf-8"
    )
    used = _invoke("validate", str(scenario))
    assert used.returncode == 2
    assert used.stderr.count("\n") == 1, used.stderr
    assert "populations.0.policy: policy 'broken_policy' cannot be used: plugin policy 'broken_policy' " in used.stderr
    assert f"({BROKEN} 0.1.0) failed: RuntimeError: mesa_llm_broken_plugin fails to import" in used.stderr


def test_a_replay_that_misses_a_plugin_says_which(sample_run, tmp_path: Path) -> None:
    summary, events, _ = sample_run
    replayed = _invoke("replay", summary["recording"], "--verify", "--out", str(tmp_path))
    assert replayed.returncode == 0, replayed.stderr
    refused = _invoke("--no-plugins", "replay", summary["recording"], "--verify", "--out", str(tmp_path / "no"))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert (
        f"the recording needs plugin {SAMPLE} 0.1.0 (policy 'sample_reference_trader', event type "
        "'sample_cash_grant'), which is installed but not allowed here" in refused.stderr
    )
    # a recording made with a distribution that is not installed here
    header = json.loads(json.dumps(events[0]))
    for plugin in header["content"]["plugins"]:
        plugin["distribution"], plugin["version"] = "mesa-llm-gone", "2.0"
    gone = tmp_path / "gone.jsonl"
    gone.write_text("\n".join(json.dumps(e) for e in [header, *events[1:]]) + "\n", encoding="utf-8")
    missing = _invoke("replay", str(gone), "--out", str(tmp_path / "gone"))
    assert missing.returncode == 2
    assert "needs plugin mesa-llm-gone 2.0 (policy 'sample_reference_trader', event type 'sample_cash_grant'), which is not installed" in missing.stderr
