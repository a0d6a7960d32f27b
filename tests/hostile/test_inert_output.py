"""Output is inert (issue 17, finding 6): secrets are redacted wherever they can appear.

Tokens in an ``api_base`` query string (``access_token``, ``sig``, ``key``, in any case, AWS-style
``X-Amz-*`` signatures) stay out of the recording header and the terminal; an api_base password
in a sweep factor stays out of ``results.csv``, the journal, the spec copy and the report; and the
values of the environment's credential variables (litellm's names, ``AWS_BEARER_TOKEN_BEDROCK``,
``*_CREDENTIALS*``, ``*_PAT``, ``*_PASS*``, numbered ``*_API_KEY_2``) are blanked out of text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mesa_llm.cli import app
from mesa_llm.llm.errors import redact
from mesa_llm.llm.secrets import Redactor, environment_secrets
from mesa_llm.model import MarketModel
from tests.fake_openai_server import FakeOpenAIServer

runner = CliRunner()
TOKENS = ("tok-AAA-111-secret", "sig-BBB-222-secret", "key-CCC-333-secret", "amz-DDD-444-secret")
PASSWORD = "factor-pa55-Zq81"
FAST = ["--steps", "1", "--set", "llm.max_attempts=1", "--set", "populations.0.count=1", "--set", "populations.1.count=1"]


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    if not request.get("tools"):
        return {"content": "Trade near my values."}
    return {"content": None, "tool_calls": [{"name": "wait", "arguments": "{}"}]}


def _with_tokens(base: str) -> str:
    return (
        f"{base}?Access_Token={TOKENS[0]}&api-version=2024-06-01&SIG={TOKENS[1]}&key={TOKENS[2]}"
        f"&X-Amz-Signature={TOKENS[3]}"
    )


def _files(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file() and p.suffix != ".parquet")


@pytest.mark.parametrize("how", ["--api-base", "--set", "scenario"])
def test_query_tokens_of_an_api_base_reach_neither_the_recording_nor_the_terminal(tmp_path, how):
    with FakeOpenAIServer(responder=_answer) as server:
        url = _with_tokens(server.base_url)
        if how == "--api-base":
            target, extra = "llm_double_auction", ["--api-base", url]
        elif how == "--set":
            target, extra = "llm_double_auction", ["--set", f"llm.api_base={url}"]
        else:
            from mesa_llm.scenario import load_scenario

            raw = load_scenario("llm_double_auction").model_dump(mode="json", exclude={"source_dir"})
            raw["llm"]["api_base"] = url
            target, extra = str(tmp_path / "s.yaml"), []
            Path(target).write_text(json.dumps(raw))
        result = runner.invoke(
            app,
            ["run", target, "--model", "openai/fake-model", *FAST, *extra, "--out", str(tmp_path / "rec")],
            env={"OPENAI_API_KEY": "sk-inert-test-0000000", "COLUMNS": "400"},
        )
    assert "Traceback" not in result.output
    written = _files(tmp_path / "rec")
    assert written, result.output  # a recording was written
    for token in TOKENS:
        assert token not in result.output and token not in written
    header = json.loads(next((tmp_path / "rec").glob("*.jsonl")).read_text().splitlines()[0])["content"]
    shown = header["llm"]["settings"]["api_base"]
    assert shown.startswith(server.base_url) and "api-version=2024-06-01" in shown and "Access_Token=***" in shown
    assert header["scenario"]["spec"]["llm"]["api_base"] == shown


def test_an_api_base_password_in_a_sweep_factor_stays_out_of_every_result(tmp_path, monkeypatch):
    from mesa_llm.experiments.command import report_command
    from mesa_llm.experiments.sweep import run_sweep

    monkeypatch.setenv("OPENAI_API_KEY", "sk-inert-test-0000000")
    with FakeOpenAIServer(responder=_answer) as server:
        base = server.base_url.replace("http://", f"http://user:{PASSWORD}@")
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            "name: inert\nscenario: llm_double_auction\nsteps: 1\nreplicates: 2\n"
            f"factors:\n  llm.api_base: [{base}, '{_with_tokens(server.base_url)}']\n"
            "conditions:\n  a:\n    llm.model: openai/fake-model\n"
            "    populations.0.count: 1\n    populations.1.count: 1\n    llm.max_attempts: 1\n",
            encoding="utf-8",
        )
        result = run_sweep(spec, tmp_path / "out", workers=1)
    assert result.tally.done == 4
    report_command(tmp_path / "out", tmp_path / "out" / "report.html", as_json=False)
    written = _files(tmp_path / "out")
    assert (tmp_path / "out" / "report.html").exists() and "journal.jsonl" in {p.name for p in (tmp_path / "out").iterdir()}
    for secret in (PASSWORD, *TOKENS):
        assert secret not in written, secret
    import pandas as pd

    levels = pd.read_parquet(tmp_path / "out" / "results.parquet")["llm.api_base"].unique().tolist()
    assert len(levels) == 2 and all(PASSWORD not in str(v) and TOKENS[0] not in str(v) for v in levels)
    # the spec copy is still a spec: the report and a resume read it
    again = run_sweep(spec, tmp_path / "out", workers=1)
    assert again.tally.skipped == 4


def test_sweep_levels_that_differ_only_in_credentials_are_refused(tmp_path):
    from mesa_llm.experiments.spec import SweepSpecError
    from mesa_llm.experiments.sweep import run_sweep

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: same\nscenario: llm_double_auction\nsteps: 1\n"
        "factors:\n  llm.api_base: ['http://a:one-secret@127.0.0.1:9/v1', 'http://a:two-secret@127.0.0.1:9/v1']\n",
        encoding="utf-8",
    )
    with pytest.raises(SweepSpecError, match="differ only in credentials") as info:
        run_sweep(spec, tmp_path / "out", workers=1)
    assert "one-secret" not in str(info.value) and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name",
    [
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "VERTEXAI_CREDENTIALS",
        "MY_SERVICE_CREDENTIALS_JSON",
        "GITHUB_PAT",
        "DB_PASS",
        "SMTP_PASSWORD_FILE",
        "MAIL_PASSPHRASE",
        "OPENAI_API_KEY_2",
        "ANTHROPIC_KEY_1",
        "REPLICATE_API_TOKEN",
        "AZURE_CLIENT_SECRET",
        "HF_TOKEN",
        "WATSONX_APIKEY",
        "OPENAI_API_KEY",
    ],
)
def test_credential_variables_are_redacted_by_name(monkeypatch, name):
    value = f"v4lue-of-{name.lower()}-x9"
    monkeypatch.setenv(name, value)
    assert value in environment_secrets()
    assert Redactor.for_provider()(f"the provider said: {value} is wrong") == "the provider said: *** is wrong"


@pytest.mark.parametrize("name", ["PATH", "PWD", "HOME", "AWS_REGION", "AWS_PROFILE", "MESA_LLM_MODEL", "SSH_ASKPASS", "LANG"])
def test_ordinary_variables_are_not_secrets(monkeypatch, name):
    monkeypatch.setenv(name, f"ordinary-value-of-{name.lower()}")
    assert f"ordinary-value-of-{name.lower()}" not in environment_secrets()


def test_an_unexpected_failure_naming_a_credential_variable_is_printed_without_it(tmp_path, monkeypatch):
    secret = "bedrock-bearer-value-314159"

    def explode(self: MarketModel) -> None:  # the first step fails
        raise RuntimeError(f"provider said: bad token {secret}")

    monkeypatch.setattr(MarketModel, "step", explode)
    result = runner.invoke(
        app, ["run", "double_auction", "--steps", "1", "--out", str(tmp_path)],
        env={"AWS_BEARER_TOKEN_BEDROCK": secret, "COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 1 and "bad token ***" in result.stderr
    assert secret not in result.output


@pytest.mark.parametrize(
    "url",
    [
        "https://h/v1?access_token=SECRET1",
        "https://h/v1?ACCESS_TOKEN=SECRET1&x=1",
        "https://h/v1?x=1&Sig=SECRET1",
        "https://h/v1?sv=2024&signature=SECRET1",
        "https://h/v1?X-Amz-Credential=SECRET1&X-Amz-Security-Token=SECRET1",
        "https://h/v1?api_key=SECRET1",
        "https://h/v1?Key=SECRET1",
        "https://h/v1?password=SECRET1",
        "https://h/v1?auth=SECRET1",
        "https://user:SECRET1@h/v1",
    ],
)
def test_redact_masks_credential_query_parameters_in_any_case(url):
    text = redact(f"could not reach {url} (connection refused)")
    assert "SECRET1" not in text and "https://" in text and "(connection refused)" in text
