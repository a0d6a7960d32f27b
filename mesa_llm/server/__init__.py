"""The REST + WebSocket API for other programs (``mesa-llm serve``; the ``server`` extra).

Every operation goes through `mesa_llm.Simulation`: this package builds no model of its own. It
imports FastAPI only when `create_app` is first used, so ``import mesa_llm.server`` is cheap and
does nothing at import time.

    from mesa_llm.server import ServerSettings, create_app
    app = create_app(ServerSettings(recordings=Path("recordings")))   # any ASGI server runs it
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mesa_llm.server.settings import ServerSettings

if TYPE_CHECKING:
    from mesa_llm.server.app import create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    """`create_app` imports FastAPI: only on first use (PEP 562)."""
    if name == "create_app":
        value = importlib.import_module("mesa_llm.server.app").create_app
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
