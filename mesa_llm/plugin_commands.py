"""The terminal side of plugins: ``mesa-llm plugins [--json]`` and the plugin rows of ``mesa-llm
scenarios``; cli.py only declares the options."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from mesa_llm.plugins import GROUPS, Plugins, current_plugins


def builtin_names() -> dict[str, set[str]]:
    """The built-in names a plugin may not take, per group (policies, event types, scenarios, mechanisms)."""
    from mesa_llm.agents.policies import builtin_policy_registry
    from mesa_llm.mechanisms.base import BUILTIN_MECHANISMS
    from mesa_llm.scenario import BUILTIN_EVENT_TYPES, shipped_scenarios

    return {
        "policies": set(builtin_policy_registry().names()),
        "events": set(BUILTIN_EVENT_TYPES),
        "scenarios": set(shipped_scenarios()),
        "mechanisms": set(BUILTIN_MECHANISMS),
    }


def plugin_report(plugins: Plugins | None = None) -> list[dict[str, Any]]:
    """Every allowed plugin entry point, imported now, as ``mesa-llm plugins --json`` prints it:
    group, name, distribution, version, value (``module:attribute``), status (loaded, failed,
    refused) and reason (one line, or None)."""
    plugins = plugins if plugins is not None else current_plugins()
    builtin = builtin_names()
    for group in GROUPS:
        plugins.load_group(group, builtin.get(group, ()))
    return [entry.to_dict() for entry in plugins.all_entries()]


def plugins_command(as_json: bool) -> None:
    """List the plugins (a table, or JSON on stdout); a note on stderr when some are not allowed."""
    plugins = current_plugins()
    rows = plugin_report(plugins)
    hidden = sum(plugins.hidden(group) for group in GROUPS)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        console = Console(highlight=False)
        if rows:
            table = Table(title="plugins")
            for column in ("group", "name", "package", "status"):
                table.add_column(column, overflow="fold")
            for row in rows:
                package = f"{row['distribution']}=={row['version']}"
                table.add_row(row["group"].removeprefix("mesa_llm."), row["name"], package, row["status"])
            console.print(table)
            for row in rows:  # the reasons, one line each (a table cell would wrap them)
                if row["reason"]:
                    console.print(
                        f"{row['status']}: {row['group']} {row['name']!r} ({row['distribution']} "
                        f"{row['version']}): {row['reason']}",
                        markup=False,
                        soft_wrap=True,
                    )
        else:
            console.print("no plugins" + ("" if hidden else " installed (entry points of the mesa_llm.* groups)"))
    if hidden or not plugins.enabled:
        Console(stderr=True, highlight=False).print(
            f"note: {hidden} entry point(s) not loaded: {plugins.describe_settings()}", markup=False, soft_wrap=True
        )


def scenario_rows() -> tuple[list[tuple[str, str, str]], list[str]]:
    """(name, description, plugin) of every shipped and plugin scenario, and one note per plugin
    scenario entry that failed or was refused."""
    from mesa_llm.scenario import plugin_scenarios, scenario_summary, shipped_scenarios

    plugins = current_plugins()
    rows = [(name, scenario_summary(path), "") for name, path in shipped_scenarios().items()]
    rows += [(name, scenario_summary(path), origin) for name, (path, origin) in plugin_scenarios(plugins).items()]
    notes = [
        f"plugin scenarios {e.name!r} ({e.origin}) {e.status}: {e.reason}"
        for e in plugins.entries("scenarios")
        if e.status in ("failed", "refused")
    ]
    return rows, notes
