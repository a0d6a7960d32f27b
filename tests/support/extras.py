"""Optional extras in tests: why a test cannot run here, and whether CI requires it to.

The `requires(...)` marker in tests/conftest.py uses `missing_reason` per test; modules that
import an optional package at the top call `skip_module_unless` instead, with the same rule:
skip without the extra unless MESA_LLM_REQUIRE_<EXTRA>=1 (set by .ci/run), then fail.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

CHROMIUM = "/usr/bin/chromium"


def missing_reason(extra: str, *modules: str, chromium: bool = False, install: str | None = None) -> str | None:
    """Why the extra is not usable here (modules not importable, Chromium absent), or None;
    ``install`` is the command that installs the modules (default: the extra of mesa_llm)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        command = install or f"pip install -e '.[{extra}]'"
        return f"needs {', '.join(missing)} ({command})"
    if chromium and not os.access(CHROMIUM, os.X_OK):
        return f"needs {CHROMIUM} (apt-get install -y chromium)"
    return None


def required(extra: str) -> bool:
    """Whether CI asked for ``extra`` to be present (MESA_LLM_REQUIRE_<EXTRA>=1)."""
    return os.environ.get(f"MESA_LLM_REQUIRE_{extra.upper()}") == "1"


def skip_module_unless(extra: str, *modules: str, chromium: bool = False, also_required_by: tuple[str, ...] = ()) -> None:
    """At a test module's top: skip the module without the extra, or raise when CI requires it
    (the extra itself or any of ``also_required_by``)."""
    reason = missing_reason(extra, *modules, chromium=chromium)
    if reason is None:
        return
    for name in (extra, *also_required_by):
        if required(name):
            raise RuntimeError(f"MESA_LLM_REQUIRE_{name.upper()}=1 but it {reason}")
    pytest.skip(reason, allow_module_level=True)
