"""`llm.cache` is confined like templates: a folder relative to the scenario's folder, never an
absolute path, a `..` escape or a symlink out of it; the memory cache is bounded (least recently
used entries go first)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm.cache import MemoryCache
from mesa_llm.llm.types import ChatResponse, Usage
from mesa_llm.scenario import ScenarioError, load_scenario
from tests.fake_openai_server import FakeOpenAIServer

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _scenario(folder: Path, cache: str | None, **llm: object) -> Path:
    raw = yaml.safe_load((ROOT / "scenarios" / "llm_double_auction.yaml").read_text(encoding="utf-8"))
    raw["llm"].update({"cache": cache, **llm})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scen.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("cache", "why"),
    [
        ("/tmp/h17d-cache-anywhere", "must be a folder relative to the scenario's folder"),
        ("~/cache", "must be a folder relative to the scenario's folder"),
        ("../outside", "leaves the scenario's folder"),
        ("answers/../../outside", "leaves the scenario's folder"),
    ],
)
def test_a_cache_folder_outside_the_scenario_is_refused_in_one_line(tmp_path, cache, why):
    path = _scenario(tmp_path / "scen", cache)
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "1000"})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "llm.cache" in lines[0] and why in lines[0], lines
    assert not Path("/tmp/h17d-cache-anywhere").exists()


def test_a_symlink_out_of_the_folder_and_a_set_override_are_refused(tmp_path):
    folder = tmp_path / "scen"
    path = _scenario(folder, "link")
    (folder / "link").symlink_to(tmp_path)
    with pytest.raises(ScenarioError, match="llm.cache: 'link' leaves the scenario's folder"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="llm.cache: '/etc' must be a folder relative"):
        load_scenario("llm_double_auction", overrides=["llm.cache=/etc"])
    (folder / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(ScenarioError, match="llm.cache: 'afile' is not a folder"):
        load_scenario(path, overrides=["llm.cache=afile"])


def test_a_relative_cache_lands_in_the_scenario_folder_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    folder = tmp_path / "scen"
    path = _scenario(folder, "answers")
    with FakeOpenAIServer() as server:
        spec = load_scenario(path, overrides=["steps=1", "populations.0.count=1", "populations.1.count=0",
                                               "populations.2.count=0", "populations.3.count=0"])  # fmt: skip
        spec.llm = spec.llm.model_copy(update={"api_base": server.base_url})
        from mesa_llm.model import MarketModel

        model = MarketModel(spec, output_dir=tmp_path / "rec", llm_model="openai/fake-model")
        model.run()
    assert list((folder / "answers").glob("*.json")), "no cache entry in the scenario's folder"
    assert list(elsewhere.iterdir()) == []
    assert load_scenario(path, overrides=["llm.cache=memory"]).llm.cache == "memory"


def _response(i: int) -> ChatResponse:
    return ChatResponse(content=f"answer {i}", tool_calls=[], usage=Usage(1, 1), model="m")


def test_the_memory_cache_evicts_the_least_recently_used():
    cache = MemoryCache(max_entries=3)
    for i in range(3):
        cache.put(f"k{i}", _response(i))
    assert cache.get("k0") is not None  # k0 used: k1 is now the oldest
    cache.put("k3", _response(3))
    assert len(cache) == 3
    assert cache.get("k1") is None
    assert [cache.get(k).content for k in ("k0", "k2", "k3")] == ["answer 0", "answer 2", "answer 3"]  # type: ignore[union-attr]


def test_the_memory_cache_is_bounded_by_default_and_by_size():
    assert 0 < MemoryCache().max_entries <= 100_000
    cache = MemoryCache(max_entries=1000, max_chars=3_000)  # ~1.2 KB an entry: two fit
    big = ChatResponse(content="x" * 900, tool_calls=[], usage=Usage(1, 1), model="m")
    for i in range(10):
        cache.put(f"k{i}", big)
    assert len(cache) == 2 and cache.get("k9") is not None and cache.get("k0") is None
    cache.put("huge", ChatResponse(content="y" * 5_000, tool_calls=[], usage=Usage(1, 1), model="m"))
    assert cache.get("huge") is None and len(cache) == 2  # larger than the whole cache: not kept
