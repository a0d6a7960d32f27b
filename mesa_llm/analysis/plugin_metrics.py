"""Metrics from plugins (the ``mesa_llm.metrics`` entry points): functions of a recording returning
named numbers, shown by ``analyze`` (``plugins.<metric>.<key>``), the reports and `compare`, and
added to every sweep row as columns of the same names.

A plugin metric runs on foreign code and a recording it may not expect: whatever it raises or
returns that is not ``{name: number or None}`` becomes one line in ``errors`` and a None value,
never a crash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesa_llm.analysis.loader import Recording
from mesa_llm.plugins import Plugins, current_plugins

#: a metric's keys become column names (``plugins.<metric>.<key>``): no dots, no spaces
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: most keys one metric may return
MAX_KEYS = 100


@dataclass
class PluginMetrics:
    """The values of every allowed plugin metric (None where it failed) and one line per failure."""

    values: dict[str, dict[str, float | int | None] | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def flat(self) -> dict[str, float | int | None]:
        """``{"plugins.<metric>.<key>": value}``; a failed metric is ``plugins.<metric>: None``."""
        out: dict[str, float | int | None] = {}
        for name, values in self.values.items():
            if values is None:
                out[f"plugins.{name}"] = None
            else:
                out.update({f"plugins.{name}.{key}": value for key, value in values.items()})
        return out


def _checked(result: Any) -> dict[str, float | int | None]:
    """The metric's answer as {key: finite number or None}; ValueError (one line) if it is not one."""
    if not isinstance(result, Mapping):
        raise ValueError(f"returned {type(result).__name__}, not a dict of named numbers")
    if len(result) > MAX_KEYS:
        raise ValueError(f"returned {len(result)} values (at most {MAX_KEYS})")
    out: dict[str, float | int | None] = {}
    for key, value in result.items():
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"key {str(key)[:40]!r} is not 1-64 letters, digits, '_' or '-'")
        if isinstance(value, bool):
            value = int(value)
        elif hasattr(value, "item") and not isinstance(value, int | float):
            value = value.item()  # a numpy scalar
        if value is not None and not isinstance(value, int | float):
            raise ValueError(f"{key!r} is {type(value).__name__}, not a number or None")
        out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out


def plugin_metrics(rec: Recording, plugins: Plugins | None = None) -> PluginMetrics:
    """Run every allowed plugin metric on ``rec``."""
    plugins = plugins if plugins is not None else current_plugins()
    out = PluginMetrics()
    if not plugins.entries("metrics"):
        return out
    for entry in plugins.load_group("metrics"):
        if entry.status == "refused":
            continue  # another plugin has the name: `mesa-llm plugins` says so
        where = f"plugin metric {entry.name!r} ({entry.origin})"
        if not entry.usable:
            out.values[entry.name] = None
            out.errors.append(f"{where} {entry.status}: {entry.reason}")
            continue
        try:
            out.values[entry.name] = _checked(entry.obj(rec))
        except Exception as exc:  # noqa: BLE001 - foreign code: one line and None, never a crash
            out.values[entry.name] = None
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            out.errors.append(f"{where} failed: {reason}")
    return out


def plugin_columns(recording: str | Path | None, plugins: Plugins | None = None) -> PluginMetrics:
    """The plugin metrics of a run's recording file, for a sweep's row (nothing without plugins or
    a recording; a recording that does not load is one error line)."""
    plugins = plugins if plugins is not None else current_plugins()
    if recording is None or not plugins.entries("metrics"):
        return PluginMetrics()
    from mesa_llm.analysis.loader import load_recording

    try:
        rec = load_recording(recording)
    except Exception as exc:  # noqa: BLE001 - the run's row stays; its plugin columns are None
        out = PluginMetrics(values={e.name: None for e in plugins.entries("metrics") if e.status != "refused"})
        out.errors.append(f"plugin metrics: cannot load {recording}: {' '.join(str(exc).split())[:300]}")
        return out
    return plugin_metrics(rec, plugins)


__all__ = ["PluginMetrics", "plugin_columns", "plugin_metrics"]
