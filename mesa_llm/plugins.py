"""Plugins: discovery of the ``mesa_llm.*`` entry-point groups — lazy, allow-listed, failures reported.

A plugin is an installed distribution that declares entry points in these groups (`GROUPS`):

- ``mesa_llm.scenarios``: a scenario folder (every ``*.yaml`` in it, named by its file stem) or
  file (named by the entry point), given as a path, a module (its folder) or a function returning
  a path;
- ``mesa_llm.policies``: a :class:`~mesa_llm.agents.policies.DecisionPolicy` subclass whose ``name``
  is the entry point's name (usable as ``policy: NAME``);
- ``mesa_llm.metrics``: a function of a recording returning named numbers;
- ``mesa_llm.events``: a :class:`~mesa_llm.timeline_events.CustomEvent` subclass whose ``type`` is
  ``Literal`` of the entry point's name (usable in a scenario's ``timeline``);
- ``mesa_llm.mechanisms``: a :class:`~mesa_llm.mechanisms.base.Mechanism` subclass whose ``name`` is the
  entry point's name (usable as ``mechanisms: [{type: NAME, ...}]`` in a scenario).

Nothing here runs when mesa_llm is imported (Gymnasium 1.0 dropped import-time plugin loading for
that reason): entry points are listed on first need, and a plugin's module is imported only when
something asks for one of its names (or lists them all: ``mesa-llm plugins``, ``mesa-llm
scenarios``, the metrics of ``analyze``). A plugin that fails to import is reported (status
``failed`` and a one-line reason) and breaks nothing that does not use it; a name that clashes with
a built-in or with another plugin's is refused.

``MESA_LLM_PLUGINS`` restricts loading to the distributions it names (comma-separated; set but empty:
none), as ``LLM_LOAD_PLUGINS`` does for Simon Willison's ``llm``; ``mesa-llm --no-plugins`` loads
none. Plugin state is an explicit :class:`Plugins` object; :func:`current_plugins` is the process's
one, built on first use (from the environment) and swapped by :func:`using_plugins`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import inspect
import os
import re
import sys
import threading
import typing
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

#: the environment variable that restricts plugin loading to some distributions
ENV_VAR = "MESA_LLM_PLUGINS"
#: entry-point groups are this prefix + a group's name
GROUP_PREFIX = "mesa_llm."
#: longest failure reason kept (one line)
MAX_REASON_CHARS = 300

# statuses of a PluginEntry
AVAILABLE = "available"  # discovered, not imported yet
LOADED = "loaded"
FAILED = "failed"  # its import raised, or it is not what its group holds
REFUSED = "refused"  # its name clashes with a built-in or with another plugin's


class PluginError(ValueError):
    """A plugin that cannot be used: one line naming the group, the name and the distribution."""


# --------------------------------------------------------------------------- what each group holds


def _scenario_files(name: str, obj: Any) -> dict[str, Path]:
    """Scenario name -> file, from a path, a module (its folder) or a function returning a path."""
    if isinstance(obj, ModuleType):
        where = getattr(obj, "__file__", None)
        obj = Path(where).parent if where else Path(next(iter(obj.__path__)))
    elif callable(obj) and not isinstance(obj, str | os.PathLike):
        obj = obj()
    if not isinstance(obj, str | os.PathLike):
        raise PluginError(
            f"expected a scenario folder or file (a path, a module, or a function returning a path), "
            f"got {type(obj).__name__}"
        )
    path = Path(obj)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise PluginError(f"no .yaml scenario file in {path}")
        return {p.stem: p for p in files}
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return {name: path}
    raise PluginError(f"{path} is not a scenario folder or .yaml file")


def _policy_class(name: str, obj: Any) -> Any:
    from mesa_llm.agents.policies.base import DecisionPolicy

    if not (isinstance(obj, type) and issubclass(obj, DecisionPolicy)):
        raise PluginError(f"expected a DecisionPolicy subclass, got {_what(obj)}")
    if inspect.isabstract(obj):
        raise PluginError(f"{obj.__name__} is abstract (does it implement decide()?)")
    if obj.name != name:
        raise PluginError(f"{obj.__name__}.name is {obj.name!r}, not the entry point's name {name!r}")
    if obj.is_llm:
        raise PluginError(f"{obj.__name__} sets is_llm: the model drives only its own LLM loop")
    return obj


def _metric_function(name: str, obj: Any) -> Any:
    if not callable(obj) or isinstance(obj, type):
        raise PluginError(f"expected a function of a recording, got {_what(obj)}")
    try:
        inspect.signature(obj).bind(None)
    except TypeError:
        raise PluginError(f"{_what(obj)} must take one argument, the recording") from None
    except ValueError:  # no signature to read (a builtin): trust it
        pass
    return obj


def _event_class(name: str, obj: Any) -> Any:
    from mesa_llm.timeline_events import CustomEvent

    if not (isinstance(obj, type) and issubclass(obj, CustomEvent)):
        raise PluginError(f"expected a CustomEvent subclass, got {_what(obj)}")
    field_info = obj.model_fields.get("type")
    if field_info is None or typing.get_args(field_info.annotation) != (name,):
        raise PluginError(f"{obj.__name__}.type must be Literal[{name!r}] (the entry point's name)")
    if obj.apply is CustomEvent.apply:
        raise PluginError(f"{obj.__name__} does not implement apply()")
    return obj


def _mechanism_class(name: str, obj: Any) -> Any:
    from mesa_llm.actions import ACTION_CLASSES, ActionBase
    from mesa_llm.mechanisms.base import Mechanism

    if not (isinstance(obj, type) and issubclass(obj, Mechanism)):
        raise PluginError(f"expected a Mechanism subclass, got {_what(obj)}")
    if inspect.isabstract(obj):
        raise PluginError(f"{obj.__name__} is abstract")
    if obj.name != name:
        raise PluginError(f"{obj.__name__}.name is {obj.name!r}, not the entry point's name {name!r}")
    field_info = obj.Params.model_fields.get("type")
    if field_info is None or typing.get_args(field_info.annotation) != (name,):
        raise PluginError(f"{obj.__name__}.Params.type must be Literal[{name!r}] (the entry point's name)")
    builtin_tools = {c.tool_name for c in ACTION_CLASSES}
    for action in obj.actions:
        if not (isinstance(action, type) and issubclass(action, ActionBase)) or not action.tool_name:
            raise PluginError(f"{obj.__name__}.actions holds {_what(action)}, not an ActionBase subclass with a tool_name")
        if action.tool_name in builtin_tools:
            raise PluginError(f"action {action.tool_name!r} of {obj.__name__} clashes with a built-in action")
        tag = action.model_fields.get("type")
        if tag is None or typing.get_args(tag.annotation) != (action.tool_name,):
            raise PluginError(f"{action.__name__}.type must be Literal[{action.tool_name!r}] (its tool_name)")
    return obj


def _anything(name: str, obj: Any) -> Any:
    return obj


def _what(obj: Any) -> str:
    return obj.__name__ if isinstance(obj, type) else f"{type(obj).__name__} {obj!r}"[:80]


@dataclass(frozen=True)
class PluginGroup:
    """One entry-point group: its name (``mesa_llm.<name>``), the noun for messages, and the
    check turning a loaded object into what the group holds (or raising PluginError)."""

    name: str
    noun: str
    check: Callable[[str, Any], Any] = _anything

    @property
    def entry_point_group(self) -> str:
        """The group as written in a plugin's ``pyproject.toml``."""
        return GROUP_PREFIX + self.name


