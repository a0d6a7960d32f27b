"""Hosts get keys only by consent (issue 17, finding 3): a provider key goes to the provider's own
host, to an ``api_base`` the user gave on the command line, or to one listed in
``MESA_LLM_ALLOWED_API_BASES`` — never to one that a scenario file, a ``--set``, a sweep spec's
factors or conditions named. Such an api_base gets its calls without the key (local servers need
none) and one line says how to allow it; a provider that would read other credentials from the
environment is refused.

Every server here records the headers it was sent; the key must be in none unless consented.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from tests.fake_openai_server import FakeOpenAIServer

runner = CliRunner()
ALLOWED_API_BASES_ENV = "MESA_LLM_ALLOWED_API_BASES"  # the documented name (README, mesa_llm.llm.consent)
KEY = "sk-consent-test-key-0123456789"
#: a key of no known shape, for the non-OpenAI providers
OTHER_KEY = "plain-other-provider-secret-77"
FAST = ["--steps", "1", "--set", "llm.max_attempts=1", "--set", "populations.0.count=1", "--set", "populations.1.count=1"]


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    if not request.get("tools"):
        return {"content": "Trade near my values."}
    return {"content": None, "tool_calls": [{"name": "wait", "arguments": "{}"}]}


def _scenario(folder: Path, api_base: str) -> Path:
    """llm_double_auction with one LLM buyer and seller, whose file names ``llm.api_base``."""
    from mesa_llm.scenario import load_scenario

    raw = load_scenario("llm_double_auction").model_dump(mode="json", exclude={"source_dir"})
    raw["llm"]["api_base"] = api_base
    path = folder / "shared_scenario.yaml"
    path.write_text(json.dumps(raw))
    return path


def _keys_seen(server: FakeOpenAIServer) -> list[str]:
    return [h.get("authorization", "") for h in server.request_headers]


def _env(**extra: str) -> dict[str, str | None]:
    return {"OPENAI_API_KEY": KEY, "COLUMNS": "400", ALLOWED_API_BASES_ENV: None, **extra}


def _run(args: list[str], env: dict[str, str | None]) -> Any:
    return runner.invoke(app, ["run", *args, "--model", "openai/fake-model", *FAST], env=env)


# ------------------------------------------------------------------------------------ the CLI


def test_an_api_base_a_scenario_names_gets_no_key_and_one_line_says_how_to_allow_it(tmp_path):
    with FakeOpenAIServer(responder=_answer) as server:
        result = _run([str(_scenario(tmp_path, server.base_url)), "--out", str(tmp_path / "rec")], _env())
        seen = _keys_seen(server)
    assert result.exit_code == 0, result.output
    assert seen, "no call reached the scenario's server"  # calls still go there ...
    assert all(KEY not in h for h in seen), seen  # ... without the key
    said = [line for line in result.stderr.splitlines() if ALLOWED_API_BASES_ENV in line]
    assert len(said) == 1 and "--api-base" in said[0] and server.base_url in said[0]
    assert KEY not in result.output


def test_an_api_base_given_with_set_gets_no_key(tmp_path):
    with FakeOpenAIServer(responder=_answer) as server:
        result = _run(["llm_double_auction", "--set", f"llm.api_base={server.base_url}", "--out", str(tmp_path)], _env())
        seen = _keys_seen(server)
    assert result.exit_code == 0, result.output
    assert seen and all(KEY not in h for h in seen), seen


def test_api_base_on_the_command_line_gets_the_key(tmp_path):
    with FakeOpenAIServer(responder=_answer) as server:
        # the scenario names another server: the command line wins, and is the user's choice
        scenario = _scenario(tmp_path, "http://127.0.0.1:9/v1")
        result = _run([str(scenario), "--api-base", server.base_url, "--out", str(tmp_path / "rec")], _env())
        seen = _keys_seen(server)
    assert result.exit_code == 0, result.output
    assert seen and all(h == f"Bearer {KEY}" for h in seen)
    assert ALLOWED_API_BASES_ENV not in result.output


@pytest.mark.parametrize(
    ("entry", "allowed"),
    [
        ("{base}", True),
        ("{root}", True),  # the whole server
        ("{root}/", True),
        ("{root}/v1/", True),
        ("{root}/v2", False),  # another path
        ("{root}/v", False),  # a prefix of a segment is not a path prefix
        ("http://localhost:1/v1", False),  # another port
        ("https://{host}", False),  # another scheme
    ],
)
def test_the_allow_list_sends_the_key_to_the_servers_it_lists(tmp_path, entry, allowed):
    with FakeOpenAIServer(responder=_answer) as server:
        root = server.base_url.rsplit("/v1", 1)[0]
        host = root.split("://", 1)[1]
        listed = entry.format(base=server.base_url, root=root, host=host)
        env = _env(**{ALLOWED_API_BASES_ENV: f"https://example.invalid/x, {listed}"})
        result = _run([str(_scenario(tmp_path, server.base_url)), "--out", str(tmp_path / "rec")], env)
        seen = _keys_seen(server)
    assert result.exit_code == 0, result.output
    assert seen and all((h == f"Bearer {KEY}") == allowed for h in seen), (listed, seen)


class _Listener:
    """Answers 401 to anything and records each request's path and headers (any provider's shape)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = b'{"error": {"message": "no", "type": "authentication_error"}}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
        ("gemini/gemini-1.5-flash", "GEMINI_API_KEY"),
        ("claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),  # no prefix: litellm still picks Anthropic
    ],
)
def test_a_provider_that_reads_its_own_key_is_refused_at_a_scenario_api_base(tmp_path, model, variable):
    with _Listener() as listener:
        scenario = _scenario(tmp_path, listener.url)
        result = runner.invoke(
            app,
            ["run", str(scenario), "--model", model, *FAST, "--out", str(tmp_path / "rec")],
            env={variable: OTHER_KEY, "COLUMNS": "400", ALLOWED_API_BASES_ENV: None},
        )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and ALLOWED_API_BASES_ENV in lines[0]
    assert not any(OTHER_KEY in json.dumps(headers) for _, headers in listener.requests)
    assert OTHER_KEY not in result.output and not (tmp_path / "rec").exists()


