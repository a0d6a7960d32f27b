"""``mesa-llm train`` and ``mesa-llm evaluate``: what the CLI calls (the CLI stays a thin shell).
Every expected failure becomes `CommandError`, one line for the terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


class CommandError(Exception):
    """An expected failure of a command: one line, shown without a traceback."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if exc.__class__.__name__ == "ScenarioError":
        return " ".join(part.strip() for part in text.splitlines())
    return text.splitlines()[0] if text else type(exc).__name__


def _parse_codec(text: str | None) -> Any:
    """``NAME`` or ``NAME:{json params}`` (e.g. ``box:{"max_quantity": 3}``)."""
    if text is None:
        return None
    name, _, params = text.partition(":")
    if not params:
        return name
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{text[:80]!r}: parameters after ':' must be a JSON object ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise CommandError(f"{text[:80]!r}: parameters after ':' must be a JSON object")
    return {"name": name, "params": parsed}


def train_command(
    scenario: str, *, populations: list[str], algo: str, timesteps: int, seed: int, out: Path, envs: int,
    overrides: list[str], encoder: str | None, decoder: str | None, reward: str | None, executor: str,
    checkpoint_every: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Train and print what was written (a table, or JSON with ``as_json``)."""
    from mesa_llm.scenario import ScenarioError

    try:
        from mesa_llm.rl.train import train

        result = train(
            scenario, populations=populations or None, algo=algo, timesteps=timesteps, seed=seed, out=out, envs=envs,
            overrides=overrides, encoder=_parse_codec(encoder), decoder=_parse_codec(decoder), reward=_parse_codec(reward),
            checkpoint_every=checkpoint_every, progress=not as_json and sys.stderr.isatty(), executor=executor,
        )  # fmt: skip
    except (ScenarioError, ValueError, ImportError, OSError) as exc:
        raise CommandError(_one_line(exc)) from None
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    console = Console(highlight=False)
    console.print(
        f"trained {result.algo} on {result.scenario} ({', '.join(result.populations)}: {result.learners} learners) for "
        f"{result.timesteps:,} timesteps in {result.seconds:.1f} s, {result.episodes} learner-episodes"
    )
    if result.mean_episode_reward_last is not None:
        console.print(f"mean episode reward (last 100): {result.mean_episode_reward_last:.3f}")
    for key, path in result.files.items():
        console.print(f"{key}: {path}")


def evaluate_command(checkpoint: Path, *, episodes: int, seed: int | None, scenario: str | None, as_json: bool) -> None:
    """Evaluate and print the comparison (a table, or JSON with ``as_json``)."""
    from mesa_llm.scenario import ScenarioError

    try:
        from mesa_llm.rl.evaluate import evaluate

        report = evaluate(checkpoint, episodes=episodes, seed=seed, scenario=scenario)
    except (ScenarioError, ValueError, ImportError, OSError) as exc:
        raise CommandError(_one_line(exc)) from None
    if as_json:
        print(json.dumps(report))
        return
    console = Console(highlight=False)
    console.print(
        f"{report['checkpoint']} on {report['scenario']} ({', '.join(report['populations'])}), {report['episodes']} paired "
        f"episodes (seeds {report['seeds'][0]}..{report['seeds'][1]}), reward {report['reward'].get('name')}, profit: {report['profit']}"
    )
    table = Table("policy", "reward (mean [95% CI])", "profit (mean [95% CI])")
    for arm, metrics in report["arms"].items():
        table.add_row(arm, _ci(metrics["reward"]), _ci(metrics["profit"]))
    for pair, metrics in report["paired"].items():
        table.add_row(f"{pair} (paired)", _ci(metrics["reward"]), _ci(metrics["profit"]))
    console.print(table)


def _ci(stats: dict[str, Any]) -> str:
    if stats.get("mean") is None:
        return "-"
    return f"{stats['mean']:.3f} [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"


__all__ = ["CommandError", "evaluate_command", "train_command"]