#: the groups plugins may fill; a new group is one more line
GROUPS: dict[str, PluginGroup] = {
    g.name: g
    for g in (
        PluginGroup("scenarios", "scenario", _scenario_files),
        PluginGroup("policies", "policy", _policy_class),
        PluginGroup("metrics", "metric", _metric_function),
        PluginGroup("events", "event type", _event_class),
        PluginGroup("mechanisms", "mechanism", _mechanism_class),
    )
}


# --------------------------------------------------------------------------- entries


def normalize_distribution(name: str) -> str:
    """A distribution name as pip compares them (PEP 503: case and ``-_.`` runs do not matter)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@dataclass
class PluginEntry:
    """One entry point of an allowed distribution, and what became of it."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    status: str = AVAILABLE
    reason: str | None = None
    #: what the group holds once loaded (a class, a function, {scenario name: file})
    obj: Any = field(default=None, repr=False, compare=False)
    _entry_point: metadata.EntryPoint | None = field(default=None, repr=False, compare=False)

    @property
    def origin(self) -> str:
        """``distribution version``, for messages."""
        return f"{self.distribution} {self.version}"

    @property
    def usable(self) -> bool:
        """Loaded and not refused."""
        return self.status == LOADED

    def provides(self) -> list[str]:
        """The names this entry gives its group (a scenario folder gives several)."""
        if self.group == "scenarios":  # known once loaded: a folder's file stems
            return sorted(self.obj) if isinstance(self.obj, dict) else []
        return [self.name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``mesa-llm plugins --json``)."""
        return {
            "group": GROUP_PREFIX + self.group,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "value": self.value,
            "status": self.status,
            "reason": self.reason,
        }

    def header(self) -> dict[str, str]:
        """What a recording's header says about a plugin a run used."""
        return {
            "group": GROUP_PREFIX + self.group,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
        }


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


