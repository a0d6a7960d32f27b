"""The ``mesa-llm`` command line: run, list and validate scenarios (typer + rich).

Thin by design: it loads a scenario, builds the model, shows progress on stderr and prints a
summary. Every expected failure (a bad scenario file, a bad ``--set``) ends with one clear line
on stderr and a non-zero exit code, never a traceback, and writes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mesa_llm.terminal import cell, inert

app = typer.Typer(
    name="mesa-llm",
    help="LLM-driven multi-agent negotiation and markets on Mesa.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    ctx: typer.Context,
    no_plugins: Annotated[
        bool, typer.Option("--no-plugins", help="Load no plugin (entry points of the mesa_llm.* groups).")
    ] = False,
) -> None:
    """Options of every command (before its name: mesa-llm --no-plugins run ...)."""
    if no_plugins:  # for this command only (an in-process caller gets its plugins back after it)
        from mesa_llm.plugins import Plugins, using_plugins

        ctx.with_resource(using_plugins(Plugins(enabled=False)))


def _err_console() -> Console:
    return Console(stderr=True, highlight=False)


#: the options that serve the bundled model, shared by `run` and `sweep`
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local", help="Serve a small real LLM offline (llama.cpp) for every LLM population."
    ),
]
LocalModelOption = Annotated[
    Path | None,
    typer.Option("--local-model", help="The GGUF file --local serves (default: bundled SmolLM2)."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    # escaped: messages quote untrusted text (a recording's values) that may look like markup or
    # hold terminal escapes
    _err_console().print(f"[bold red]error:[/] {escape(inert(message))}", markup=True, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario name or a YAML file path.")],
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Override the number of steps.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Override the seed.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the recording.")] = Path(
        "recordings"
    ),
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a scenario field: PATH=VALUE (YAML value), repeatable."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not write a recording.")
    ] = False,
    check_invariants: Annotated[
        bool,
        typer.Option(
            "--check-invariants", help="Check cash and goods conservation after every step."
        ),
    ] = False,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="litellm model string for every LLM population (e.g. openai/gpt-4o-mini).",
        ),
    ] = None,
    api_base: Annotated[
        str | None,
        typer.Option(
            "--api-base",
            help="URL of an OpenAI-compatible server; it gets your provider key (a scenario's does not).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="LLM calls in flight per model.")
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option("--max-cost-usd", min=0.0, help="Stop the run once LLM calls cost more."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help="Stop the run once LLM calls used more tokens."),
    ] = None,
    step_timeout: Annotated[
        float | None,
        typer.Option(
            "--step-timeout",
            min=0.001,
            help="Seconds a step's LLM calls may take; later calls fail.",
        ),
    ] = None,
    max_failed_steps: Annotated[
        int | None,
        typer.Option(
            "--max-failed-steps",
            min=0,
            help="Stop after this many steps whose every LLM call failed.",
        ),
    ] = None,
    local: LocalOption = False,
    local_model: LocalModelOption = None,
) -> None:
    """Run a scenario and write its recording (exit 1 if it stopped on a failure)."""
    from mesa_llm.scenario import ScenarioError

    try:
        spec = _load_checked(scenario, list(set_ or []))
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    llm_updates = {
        key: value
        for key, value in (
            ("concurrency", concurrency),
            ("max_cost_usd", max_cost_usd),
            ("max_tokens", max_tokens),
            ("step_timeout", step_timeout),
            ("max_failed_steps", max_failed_steps),
        )
        if value is not None
    }
    if llm_updates:
        spec.llm = spec.llm.model_copy(update=llm_updates)
    if not (local or local_model is not None):
        _run_scenario(spec, seed, steps, out, no_record, check_invariants, model_name, as_json, api_base)
        return
    if api_base is not None:
        raise _fail(
            "--local serves its own model: drop --api-base (or drop --local to use that server)"
        )
    from mesa_llm.llm.local_server import LOCAL_MODEL_NAME, LocalLLMServer, LocalModelError

    try:
        server = LocalLLMServer(local_model).start()
    except LocalModelError as exc:
        raise _fail(str(exc)) from None
    try:
        _err_console().print(
            f"note: serving {server.model_path.name} locally at {server.api_base} for every LLM population",
            highlight=False,
            markup=False,
        )
        served = model_name or LOCAL_MODEL_NAME
        spec.llm = spec.llm.model_copy(update=server.settings_for(served, spec.llm))
        _run_scenario(spec, seed, steps, out, no_record, check_invariants, served, as_json, server.api_base)
    finally:
        server.stop()


def _run_scenario(
    spec: Any,
    seed: int | None,
    steps: int | None,
    out: Path,
    no_record: bool,
    check_invariants: bool,
    model_name: str | None,
    as_json: bool,
    api_base: str | None = None,
) -> None:
    """Build the run of a loaded scenario, run it with progress on stderr and print the summary.

    ``api_base`` is the server the user named (``--api-base``) or the program started (``--local``):
    it replaces the scenario's and is the only api_base that gets the provider key unasked."""
    from mesa_llm.llm.secrets import Redactor
    from mesa_llm.llm_wiring import resolve_llm_models
    from mesa_llm.scenario import ScenarioError
    from mesa_llm.simulation import Simulation

    base = api_base if api_base is not None else spec.llm.api_base
    # every message this command prints goes through it: no key or api_base password on the terminal
    scrub = Redactor.for_provider(None, base)
    models = sorted({m for m in resolve_llm_models(spec, model_name).values() if m})
    problem = _check_llm_access(models, base, trusted=api_base is not None)
    if problem is not None:
        raise _fail(scrub(problem))
    try:
        sim = Simulation.from_scenario(
            spec, seed=seed, steps=steps, out=out, record=not no_record,
            check_invariants=True if check_invariants else None, model=model_name, api_base=api_base,
        )  # fmt: skip
    except ScenarioError as exc:
        raise _fail(scrub(str(exc))) from None
    except ValueError as exc:  # e.g. a prompt override that is missing or does not compile
        raise _fail(scrub(f"{spec.name}: {exc}")) from None
    console = _err_console()
    _print_sanity(spec)
    for notice in sim.notices:
        console.print(f"note: {inert(notice)}", highlight=False, markup=False)
    for warning in sim.warnings:
        console.print(f"warning: {inert(warning)}", highlight=False, markup=False)
    progress = Progress(
        TextColumn(f"[bold]{escape(spec.name)}[/] seed {sim.seed}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    )
    if not as_json and not console.is_terminal:  # no progress bar to watch: say each call as it ends
        sim.subscribe("llm_call", lambda event: console.print(scrub(_call_line(event)), markup=False, highlight=False))
    try:
        with progress:
            task = progress.add_task("run", total=sim.max_steps)
            sim.run(progress=lambda step: progress.update(task, completed=step))
    except KeyboardInterrupt:
        sim.close()
        raise _fail(f"interrupted; partial recording: {sim.recording_path}", 130) from None
    except Exception as exc:  # an unexpected failure: say what, keep the recording that exists
        sim.close()
        raise _fail(
            scrub(f"run failed at step {sim.steps}: {type(exc).__name__}: {exc}")
            + (f" (recording so far: {sim.recording_path})" if sim.recording_path else ""),
            1,
        ) from None
    sim.close()
    data = sim.summary().to_dict()
    if sim.status == "failed":
        if as_json:
            sys.stdout.write(json.dumps(data) + "\n")
        raise _fail(
            scrub(f"run stopped at step {sim.steps}: {sim.stop_reason}") + f" (recording: {data['recording']})",
            1,
        )
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        for warning in (data.get("llm") or {}).get("warnings") or []:  # stdout stays pure JSON
            console.print(f"warning: {inert(warning)}", highlight=False, markup=False)
    else:
        _print_summary(data)
    failed = _too_many_failed_calls(data)
    if failed is not None:
        raise _fail(scrub(failed) + f" (recording: {data['recording']})", 1)


def _call_line(event: Any) -> str:
    """One line for a finished LLM call (shown when stderr is no terminal): step, agent, purpose,
    seconds and prompt tokens, or the start of its error."""
    content = event.content if isinstance(event.content, dict) else {}
    head = f"step {event.step} agent {event.agent_id} {content.get('purpose', 'call')}"
    error = content.get("error")
    if error:
        return inert(f"{head}: failed after {float(content.get('latency_s') or 0):.1f} s: {str(error)[:160]}")
    tokens = (content.get("usage") or {}).get("prompt_tokens")
    return inert(f"{head}: {float(content.get('latency_s') or 0):.1f} s, {tokens} prompt tokens")


#: the share of failed LLM calls from which a finished run exits non-zero
FAILED_CALLS_LIMIT = 0.25


def _too_many_failed_calls(data: dict[str, Any]) -> str | None:
    """One line when a quarter or more of the run's LLM calls failed (its agents mostly did not
    decide: the numbers describe the failures, not the agents), else None."""
    llm = data.get("llm") or {}
    calls, failed = int(llm.get("calls") or 0), int(llm.get("failed_calls") or 0)
    if calls <= 0 or failed < FAILED_CALLS_LIMIT * calls:
        return None
    return f"{failed} of {calls} LLM calls failed ({failed / calls:.0%}, a quarter or more)"


def _load_checked(name_or_path: str, overrides: list[str]) -> Any:
    """Load and validate a scenario, then resolve, compile and render its prompt templates once
    (with or without a model configured); ScenarioError naming the file on any problem."""
    from mesa_llm.simulation import prepare_scenario

    return prepare_scenario(name_or_path, overrides)


def _check_llm_access(models: list[str], api_base: str | None, trusted: bool = False) -> str | None:
    """One line saying why the chosen models cannot be reached, or None (``trusted``: the user
    named ``api_base`` on the command line, so it may receive the provider key)."""
    if not models:
        return None
    import asyncio

    from mesa_llm.llm import check_server, missing_credentials
    from mesa_llm.llm.consent import api_base_allowed

    if api_base and not trusted and not api_base_allowed(api_base):
        from mesa_llm.llm import LiteLLMChatModel

        for name in models:  # a provider that would read its credentials from the environment
            try:
                LiteLLMChatModel(name, api_base=api_base, api_base_trusted=False)
            except ValueError as exc:
                return str(exc)
    for name in models:
        missing = missing_credentials(name, api_base)
        if missing:
            return (
                f"model {name!r} needs {', '.join(missing)}, which is not set "
                "(set it in the environment, or use --api-base for a local OpenAI-compatible server)"
            )
    if api_base:
        reason = asyncio.run(check_server(api_base))
        if reason is not None:
            return reason
    from mesa_llm.llm.litellm_backend import model_problem

    for name in models:  # an unknown provider or model: one line now, not failing steps later
        problem = model_problem(name, api_base)
        if problem is not None:
            return problem
    return None


def _print_summary(data: dict[str, Any]) -> None:
    console = Console(highlight=False)
    table = Table(title=f"{data['scenario']} (seed {data['seed']}, {data['steps']} steps)")
    for column in ("good", "trades", "volume", "mean price", "CE price", "CE qty", "Smith's alpha"):
        table.add_column(column, justify="right" if column != "good" else "left")
    for good, g in data["goods"].items():
        table.add_row(
            good,
            str(g["trades"]),
            str(g["volume"]),
            _fmt(g["mean_price"]),
            _fmt(g["ce_price"]),
            str(g["ce_quantity"]) if g["ce_price"] is not None else "-",
            _fmt(g["smiths_alpha"], 2),
        )
    console.print(table)
    efficiency = data["allocative_efficiency"]
    fees = (data.get("fees") or {}).get("total") or 0.0
    console.print(
        f"trades: {data['trades']}   volume: {data['volume']}   allocative efficiency: "
        + (
            f"{efficiency:.1%}"
            if efficiency is not None
            else f"n/a ({data.get('allocative_efficiency_note') or 'undefined'})"
        )
        + (f"   fees: {fees:,.2f}" if fees else "")
    )
    if data.get("sessions"):
        rate = data["agreement_rate"]
        console.print(
            f"negotiations: {data['sessions']} ({data['agreements']} agreed"
            + (f", agreement rate {rate:.0%}" if rate is not None else "")
            + f")   contracts: {data['contracts_fulfilled']} fulfilled, {data['contracts_breached']} breached,"
            f" value {data['contract_value']:,.2f}"
        )
    llm = data.get("llm")
    if llm:
        console.print(
            f"LLM agents: {llm['agents']} ({inert(', '.join(llm['models']))})   calls: {llm['calls']}"
            f" ({llm['failed_calls']} failed)   tokens: {llm['prompt_tokens']:,} in / "
            f"{llm['completion_tokens']:,} out   cost: ${llm['cost_usd']:.4f}",
            markup=False,
        )
        populations = llm.get("populations") or {}
        if populations:
            table = Table(title="LLM populations")
            columns = (
                "population",
                "agents",
                "calls",
                "failed",
                "valid",
                "invalid",
                "repaired",
                "actions",
                "waits",
            )
            for column in columns:
                table.add_column(column, justify="left" if column == "population" else "right")
            keys = (
                "agents",
                "calls",
                "failed_calls",
                "valid_tool_calls",
                "invalid_tool_calls",
                "repaired_tool_calls",
                "actions_applied",
                "waits",
            )
            for label, p in populations.items():
                table.add_row(cell(label), *(str(p[k]) for k in keys))
            console.print(table)
        for warning in llm.get("warnings") or []:
            console.print(f"[bold yellow]warning:[/] {escape(inert(warning))}")
    for name, numbers in (data.get("mechanisms") or {}).items():  # plugin mechanisms' own metrics
        shown = ", ".join(f"{k} {_short(v)}" for k, v in numbers.items())
        console.print(inert(f"{name}: {shown}"), markup=False, soft_wrap=True)
    if data.get("stop_reason"):
        console.print(f"stopped: {inert(data['stop_reason'])}", markup=False)
    console.print(f"recording: {inert(data['recording'] or '(not recorded)')}", markup=False, soft_wrap=True)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _short(value: Any) -> str:
    """A plugin mechanism's metric for the terminal: numbers to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return "-" if value is None else str(value)


@app.command()
def scenarios() -> None:
    """List the shipped scenarios (and the plugins' ones) with a one-line description."""
    from mesa_llm.plugin_commands import scenario_rows

    rows, notes = scenario_rows()
    console = Console(highlight=False)
    table = Table(show_header=True)
    table.add_column("scenario")
    table.add_column("description")
    with_plugins = any(plugin for _, _, plugin in rows)
    if with_plugins:
        table.add_column("plugin")
    for name, description, plugin in rows:
        table.add_row(name, description, *([plugin] if with_plugins else []))
    console.print(table)
    for note in notes:
        _err_console().print(f"note: {note}", markup=False, soft_wrap=True)


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the plugins: group, name, distribution==version and status (loaded, failed, refused)."""
    from mesa_llm.plugin_commands import plugins_command

    plugins_command(as_json)


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="A scenario YAML file (or a shipped name).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE override.")] = None,
) -> None:
    """Check a scenario file: exit 0 when valid, else one clear message naming the file and field."""
    from mesa_llm.scenario import ScenarioError

    try:
        spec = _load_checked(file, list(set_ or []))
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    agents = sum(p.count for p in spec.populations)
    Console(highlight=False).print(
        f"{inert(file)}: valid — scenario {spec.name!r}, {len(spec.goods)} good(s), {agents} agents, "
        f"{spec.steps} steps, seed {spec.seed}",
        markup=False,
    )
    _print_sanity(spec)


def _print_sanity(spec: Any) -> None:
    """One warning line per population that cannot act as its role implies (stderr)."""
    from mesa_llm.scenario_sanity import sanity_warnings

    for warning in sanity_warnings(spec):
        _err_console().print(f"warning: {inert(warning)}", highlight=False, markup=False, soft_wrap=True)


@app.command("replay")
def replay_command(
    recording: Annotated[Path, typer.Argument(help="A recording (.jsonl or .json).")],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Stop at the first divergence from the recording; exit 1 if any."
        ),
    ] = False,
    until_step: Annotated[
        int | None,
        typer.Option("--until-step", min=0, help="Fork: replay up to this step, then go on live."),
    ] = None,
    then_model: Annotated[
        str | None,
        typer.Option("--then-model", help="Fork: the model every LLM agent uses after the fork."),
    ] = None,
    agent_model: Annotated[
        list[str] | None,
        typer.Option("--agent-model", help="Fork: AGENT_ID=MODEL for one agent, repeatable."),
    ] = None,
    agent_policy: Annotated[
        list[str] | None,
        typer.Option("--agent-policy", help="Fork: AGENT_ID=POLICY (rule-based), repeatable."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Fork: run this many steps in all.")
    ] = None,
    api_base: Annotated[
        str | None,
        typer.Option(
            "--api-base",
            help="Server for the live part of a fork (a recorded api_base is never used).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="The new recording goes to its replays/ subfolder (default: recordings/; "
            "--verify keeps none without --out).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
) -> None:
    """Replay a recording without any LLM call (or fork it after a step)."""
    from mesa_llm.recording import RecordingError
    from mesa_llm.replay import ReplayError, replay

    fork = until_step is not None
    if not fork and (then_model or agent_model or agent_policy or steps):
        raise _fail(
            "--then-model, --agent-model, --agent-policy and --steps need --until-step (a fork)"
        )
    try:
        models = {int(k): v for k, v in (_pair(x, "--agent-model") for x in agent_model or [])}
        policies: dict[int, tuple[str, dict[str, Any]]] = {
            int(k): (v, {}) for k, v in (_pair(x, "--agent-policy") for x in agent_policy or [])
        }
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        result = replay(
            recording,
            verify=verify,
            until_step=until_step,
            then_model=then_model,
            agent_models=models or None,
            agent_policies=policies or None,
            steps=steps,
            output_dir=out,
            api_base=api_base,
        )
    except (ReplayError, RecordingError) as exc:
        raise _fail(str(exc)) from None
    data = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        console = Console(highlight=False)
        kind = f"fork after step {until_step}" if fork else "replay"
        console.print(
            f"{kind}: {result.steps} steps, {result.replayed_calls} LLM calls answered from the recording, "
            f"{result.live_calls} live"
            + (f" ({result.failed_live_calls} of them failed)" if result.failed_live_calls else "")
        )
        for note in result.notes:
            console.print(f"note: {inert(note)}", markup=False)
        if result.final_state_matches is not None:
            console.print(
                "final balances: "
                + (
                    "identical to the recording"
                    if result.final_state_matches
                    else "DIFFERENT from the recording"
                )
            )
        if data["recording"] is not None:
            console.print(f"recording: {inert(data['recording'])}", markup=False, soft_wrap=True)
    if result.divergence is not None:
        raise _fail(f"diverged from the recording at {result.divergence}", 1)
    if verify and result.final_state_matches is False:
        raise _fail("final balances differ from the recording", 1)


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isdigit() or not value.strip():
        raise ValueError(f"{option} {text!r}: expected AGENT_ID=VALUE, e.g. 3=openai/gpt-4o-mini")
    return key.strip(), value.strip()


@app.command()
def analyze(
    recording: Annotated[Path, typer.Argument(help="A recording (.jsonl or .json).")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write every table as CSV into this folder.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as one JSON object.")
    ] = False,
) -> None:
    """Metrics, tables and plots of a recording."""
    from mesa_llm.analysis import load_recording
    from mesa_llm.analysis.metrics import summary_metrics
    from mesa_llm.analysis.report import metric_rows, render_html, write_csv
    from mesa_llm.recording import RecordingError

    # The large contents (observations, LLM calls) are checked when a table first decodes them,
    # so a corrupt one can surface while the metrics are computed: one line then too.
    try:
        rec = load_recording(recording)
        if rec.warning:
            _err_console().print(f"note: {inert(rec.warning)}", markup=False, highlight=False)
        metrics = summary_metrics(rec)
        if as_json:
            sys.stdout.write(json.dumps(metrics, default=str) + "\n")
        else:
            table = Table(title=cell(recording.name))
            table.add_column("metric")
            table.add_column("value", justify="right")
            for _, metric, value in metric_rows(metrics):
                table.add_row(cell(metric), cell(value))
            Console(highlight=False).print(table)
            if metrics.get("stress"):
                from mesa_llm.analysis.stress import stress_rows

                stress = Table(title="stress events (before -> during -> after)")
                stress.add_column("event")
                stress.add_column("effect")
                for label, effect in stress_rows(metrics):
                    stress.add_row(cell(label), cell(effect))
                Console(highlight=False).print(stress)
            if metrics.get("auctions"):
                _print_auctions(rec)
        for warning in (metrics.get("llm") or {}).get("warnings") or []:  # an inert LLM population
            _err_console().print(f"warning: {inert(warning)}", markup=False, highlight=False)
        for problem in metrics.get("plugin_errors") or []:  # a plugin metric that failed: None
            _err_console().print(f"warning: {inert(problem)}", markup=False, highlight=False)
        if html is not None:
            written = render_html(rec, html)
            _err_console().print(f"report: {inert(written)}", markup=False, highlight=False, soft_wrap=True)
        if csv is not None:
            files = write_csv(rec, csv)
            _err_console().print(f"{len(files)} CSV files in {inert(csv)}", markup=False, highlight=False)
    except RecordingError as exc:
        raise _fail(str(exc)) from None


@app.command()
def export(
    recording: Annotated[Path, typer.Argument(help="A finished recording (.jsonl stream).")],
    parquet: Annotated[
        bool,
        typer.Option("--parquet", help="Write its columnar copy: one Parquet file per event type."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder of the copy (default: REC.parquet next to REC, where load_recording finds it)."),
    ] = None,
) -> None:
    """Export a recording: --parquet writes its columnar copy (also written when a run ends)."""
    from mesa_llm.analysis.columnar import write_copy
    from mesa_llm.recording import RecordingError

    if not parquet:
        raise _fail("nothing to export: say --parquet")
    try:
        folder = write_copy(recording, out)
    except RecordingError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{out or recording}: cannot write the copy: {exc.strerror or exc}") from None
    files = sum(1 for p in folder.iterdir() if p.suffix == ".parquet")
    Console(highlight=False).print(f"columnar copy: {inert(folder)} ({files} Parquet files)", markup=False, soft_wrap=True)


def _print_auctions(rec: Any) -> None:
    """Each auction of ``rec``: outcome, surplus and revenue against theory, then its bids."""
    from mesa_llm.analysis.auctions import auction_results, auction_rows

    console = Console(highlight=False)
    for result in auction_results(rec):
        table = Table(title=cell(f"auction {result['session_id']}"))
        table.add_column("")
        table.add_column("value")
        for label, value in auction_rows(result):
            table.add_row(cell(label), cell(value))
        console.print(table)
        bids = Table(title=cell(f"bids of {result['session_id']} (shading = 1 - bid/value)"))
        for column in ("bidder", "value", "bid", "shading", "won"):
            bids.add_column(column, justify="left" if column == "bidder" else "right")
        for b in result["bids"]:
            bids.add_row(
                cell(b["name"]), "-" if b["value"] is None else f"{b['value']:,.2f}",
                "-" if b["bid"] is None else f"{b['bid']:,.2f}",
                "-" if b["shading"] is None else f"{100 * b['shading']:.1f}%", "yes" if b["won"] else "",
            )  # fmt: skip
        console.print(bids)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Recording A.")],
    b: Annotated[Path, typer.Argument(help="Recording B.")],
) -> None:
    """Two recordings side by side (A/B)."""
    from mesa_llm.analysis import load_recording
    from mesa_llm.analysis.report import compare as compare_recordings
    from mesa_llm.recording import RecordingError

    try:
        rec_a, rec_b = load_recording(a), load_recording(b)
        rows = compare_recordings(rec_a, rec_b)
    except RecordingError as exc:
        raise _fail(str(exc)) from None
    console = Console(highlight=False)
    # the files on lines of their own, whole (two runs' names often differ only at the end)
    console.print(f"A: {inert(a)}", markup=False, soft_wrap=True)
    console.print(f"B: {inert(b)}", markup=False, soft_wrap=True)
    table = Table(title="A/B")
    table.add_column("metric", overflow="fold")
    table.add_column("A", justify="right", overflow="fold")
    table.add_column("B", justify="right", overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console.print(table)


@app.command()
def sweep(
    spec: Annotated[
        Path, typer.Argument(help="A sweep spec (YAML): scenario, factors, conditions, replicates.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for results.parquet/csv and the recordings.")
    ],
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Runs in parallel (default: all cores).")
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="process (local cores) or ray.")
    ] = "process",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="A Ray cluster (default: a local one).")
    ] = None,
    max_cost_usd: Annotated[
        float | None, typer.Option("--max-cost-usd", min=0.0, help="LLM budget of the whole sweep.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome and statistics as one JSON object.")
    ] = False,
    local: LocalOption = False,
    local_model: LocalModelOption = None,
    replicates: Annotated[
        int | None,
        typer.Option("--replicates", min=1, help="Replicates instead of the spec's (kept in the folder's manifest)."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Steps of every run instead of the spec's (kept in the manifest).")
    ] = None,
) -> None:
    """Run (or resume) a sweep: conditions x factors x replicates, with paired statistics."""
    from mesa_llm.experiments.command import CommandError, sweep_command

    try:
        sweep_command(spec, out, workers=workers, executor=executor, ray_address=ray_address,
                      max_cost_usd=max_cost_usd, as_json=as_json, local=local, local_model=local_model,
                      replicates=replicates, steps=steps)  # fmt: skip
    except CommandError as exc:
        raise _fail(str(exc)) from None


@app.command()
def train(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario name or a YAML path.")],
    population: Annotated[
        list[str] | None,
        typer.Option("--population", help="A population whose agents learn (switched to policy: rl; repeatable). Default: the scenario's policy: rl populations."),
    ] = None,
    algo: Annotated[str, typer.Option("--algo", help="ppo, a2c, dqn (discrete actions) or sac (--decoder box).")] = "ppo",
    timesteps: Annotated[int, typer.Option("--timesteps", min=1, help="Learner steps to train for (all learners count).")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the policy and of the first episode.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Folder for policy.zip/.json, checkpoints and the training log.")] = Path("rl_runs"),
    envs: Annotated[int, typer.Option("--envs", min=1, help="Environments stepped side by side.")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a scenario field (PATH=VALUE, repeatable).")] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", help="market or negotiation (NAME or NAME:{json params}).")] = None,
    decoder: Annotated[str | None, typer.Option("--decoder", help="quote, box or utility_level (NAME or NAME:{json params}).")] = None,
    reward: Annotated[str | None, typer.Option("--reward", help="pnl, inventory, risk_adjusted, surplus or utility (NAME or NAME:{json params}).")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local (Stable-Baselines3) or ray (RLlib).")] = "local",
    checkpoint_every: Annotated[int | None, typer.Option("--checkpoint-every", min=1, help="Timesteps between checkpoints (default: a quarter of --timesteps).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as one JSON object.")] = False,
) -> None:
    """Train learning agents (one shared policy) in a scenario; needs the rl extra."""
    from mesa_llm.rl.command import CommandError, train_command

    try:
        train_command(scenario, populations=list(population or []), algo=algo, timesteps=timesteps, seed=seed, out=out,
                      envs=envs, overrides=list(set_ or []), encoder=encoder, decoder=decoder, reward=reward,
                      executor=executor, checkpoint_every=checkpoint_every, as_json=as_json)  # fmt: skip
    except CommandError as exc:
        raise _fail(str(exc)) from None


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by mesa-llm train (NAME.zip, NAME.json beside it).")],
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Paired episodes (seeds).")] = 20,
    seed: Annotated[int | None, typer.Option("--seed", help="First seed (default: the training seed + 100000).")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Evaluate in this scenario instead of the one trained on.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON object.")] = False,
) -> None:
    """Compare a checkpoint with the population's built-in policy and a random policy in the same
    seats on the same seeds: reward and profit with 95% CIs."""
    from mesa_llm.rl.command import CommandError, evaluate_command

    try:
        evaluate_command(checkpoint, episodes=episodes, seed=seed, scenario=scenario, as_json=as_json)
    except CommandError as exc:
        raise _fail(str(exc)) from None


@app.command("sweep-report")
def sweep_report(
    out_dir: Annotated[Path, typer.Argument(help="A sweep's --out folder.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the statistics as one JSON object.")
    ] = False,
) -> None:
    """Statistics, plots and tables of a sweep folder."""
    from mesa_llm.experiments.command import CommandError, report_command

    try:
        report_command(out_dir, html, as_json)
    except CommandError as exc:
        raise _fail(str(exc)) from None


@app.command()
def dashboard(
    target: Annotated[
        str,
        typer.Argument(
            help="A scenario (name or YAML file) to run live, or a recording (.jsonl/.json) to replay."
        ),
    ],
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port of the page (0: any free port).")
    ] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Let --host be an address other machines reach (the page then needs its token).",
        ),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser.")
    ] = False,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            min=1.0,
            max=7 * 86400.0,
            help="Seconds a session is kept after its page went away without closing.",
        ),
    ] = 120.0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Live: keep each session's recording in this folder (default: a temporary "
            "folder, deleted when the session ends).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Live: PATH=VALUE override, repeatable.")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option("--model", help="Live: litellm model for every LLM population.")
    ] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Live: URL of an OpenAI-compatible server.")
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="Live: serve a small real LLM offline for every LLM population."
        ),
    ] = False,
) -> None:
    """Watch a scenario run live, or play a recording back, in the browser (the dashboard extra)."""
    import importlib.util

    from mesa_llm.dashboard.server import (
        DashboardConfig,
        check_target_file,
        configure,
        is_recording,
        listen_address,
        serve,
    )

    if importlib.util.find_spec("solara") is None:
        raise _fail("the dashboard needs Solara: pip install 'mesa_llm[dashboard]'")
    try:
        address = listen_address(host, port, allow_remote)
        check_target_file(target)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if address.remote:
        _err_console().print(
            f"warning: serving on {host}:{address.port} beyond this machine: anyone who can reach it "
            "and has the page's token can watch and drive this dashboard (and spend its LLM budget)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    def serve_here() -> None:
        serve(address.port, host, not no_browser, allow_remote=allow_remote, idle_timeout=idle_timeout)

    if is_recording(target):
        from mesa_llm.dashboard.sessions import shared_recording
        from mesa_llm.recording import RecordingError

        if set_ or model_name or api_base or local or out is not None:
            raise _fail(
                "--set, --model, --api-base, --local and --out are for a live scenario, not a recording"
            )
        try:
            # loaded once here (a bad recording is one line, not an error page) and shared by
            # every replay tab while the server runs
            loaded = shared_recording(target)
        except RecordingError as exc:
            raise _fail(str(exc)) from None
        configure(DashboardConfig(recording=Path(target)))
        serve_here()
        del loaded
        return
    from mesa_llm.scenario import ScenarioError, resolve_scenario_path

    try:
        spec = _load_checked(target, list(set_ or []))
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(f"--out {out}: cannot be made a folder: {exc.strerror or exc}") from None
    if api_base is not None:
        if local:
            raise _fail(
                "--local serves its own model: drop --api-base (or drop --local to use that server)"
            )
        spec.llm = spec.llm.model_copy(update={"api_base": api_base})
        _allow_in_this_process(api_base)
    server = None
    if local:
        from mesa_llm.llm.local_server import LOCAL_MODEL_NAME, LocalLLMServer, LocalModelError

        try:
            server = LocalLLMServer(None).start()
        except LocalModelError as exc:
            raise _fail(str(exc)) from None
        model_name = model_name or LOCAL_MODEL_NAME
        spec.llm = spec.llm.model_copy(update=server.settings_for(model_name, spec.llm))
        _allow_in_this_process(server.api_base)
    try:
        from mesa_llm.llm_wiring import resolve_llm_models

        if not local:
            models = sorted({m for m in resolve_llm_models(spec, model_name).values() if m})
            problem = _check_llm_access(models, spec.llm.api_base, trusted=api_base is not None)
            if problem is not None:
                from mesa_llm.llm.secrets import Redactor

                raise _fail(Redactor.for_provider(None, spec.llm.api_base)(problem))
        source = str(resolve_scenario_path(target))
        configure(DashboardConfig(spec=spec, llm_model=model_name, source=source, out_dir=out))
        serve_here()
    finally:
        if server is not None:
            server.stop()


@app.command("serve")
def serve_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; beyond loopback a token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")] = 8000,
    recordings: Annotated[
        Path,
        typer.Option("--recordings", help="Folder simulations record to; the only one whose recordings are served."),
    ] = Path("recordings"),
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Bearer token every API request must carry: read from this file, or generated into "
            "it (readable only by you) when it does not exist.",
        ),
    ] = None,
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", help="Folder of RL checkpoints to list and act from.")
    ] = None,
    max_simulations: Annotated[
        int, typer.Option("--max-simulations", min=1, help="Open simulations at once.")
    ] = 8,
    max_agents: Annotated[
        int, typer.Option("--max-agents", min=1, help="Agents one simulation may hold.")
    ] = 10_000,
    max_connections: Annotated[
        int, typer.Option("--max-connections", min=1, help="WebSocket connections at once.")
    ] = 64,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1024, help="Bytes of one request body.")
    ] = 1024 * 1024,
    max_message_bytes: Annotated[
        int, typer.Option("--max-message-bytes", min=256, max=1024 * 1024, help="Bytes of one WebSocket message.")
    ] = 64 * 1024,
    messages_per_second: Annotated[
        float,
        typer.Option("--messages-per-second", min=0.1, help="WebSocket messages one client may send per second."),
    ] = 20.0,
) -> None:
    """Serve the REST + WebSocket API (and a demo page) for other programs (the server extra)."""
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn", "websockets")):
        raise _fail("the server needs FastAPI, uvicorn and websockets: pip install 'mesa_llm[server]'")
    from mesa_llm.server.run import bind, serve
    from mesa_llm.server.settings import ServerSettings, is_loopback, read_token_file

    if not is_loopback(host) and token_file is None:
        raise _fail(
            f"--host {host}: not a loopback address, so anyone who can reach it could drive this server; "
            "give --token-file PATH (a bearer token is read from it, or generated into it)"
        )
    token = None
    if token_file is not None:
        try:
            token, generated = read_token_file(token_file)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if generated:
            # printed this once, when it is made (later starts read the file and print nothing of it)
            _err_console().print(
                f"note: generated the bearer token {token} into {token_file} (readable only by you; shown "
                "only now); clients send it as 'Authorization: Bearer TOKEN'",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    try:
        recordings.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"--recordings {recordings}: cannot be made a folder: {exc.strerror or exc}") from None
    if checkpoints is not None and not checkpoints.is_dir():
        raise _fail(f"--checkpoints {checkpoints}: not a folder")
    try:
        settings = ServerSettings(
            recordings=recordings, checkpoints=checkpoints, host=host, port=port, token=token,
            max_simulations=max_simulations, max_agents=max_agents, max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            max_message_bytes=max_message_bytes, messages_per_second=messages_per_second,
        )  # fmt: skip
        sock = bind(host, port)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if not is_loopback(host):
        _err_console().print(
            f"warning: serving on {host} beyond this machine: anyone who can reach it and holds the token "
            "can run simulations here (and spend its LLM budget); the traffic is not encrypted",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    serve(settings, sock)


def _allow_in_this_process(api_base: str) -> None:
    """Let the server the user named on this command line receive the provider key in this
    process: the dashboard builds its models itself (from the spec, which carries no consent), so
    the command adds the URL to its own ``MESA_LLM_ALLOWED_API_BASES``."""
    import os

    from mesa_llm.llm.consent import ALLOWED_API_BASES_ENV

    current = os.environ.get(ALLOWED_API_BASES_ENV, "")
    os.environ[ALLOWED_API_BASES_ENV] = f"{current},{api_base}" if current.strip() else api_base


def main() -> None:  # pragma: no cover - console-script shim
    """Entry point for ``python -m mesa_llm``."""
    app()
