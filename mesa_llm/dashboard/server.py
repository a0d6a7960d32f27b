"""What the dashboard serves (a live scenario or a recording) and the Solara server that serves it.

`mesa-llm dashboard` checks its target first (a bad scenario or recording is one line of error,
before any server starts), stores it here with `configure`, then runs Solara in this process;
the page (`mesa_llm.dashboard.app`) reads it with `current_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP_MODULE = "mesa_llm.dashboard.app"


@dataclass(frozen=True)
class DashboardConfig:
    """A live scenario (``spec`` set) or a recording to replay (``recording`` set)."""

    spec: Any = None  # ScenarioSpec
    recording: Path | None = None
    llm_model: str | None = None

    @property
    def mode(self) -> str:
        """"live" or "replay"."""
        return "replay" if self.recording is not None else "live"


_config: DashboardConfig | None = None


def configure(config: DashboardConfig) -> None:
    """Set what the pages of this process show."""
    global _config
    _config = config


def current_config() -> DashboardConfig:
    """What the pages show (RuntimeError when `configure` was not called)."""
    if _config is None:
        raise RuntimeError("the dashboard was not configured: start it with `mesa-llm dashboard TARGET`")
    return _config


def is_recording(target: str) -> bool:
    """Whether a dashboard target names a recording (a .jsonl/.json file) rather than a scenario."""
    return Path(target).suffix.lower() in (".jsonl", ".json")


def serve(port: int, host: str, open_browser: bool) -> None:
    """Run the Solara server (blocking) for the configured target."""
    import os

    # Solara reports usage to a telemetry service and checks PyPI for a newer version at start by
    # default: a research tool serving local data does neither (read when solara is imported)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    from solara.__main__ import cli

    args = [
        "run", APP_MODULE, "--port", str(port), "--host", host, "--production", "--no-check-version",
        "--open" if open_browser else "--no-open", "--log-level", "warning",
    ]  # fmt: skip
    cli(args, standalone_mode=False)
