"""The ``rl`` extra's libraries, imported on first need with a one-line error when missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class RLDependencyError(ImportError):
    """A library of the ``rl`` (or ``rllib``) extra is not installed."""


def require(module: str, extra: str = "rl") -> ModuleType:
    """Import ``module`` or raise `RLDependencyError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise RLDependencyError(f"{top} is not installed: learning agents need pip install 'mesa_llm[{extra}]' ({exc})") from None


__all__ = ["RLDependencyError", "require"]
