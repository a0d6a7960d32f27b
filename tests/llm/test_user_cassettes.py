"""``mesa_llm.testing`` gives users cassette tests: ``use_cassette(path, mode)`` records to the file
they choose and replays it offline, credentials filtered out; the fake OpenAI-compatible server is
installed with the package; importing ``mesa_llm.testing`` does not import vcrpy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import litellm
import pytest

from mesa_llm.llm.errors import classify
from mesa_llm.testing import RECORD_MODES, FakeOpenAIServer, use_cassette

KEY = "sk-usercassettesecret0123456789"
ROOT = Path(__file__).resolve().parents[2]


def _ask(base: str, text: str) -> str:
    response = litellm.completion(
        model="openai/fake-model", api_base=base, api_key=KEY, messages=[{"role": "user", "content": text}]
    )
    return str(response.choices[0].message.content)


def test_a_cassette_goes_where_the_user_says_and_replays_offline(tmp_path: Path) -> None:
    path = tmp_path / "mine" / "deep" / "persona.yaml"
    with FakeOpenAIServer() as server, use_cassette(path, mode="once") as cassette:
        first = _ask(server.base_url, "hello")
        assert server.request_count == 1
    assert path.is_file() and len(cassette) == 1
    text = path.read_text()
    assert KEY not in text and "authorization" not in text.lower() and "api-key" not in text.lower()
    assert not (ROOT / "tests" / "cassettes" / "persona.yaml").exists()
    # replayed with no server at all (the port is closed now): same answer, no network
    with use_cassette(path, mode="none") as replayed:
        assert _ask(server.base_url, "hello") == first
        assert replayed.play_count == 1
    # a request the cassette does not hold fails at once in mode none
    with use_cassette(path, mode="none"), pytest.raises(Exception) as info:
        _ask(server.base_url, "something else")
    assert classify(info.value, "openai/fake-model").kind == "cache_miss"  # vcrpy refused, no network


def test_once_keeps_an_existing_cassette_and_all_records_again(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with FakeOpenAIServer() as server:
        with use_cassette(path, mode="once"):
            _ask(server.base_url, "one")
        with use_cassette(path, mode="once"):
            _ask(server.base_url, "one")
        assert server.request_count == 1  # replayed, not asked again
        with use_cassette(path, mode="all"):
            _ask(server.base_url, "one")
        assert server.request_count == 2
        with use_cassette(path, mode="new_episodes") as cassette:
            _ask(server.base_url, "two")
        assert server.request_count == 3 and len(cassette) == 2


def test_bad_modes_and_missing_cassettes_are_one_line(tmp_path: Path) -> None:
    assert RECORD_MODES == ("none", "once", "new_episodes", "all")
    with pytest.raises(ValueError, match="mode 'sometimes'"), use_cassette(tmp_path / "x.yaml", mode="sometimes"):
        pass
    with pytest.raises(FileNotFoundError, match="x.yaml does not exist"), use_cassette(tmp_path / "x.yaml", mode="none"):
        pass
    assert not (tmp_path / "x.yaml").exists()


def test_the_package_imports_no_vcrpy_and_the_old_test_import_still_works() -> None:
    code = (
        "import sys, mesa_llm.testing as t; from tests.fake_openai_server import FakeOpenAIServer as F; "
        "assert F is t.FakeOpenAIServer; print('vcr' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
