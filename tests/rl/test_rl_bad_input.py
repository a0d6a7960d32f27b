"""Bad input to the learning side is one clear line, never a traceback: an action outside the
space, NaN in a Box action, an unknown agent, a checkpoint whose spaces do not match the scenario
(or its own sidecar), a scenario with no ``policy: rl`` population — and a checkpoint's pickled
entries are never unpickled."""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("MESA_LLM_REQUIRE_RL") != "1":
    pytest.importorskip("pettingzoo")
    pytest.importorskip("stable_baselines3")

from mesa_llm.rl.checkpoint import CheckpointError, load_checkpoint, load_model  # noqa: E402
from mesa_llm.rl.codecs import ActionError  # noqa: E402
from mesa_llm.rl.env import MarketParallelEnv, NoLearnersError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mesa_llm", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    from mesa_llm.rl.train import train

    return Path(train("double_auction", populations=["buyers"], timesteps=512, seed=3, out=out).checkpoint)


@pytest.mark.parametrize("action", [3, -1, 7, 1.5, "buy", [0, 1]])
def test_a_discrete_action_outside_the_space_is_one_line(action: object) -> None:
    env = MarketParallelEnv("double_auction", populations=["buyers"])
    env.reset(seed=1)
    with pytest.raises(ActionError) as info:
        env.step({"buyers_0": 0, "buyers_2": action})
    message = str(info.value)
    assert "\n" not in message and "'buyers_2'" in message and "Discrete(3)" in message
    assert env.simulation is not None and env.simulation.steps == 0  # nothing was applied


def test_a_box_action_with_nan_or_out_of_bounds_is_one_line() -> None:
    env = MarketParallelEnv("double_auction", populations=["sellers"], decoder="box")
    env.reset(seed=1)
    with pytest.raises(ActionError, match=r"agent 'sellers_1': NaN in a Box action"):
        env.step({"sellers_1": np.array([0.5, np.nan, 0.0], dtype=np.float32)})
    with pytest.raises(ActionError, match=r"agent 'sellers_0'.*outside the Box"):
        env.step({"sellers_0": np.array([0.5, 1.01, 0.0], dtype=np.float32)})
    with pytest.raises(ActionError, match=r"not a vector of shape \(3,\)"):
        env.step({"sellers_0": [1.0, 0.0]})
    env.step({"sellers_0": np.array([-1.0, 1.0, 1.0], dtype=np.float32)})  # the bounds themselves are in


def test_an_action_for_an_unknown_agent_is_one_line() -> None:
    env = MarketParallelEnv("double_auction", populations=["buyers"])
    env.reset(seed=1)
    with pytest.raises(ActionError, match=r"unknown agent 'sellers_0'"):
        env.step({"sellers_0": 1})


def test_a_scenario_without_an_rl_population(tmp_path: Path) -> None:
    with pytest.raises(NoLearnersError, match=r"no population with policy: rl"):
        MarketParallelEnv("double_auction")
    with pytest.raises(ValueError, match=r"population 'traders' is not in scenario 'double_auction'"):
        MarketParallelEnv("double_auction", populations=["traders"])
    _one_line_error(_cli("train", "double_auction", "--timesteps", "64", "--out", "x", cwd=tmp_path), "no population with policy: rl", "buyers, sellers")
    assert not (tmp_path / "x").exists()


def test_an_algorithm_that_does_not_fit_the_action_space(tmp_path: Path) -> None:
    _one_line_error(_cli("train", "double_auction", "--population", "buyers", "--algo", "sac", "--timesteps", "64", "--out", "x", cwd=tmp_path), "--decoder box")
    _one_line_error(_cli("train", "double_auction", "--population", "buyers", "--algo", "xgb", "--timesteps", "64", "--out", "x", cwd=tmp_path), "--algo 'xgb'")