def test_a_sweep_factor_api_base_sends_it_no_key(tmp_path, monkeypatch):
    from mesa_llm.experiments.sweep import run_sweep

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv(ALLOWED_API_BASES_ENV, raising=False)
    with FakeOpenAIServer(responder=_answer) as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            "name: consent\nscenario: llm_double_auction\nsteps: 1\n"
            f"factors:\n  llm.api_base: [{server.base_url}]\n  llm.model: [openai/fake-model]\n"
            "  populations.0.count: [1]\n  populations.1.count: [1]\n  llm.max_attempts: [1]\n",
            encoding="utf-8",
        )
        result = run_sweep(spec, tmp_path / "out", workers=1)
        seen = _keys_seen(server)
    assert result.tally.done == 1
    assert seen and all(KEY not in h for h in seen), seen


def test_a_sweep_condition_api_base_sends_it_no_key(tmp_path, monkeypatch):
    from mesa_llm.experiments.sweep import run_sweep

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv(ALLOWED_API_BASES_ENV, raising=False)
    with FakeOpenAIServer(responder=_answer) as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            "name: consent\nscenario: llm_double_auction\nsteps: 1\n"
            "conditions:\n  remote:\n    llm.model: openai/fake-model\n"
            f"    llm.api_base: {server.base_url}\n"
            "    populations.0.count: 1\n    populations.1.count: 1\n    llm.max_attempts: 1\n",
            encoding="utf-8",
        )
        result = run_sweep(spec, tmp_path / "out", workers=1)
        seen = _keys_seen(server)
    assert result.tally.done == 1
    assert seen and all(KEY not in h for h in seen), seen


# ------------------------------------------------------------------------------ the matching rule


def test_allow_list_matching_is_by_scheme_host_port_and_path_segments(monkeypatch):
    from mesa_llm.llm.consent import api_base_allowed

    monkeypatch.setenv(ALLOWED_API_BASES_ENV, "https://proxy.example.com/v1 , http://10.0.0.5:8000")
    assert api_base_allowed("https://proxy.example.com/v1")
    assert api_base_allowed("https://PROXY.example.com:443/v1/chat")
    assert api_base_allowed("https://user:pw@proxy.example.com/v1")  # a login changes no host
    assert api_base_allowed("http://10.0.0.5:8000/anything")
    assert not api_base_allowed("https://proxy.example.com/v10")
    assert not api_base_allowed("https://proxy.example.com/v1/../admin")
    assert not api_base_allowed("http://proxy.example.com/v1")  # scheme
    assert not api_base_allowed("https://proxy.example.com:8443/v1")  # port
    assert not api_base_allowed("https://proxy.example.com.evil.net/v1")
    assert not api_base_allowed("https://proxy.example.com@evil.net/v1")  # the host is evil.net
    assert not api_base_allowed("https://evil.net\\@proxy.example.com/v1")  # parsers disagree: no
    assert not api_base_allowed("http://10.0.0.5:8001/")
    # the URL the user named on the command line is trusted whatever the list says
    assert api_base_allowed("http://127.0.0.1:5/v1", trusted="http://127.0.0.1:5/v1")
    assert not api_base_allowed("http://127.0.0.1:5/v1", trusted="http://127.0.0.1:6/v1")
