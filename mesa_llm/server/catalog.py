"""What the server can offer: scenarios, decision policies (built-in and plugin) and RL checkpoints.

RL checkpoints go through a small protocol, so the server does not depend on how `mesa_llm.rl`
(the ``rl`` extra) stores them: the files and folders directly in the checkpoints folder are
listed when `mesa_llm.rl` is importable, and one is loaded on first use with
``mesa_llm.rl.load_checkpoint(path)``, which returns an object whose ``act(observation)`` maps an
observation (``Observation.to_dict()``) to one action dict or a list of them. Without
`mesa_llm.rl` (or without ``load_checkpoint`` in it) asking for an action is a 501.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mesa_llm.server.errors import ApiError, one_line
from mesa_llm.server.stream import finite

#: a checkpoint's name: a plain file or folder name of the checkpoints folder
CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}")
#: checkpoints kept loaded at once
LOADED_CHECKPOINTS = 4
#: actions one checkpoint answer may hold
MAX_ACTIONS = 100


def scenarios() -> list[dict[str, Any]]:
    """Every shipped and plugin scenario: name, one-line description, plugin (empty when shipped)."""
    from mesa_llm.plugin_commands import scenario_rows

    rows, _notes = scenario_rows()
    return [{"name": name, "description": description, "plugin": plugin or None} for name, description, plugin in rows]


def policies() -> list[dict[str, Any]]:
    """Every decision policy a population can name: built-in ones, then plugin ones (a plugin
    that failed to load is listed with its reason)."""
    from mesa_llm.agents.policies import builtin_policy_registry, default_policy_registry
    from mesa_llm.agents.policies.base import UnknownPolicyError
    from mesa_llm.plugins import current_plugins

    builtin = set(builtin_policy_registry().names())
    origins = {e.name: e.origin for e in current_plugins().entries("policies")}
    registry = default_policy_registry()
    rows = []
    for name in registry.names():
        row: dict[str, Any] = {"name": name, "source": "builtin" if name in builtin else "plugin"}
        if name not in builtin:
            row["plugin"] = origins.get(name)
        try:
            cls = registry.get(name)
        except UnknownPolicyError as exc:
            row.update(status="failed", reason=one_line(exc), summary="", llm=False)
        else:
            row.update(status="loaded", reason=None, summary=cls.summary, llm=bool(cls.is_llm))
        rows.append(row)
    return rows


def rl_available() -> bool:
    """Whether `mesa_llm.rl` (the ``rl`` extra's environments and checkpoints) can be imported."""
    try:
        return importlib.util.find_spec("mesa_llm.rl") is not None
    except (ImportError, ValueError):
        return False


class CheckpointStore:
    """RL checkpoints of one folder: listed, loaded lazily through `mesa_llm.rl`, asked for actions."""

    def __init__(self, folder: Path | None) -> None:
        """``folder``: where checkpoints are (None: the server serves none)."""
        self.folder = Path(folder) if folder is not None else None
        self._loaded: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self) -> dict[str, Any]:
        """The checkpoints (name, kind, bytes, modified) and whether they can be used."""
        available = rl_available()
        out: dict[str, Any] = {"rl_available": available, "folder_configured": self.folder is not None, "checkpoints": []}
        if not available or self.folder is None:
            out["note"] = (
                "RL checkpoints need mesa_llm.rl (pip install 'mesa_llm[rl]')"
                if not available
                else "no checkpoints folder: start the server with --checkpoints DIR"
            )
            return out
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            entries = []
        rows = []
        for entry in entries:
            if not CHECKPOINT_NAME.fullmatch(entry.name) or entry.name.startswith("."):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
                rows.append({"name": entry.name, "kind": kind, "bytes": info.st_size, "modified": info.st_mtime})
        out["checkpoints"] = sorted(rows, key=lambda r: r["name"])
        return out

    def _path(self, name: str) -> tuple[Path, os.stat_result]:
        if self.folder is None:
            raise ApiError(404, "no checkpoints folder: start the server with --checkpoints DIR")
        if not isinstance(name, str) or not CHECKPOINT_NAME.fullmatch(name) or ".." in name:
            raise ApiError(400, "checkpoint name: a file or folder name of the checkpoints folder (no path)")
        path = self.folder / name
        try:
            info = path.lstat()
        except OSError:
            raise ApiError(404, f"no checkpoint {name!r} (GET /api/checkpoints lists them)") from None
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            raise ApiError(404, f"no checkpoint {name!r}: not a regular file or folder of the checkpoints folder")
        return path, info

    def _loader(self) -> Any:
        if not rl_available():
            raise ApiError(501, "RL checkpoints need mesa_llm.rl, which is not installed (pip install 'mesa_llm[rl]')")
        rl = importlib.import_module("mesa_llm.rl")
        load = getattr(rl, "load_checkpoint", None)
        if not callable(load):
            raise ApiError(501, "this mesa_llm.rl has no load_checkpoint(path): the server cannot load checkpoints")
        return load

    def act(self, name: str, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The actions checkpoint ``name`` takes for ``observation``."""
        load = self._loader()
        path, info = self._path(name)
        key = (name, info.st_mtime_ns)
        with self._lock:
            policy = self._loaded.get(key)
        if policy is None:
            try:
                policy = load(path)
            except Exception as exc:  # noqa: BLE001 - a checkpoint that does not load is the client's answer
                raise ApiError(422, f"checkpoint {name!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
            with self._lock:
                self._loaded[key] = policy
                while len(self._loaded) > LOADED_CHECKPOINTS:
                    self._loaded.popitem(last=False)
        try:
            answer = policy.act(dict(observation))
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(422, f"observation: checkpoint {name!r} cannot use it: {type(exc).__name__}: {exc}") from None
        actions = [answer] if isinstance(answer, Mapping) else list(answer or [])
        if len(actions) > MAX_ACTIONS or not all(isinstance(a, Mapping) for a in actions):
            raise ApiError(500, f"checkpoint {name!r} answered something that is not a list of actions")
        return [dict(finite(dict(a))) for a in actions]


__all__ = ["CheckpointStore", "policies", "rl_available", "scenarios"]