def test_a_checkpoint_whose_spaces_do_not_match_the_scenario(trained: Path, tmp_path: Path) -> None:
    # another good: the encoder's good is not traded there
    _one_line_error(_cli("evaluate", str(trained), "--scenario", "financial_market_stress", "--episodes", "1", cwd=tmp_path), "population 'buyers' is not in")
    scenario = tmp_path / "other_good.yaml"
    scenario.write_text(
        "name: other_good\nseed: 1\nsteps: 5\ntick_size: 0.01\n"
        "goods: [{name: stock, reference_price: 100, min_price: 1, max_price: 200}]\n"
        "populations:\n"
        f"  - {{name: buyers, role: buyer, count: 2, policy: rl, params: {{checkpoint: '{trained}'}}, endowment: {{cash: 500}}}}\n"
        "  - {name: sellers, role: seller, count: 2, policy: zi_c, endowment: {holdings: {stock: 3}}}\n",
        encoding="utf-8",
    )
    _one_line_error(_cli("run", str(scenario), "--out", "rec", cwd=tmp_path), "populations.0.params.checkpoint", "good 'widget'", "goods: stock")
    # another role: trained for buyers, used for sellers
    seller = scenario.read_text(encoding="utf-8").replace("stock", "widget").replace(
        "policy: zi_c, endowment: {holdings: {widget: 3}}", f"policy: rl, params: {{checkpoint: '{trained}'}}, endowment: {{holdings: {{widget: 3}}}}"
    )
    scenario.write_text(seller, encoding="utf-8")
    _one_line_error(_cli("validate", str(scenario), cwd=tmp_path), "populations.1.params.checkpoint", "roles ['buyer']", "role 'seller'")
    # a negotiation scenario for a market policy
    with pytest.raises(CheckpointError, match=r"market encoder\) does not match scenario 'bilateral_haggle'"):
        from mesa_llm.rl.evaluate import evaluate

        evaluate(trained, scenario="bilateral_haggle", episodes=1)
    assert not (tmp_path / "rec").exists()


def _copy(trained: Path, folder: Path) -> Path:
    folder.mkdir()
    target = folder / "policy.zip"
    target.write_bytes(trained.read_bytes())
    (folder / "policy.json").write_text(trained.with_suffix(".json").read_text(encoding="utf-8"), encoding="utf-8")
    return target


def test_a_sidecar_that_does_not_match_its_policy(trained: Path, tmp_path: Path) -> None:
    target = _copy(trained, tmp_path / "c")
    side = target.with_suffix(".json")
    data = json.loads(side.read_text(encoding="utf-8"))
    data["encoder"]["roles"] = ["buyer", "seller"]  # one more feature than the network takes
    data["observation_space"]["shape"] = [15]
    side.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"observation shape \[14\] does not match its sidecar's \[15\]"):
        load_checkpoint(target)
    data["observation_space"]["shape"] = [14]
    side.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"its observation space Box\(14,\) does not match the scenario's Box\(15,\)"):
        load_checkpoint(target)
    side.write_text("{not json", encoding="utf-8")
    _one_line_error(_cli("evaluate", str(target), cwd=tmp_path), "is not valid JSON")
    side.unlink()
    _one_line_error(_cli("evaluate", str(target), cwd=tmp_path), "sidecar policy.json is missing")
    _one_line_error(_cli("evaluate", str(tmp_path / "none.zip"), cwd=tmp_path), "no such file")


class _Boom:
    """Unpickling this would create a file: proof that something was unpickled."""

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(Path(os.environ["H21_PROOF"])), "w"))


def test_a_checkpoint_s_pickled_entries_are_never_unpickled(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proof = tmp_path / "unpickled"
    monkeypatch.setenv("H21_PROOF", str(proof))
    target = _copy(trained, tmp_path / "c")
    with zipfile.ZipFile(trained) as src:
        members = {name: src.read(name) for name in src.namelist()}
    data = json.loads(members["data"])
    blob = base64.b64encode(pickle.dumps(_Boom())).decode()
    for key in ("policy_class", "observation_space", "lr_schedule", "an_extra_entry"):
        data[key] = {":type:": "<class 'x'>", ":serialized:": blob}
    data["observation_space"]["_shape"] = [14]
    data["action_space"]["n"] = "3"
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as dst:
        for name, content in members.items():
            dst.writestr(name, content)
    model = load_model(load_checkpoint(target))
    assert not proof.exists()
    action, _ = model.predict(np.zeros(14, dtype=np.float32), deterministic=True)
    assert 0 <= int(action) < 3


def test_an_oversized_or_foreign_zip_is_refused_before_loading(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mesa_llm.rl.checkpoint as checkpoint

    target = _copy(trained, tmp_path / "c")
    size = sum(i.file_size for i in zipfile.ZipFile(target).infolist())
    monkeypatch.setattr(checkpoint, "MAX_ZIP_BYTES", size - 1)
    with pytest.raises(CheckpointError, match=rf"{size:,} bytes uncompressed; at most {size - 1:,}"):
        load_checkpoint(target)
    monkeypatch.setattr(checkpoint, "MAX_ZIP_BYTES", size)
    load_checkpoint(target)  # at the cap: read
    target.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"not a Stable-Baselines3 zip \(BadZipFile\)"):
        load_checkpoint(target)
    with pytest.raises(CheckpointError, match=r"system file under /proc"):
        load_checkpoint("/proc/self/environ.zip")