class Plugins:
    """The plugins this process may use: entry points listed once per group, each imported on
    first need, failures and refusals kept on its :class:`PluginEntry`.

    ``allow`` restricts loading to those distributions (None: every installed one); ``enabled``
    False loads none; ``path`` looks for distributions on these folders instead of ``sys.path``
    (tests).
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        enabled: bool = True,
        path: list[str] | None = None,
    ) -> None:
        self.enabled = enabled
        self.allow = None if allow is None else frozenset(normalize_distribution(a) for a in allow if a.strip())
        self.path = list(path) if path is not None else None
        self._entries: dict[str, list[PluginEntry]] = {}
        self._all: Any = None  # importlib.metadata's selectable entry points
        self._hidden: dict[str, int] = {}
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Plugins:
        """Plugins as ``MESA_LLM_PLUGINS`` says: unset, every installed one; a comma-separated list
        of distributions, only those; set but empty, none."""
        env = os.environ if environ is None else environ
        value = env.get(ENV_VAR)
        if value is None:
            return cls()
        names = [n.strip() for n in value.split(",") if n.strip()]
        return cls(allow=names, enabled=bool(names))

    def settings(self) -> dict[str, Any]:
        """Plain data that rebuilds these settings in another process (a sweep's workers)."""
        return {
            "enabled": self.enabled,
            "allow": sorted(self.allow) if self.allow is not None else None,
            "path": self.path,
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Plugins:
        """The inverse of :meth:`settings`."""
        return cls(allow=settings.get("allow"), enabled=bool(settings.get("enabled", True)), path=settings.get("path"))

    def describe_settings(self) -> str:
        """Which plugins are allowed, in words (for notes)."""
        if not self.enabled:
            return "plugins are disabled (--no-plugins, or MESA_LLM_PLUGINS set but empty)"
        if self.allow is not None:
            return f"MESA_LLM_PLUGINS allows only {', '.join(sorted(self.allow))}"
        return "every installed plugin is allowed"

    # ---------------------------------------------------------------- discovery (metadata only)

    def allowed(self, distribution: str) -> bool:
        """Whether plugins of ``distribution`` may load."""
        return self.enabled and (self.allow is None or normalize_distribution(distribution) in self.allow)

    def _entry_points(self, group: str) -> list[metadata.EntryPoint]:
        if self.path is not None:
            return [ep for dist in metadata.distributions(path=self.path) for ep in dist.entry_points if ep.group == group]
        if self._all is None:  # one scan of the installed distributions for every group
            self._all = metadata.entry_points()
        return list(self._all.select(group=group))

    def entries(self, group: str) -> list[PluginEntry]:
        """The entry points of allowed distributions in ``group`` (not imported), ordered by
        distribution then name; of two with the same name, the first keeps it, the other is refused."""
        if group not in GROUPS:
            raise KeyError(f"unknown plugin group {group!r}; groups: {', '.join(GROUPS)}")
        with self._lock:
            if group in self._entries:
                return self._entries[group]
            found: dict[tuple[str, str], PluginEntry] = {}
            hidden = 0
            for ep in self._entry_points(GROUPS[group].entry_point_group):
                dist = ep.dist
                dist_name = dist.name if dist is not None else "(unknown distribution)"
                version = dist.version if dist is not None else "?"
                if not self.allowed(dist_name):
                    hidden += 1
                    continue
                key = (normalize_distribution(dist_name), ep.name)
                # the same distribution seen twice on the path: the first wins, as for imports
                found.setdefault(key, PluginEntry(group, ep.name, ep.value, dist_name, version, _entry_point=ep))
            ordered = sorted(found.values(), key=lambda e: (normalize_distribution(e.distribution), e.name))
            owner: dict[str, PluginEntry] = {}
            for entry in ordered:
                first = owner.setdefault(entry.name, entry)
                if first is not entry:
                    self._refuse(entry, f"{GROUPS[group].noun} {entry.name!r} is also provided by {first.origin}")
            self._entries[group] = ordered
            self._hidden[group] = hidden
            return ordered

    def hidden(self, group: str) -> int:
        """Entry points of ``group`` whose distribution is not allowed (not listed, not loaded)."""
        self.entries(group)
        return self._hidden.get(group, 0)

    def find(self, group: str, name: str) -> PluginEntry | None:
        """The allowed entry named ``name`` in ``group`` (not imported), or None."""
        for entry in self.entries(group):
            if entry.name == name and entry.status != REFUSED:
                return entry
        return None

    def names(self, group: str, builtin: Collection[str] = ()) -> list[str]:
        """Names of ``group`` plugins may still give (not failed or refused, no built-in clash)."""
        return sorted(
            e.name for e in self.entries(group) if e.status in (AVAILABLE, LOADED) and e.name not in builtin
        )

    # ---------------------------------------------------------------- loading

    def _refuse(self, entry: PluginEntry, reason: str) -> None:
        entry.status = REFUSED
        entry.reason = _one_line(reason)
        entry.obj = None

    def refuse_builtin(self, entry: PluginEntry, clashes: Collection[str]) -> bool:
        """Refuse ``entry`` if a name it gives is a built-in one (True if refused)."""
        noun = GROUPS[entry.group].noun
        clash = sorted(set(entry.provides()) & set(clashes))
        if not clash or entry.status == REFUSED:
            return entry.status == REFUSED
        self._refuse(entry, f"{noun} {clash[0]!r} clashes with a built-in {noun}; rename it in the plugin")
        return True

    def load(self, entry: PluginEntry) -> PluginEntry:
        """Import ``entry`` once (its status then says loaded or failed, with the reason)."""
        with self._lock:
            if entry.status != AVAILABLE:
                return entry
            ep = entry._entry_point
            assert ep is not None
            try:
                # a plugin printing at import must not corrupt a command's JSON on stdout
                with contextlib.redirect_stdout(sys.stderr):
                    obj = ep.load()
                entry.obj = GROUPS[entry.group].check(entry.name, obj)
                entry.status = LOADED
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of foreign code is reported, not raised
                entry.status = FAILED
                message = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
                entry.reason = _one_line(message)
                entry.obj = None
            return entry

    def lookup(self, group: str, name: str, builtin: Collection[str] = ()) -> PluginEntry | None:
        """The entry named ``name`` of ``group``, imported now (see its status), or None when no
        allowed plugin has that name. A name in ``builtin`` is refused."""
        entry = self.find(group, name)
        if entry is None:
            return None
        if self.refuse_builtin(entry, builtin):
            return entry
        return self.load(entry)

    def require(self, group: str, name: str, builtin: Collection[str] = ()) -> Any:
        """What the plugin named ``name`` gives ``group``; PluginError (one line) if there is none
        or it failed or was refused."""
        entry = self.lookup(group, name, builtin)
        noun = GROUPS[group].noun
        if entry is None:
            raise PluginError(f"no plugin {noun} {name!r}")
        if not entry.usable:
            raise PluginError(f"plugin {noun} {name!r} ({entry.origin}) {entry.status}: {entry.reason}")
        return entry.obj

    def load_group(self, group: str, builtin: Collection[str] = ()) -> list[PluginEntry]:
        """Import every allowed entry of ``group``; refuse those giving a built-in name or a name
        an earlier entry gives (a scenario folder gives several)."""
        with self._lock:
            taken: dict[str, PluginEntry] = {}
            for entry in self.entries(group):
                if entry.status == REFUSED or self.refuse_builtin(entry, builtin):
                    continue
                self.load(entry)
                if not entry.usable or self.refuse_builtin(entry, builtin):
                    continue
                clash = next((n for n in entry.provides() if n in taken), None)
                if clash is not None:
                    noun = GROUPS[group].noun
                    self._refuse(entry, f"{noun} {clash!r} is also provided by {taken[clash].origin}")
                    continue
                taken.update(dict.fromkeys(entry.provides(), entry))
            return self.entries(group)

    def usable(self, group: str, builtin: Collection[str] = ()) -> list[PluginEntry]:
        """The loaded, not refused entries of ``group`` (importing them now)."""
        return [e for e in self.load_group(group, builtin) if e.usable]

    def all_entries(self) -> list[PluginEntry]:
        """Every entry of every group, in group order (whatever was loaded so far)."""
        return [e for group in GROUPS for e in self.entries(group)]


# --------------------------------------------------------------------------- the process's plugins

_state_lock = threading.Lock()
_override: list[Plugins] = []  # a stack: using_plugins() pushes, leaving pops
_cached: dict[str | None, Plugins] = {}  # keyed by the MESA_LLM_PLUGINS value it was built from


def current_plugins() -> Plugins:
    """This process's plugins: the innermost :func:`using_plugins`, else one built from
    ``MESA_LLM_PLUGINS`` on first use (rebuilt if the variable changes)."""
    with _state_lock:
        if _override:
            return _override[-1]
        key = os.environ.get(ENV_VAR)
        plugins = _cached.get(key)
        if plugins is None:
            _cached.clear()
            plugins = _cached[key] = Plugins.from_environment()
        return plugins


@contextlib.contextmanager
def using_plugins(plugins: Plugins) -> Iterator[Plugins]:
    """Make ``plugins`` the process's plugins inside the block (``--no-plugins``, tests, a sweep's
    workers), then restore what was there."""
    with _state_lock:
        _override.append(plugins)
    try:
        yield plugins
    finally:
        with _state_lock:
            _override.remove(plugins)


def reset_plugins() -> None:
    """Forget the discovered entry points (e.g. after installing a plugin in this process)."""
    with _state_lock:
        _cached.clear()


# --------------------------------------------------------------------------- runs and recordings


def plugins_used(spec: Any, plugins: Plugins | None = None) -> list[dict[str, str]]:
    """The plugins a scenario's run uses (group, name, distribution, version), for the recording
    header: the plugin policies its populations name (also as fallbacks), the plugin event types
    of its timeline, its plugin mechanisms, and the plugin whose folder it was loaded from."""
    from mesa_llm.timeline_events import CustomEvent

    plugins = plugins if plugins is not None else current_plugins()
    used: list[PluginEntry] = []
    policies = set()
    for pop in spec.populations:
        policies.add(pop.policy_name)
        if pop.fallback is not None:
            policies.add(pop.fallback.policy)
    for name in sorted(policies):
        entry = plugins.find("policies", name)
        if entry is not None and entry.usable:
            used.append(entry)
    for name in sorted({e.type for e in spec.timeline if isinstance(e, CustomEvent)}):
        entry = plugins.find("events", name)
        if entry is not None and entry.usable:
            used.append(entry)
    for name in sorted({m.type for m in getattr(spec, "mechanisms", [])}):
        entry = plugins.find("mechanisms", name)
        if entry is not None and entry.usable:
            used.append(entry)
    source_dir = getattr(spec, "source_dir", None)
    if source_dir is not None and plugins.entries("scenarios"):
        folder = Path(source_dir).resolve()
        for entry in plugins.usable("scenarios"):
            if any(Path(p).resolve().parent == folder for p in entry.obj.values()):
                used.append(entry)
                break
    return [e.header() for e in used]


def recorded_plugin_problems(recorded: Any, plugins: Plugins | None = None) -> tuple[list[str], list[str]]:
    """What a replay needs to know about the plugins a recording's header names: (errors, notes).

    An error (one line per distribution) is a plugin policy or event type that is not available
    now — not installed, not allowed, failed to load, or given by another distribution: the run
    cannot be rebuilt without it. A note is a plugin whose version differs from the recorded one,
    or a scenario plugin that is gone (the recording holds the resolved scenario, which is used)."""
    plugins = plugins if plugins is not None else current_plugins()
    missing: dict[tuple[str, str], tuple[list[str], str]] = {}
    notes: list[str] = []
    for item in recorded if isinstance(recorded, list) else []:
        if not isinstance(item, Mapping):
            continue
        group = str(item.get("group", "")).removeprefix(GROUP_PREFIX)
        name, dist, version = (str(item.get(k, "?")) for k in ("name", "distribution", "version"))
        if group not in GROUPS:
            continue
        if group == "scenarios":
            entry = next((e for e in plugins.entries(group) if e.name == name), None)
            if entry is not None:
                plugins.load(entry)
        else:
            entry = plugins.lookup(group, name)
        if entry is not None and entry.usable and normalize_distribution(entry.distribution) == normalize_distribution(dist):
            if entry.version != version:
                notes.append(f"recorded with plugin {dist} {version}, installed {entry.version}: results may differ")
            continue
        if group == "scenarios":
            notes.append(f"the scenario came from plugin {dist} {version}, not available here: the recorded scenario is used")
            continue
        needs, _ = missing.setdefault((dist, version), ([], _unavailable(plugins, dist, entry)))
        needs.append(f"{GROUPS[group].noun} {name!r}")
    errors = [
        f"the recording needs plugin {dist} {version} ({', '.join(needs)}), which {why}"
        for (dist, version), (needs, why) in missing.items()
    ]
    return errors, list(dict.fromkeys(notes))


def _unavailable(plugins: Plugins, dist: str, entry: PluginEntry | None) -> str:
    """Why a recorded plugin is not available here, in words."""
    if entry is not None and normalize_distribution(entry.distribution) == normalize_distribution(dist):
        return f"{entry.status} here: {entry.reason}"
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return f"is not installed (pip install '{dist}' to replay)"
    if not plugins.allowed(dist):
        return f"is installed but not allowed here ({plugins.describe_settings()})"
    return "is installed but does not provide it (another version?)"


__all__ = [
    "ENV_VAR",
    "GROUPS",
    "PluginEntry",
    "PluginError",
    "PluginGroup",
    "Plugins",
    "current_plugins",
    "plugins_used",
    "recorded_plugin_problems",
    "reset_plugins",
    "using_plugins",
]
