"""Response caches keyed by :meth:`ChatRequest.cache_key`: in memory, or one JSON file per key on disk.

litellm's own cache writes are fire-and-forget and broke on several versions; this one is small,
synchronous and deterministic. A hit returns the stored response marked ``cached=True`` with
``latency_s=0.0``, ``cost_usd=0.0`` and ``attempts=0`` (usage kept, so one can see what it saved).
No pickle: entries are plain JSON, safe to share and inspect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from mesa_llm.llm.types import ChatResponse

logger = logging.getLogger(__name__)

_SAFE_KEY = re.compile(r"[0-9a-f]{16,128}")


@runtime_checkable
class ResponseCache(Protocol):
    """Where answers are kept between identical requests."""

    def get(self, key: str) -> ChatResponse | None:
        """The stored answer marked as a cache hit, or None."""
        ...

    def put(self, key: str, response: ChatResponse) -> None:
        """Store ``response`` under ``key`` (overwrites)."""
        ...


def as_cache_hit(response: ChatResponse) -> ChatResponse:
    """A copy of ``response`` as a cache hit returns it (no latency, cost or attempts)."""
    hit = ChatResponse.from_dict(response.to_dict())
    hit.cached = True
    hit.latency_s = 0.0
    hit.attempt_latencies_s = []
    hit.cost_usd = 0.0
    hit.attempts = 0
    return hit


class MemoryCache:
    """A dict of responses for one process (copies in and out, so callers cannot alter entries)."""

    def __init__(self) -> None:
        self._entries: dict[str, ChatResponse] = {}

    def get(self, key: str) -> ChatResponse | None:
        """The stored answer as a cache hit, or None."""
        stored = self._entries.get(key)
        return as_cache_hit(stored) if stored is not None else None

    def put(self, key: str, response: ChatResponse) -> None:
        """Store a copy of ``response``."""
        self._entries[key] = ChatResponse.from_dict(response.to_dict())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()


class DiskCache:
    """One JSON file per key in ``directory``, written atomically; unreadable files count as misses."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """The file that holds ``key`` (keys that are not hex digests are hashed first)."""
        name = key if _SAFE_KEY.fullmatch(key) else hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.directory / f"{name}.json"

    def get(self, key: str) -> ChatResponse | None:
        """The stored answer as a cache hit; None when absent or unreadable (logged)."""
        path = self.path_for(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cache entry %s unreadable (%s): treated as a miss", path, exc)
            return None
        try:
            data = json.loads(text)
            response = ChatResponse.from_dict(data.get("response", data))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("cache entry %s is corrupt (%s): treated as a miss", path, exc)
            return None
        return as_cache_hit(response)

    def put(self, key: str, response: ChatResponse) -> None:
        """Write the entry to a temporary file in the same folder, then rename it into place."""
        path = self.path_for(key)
        payload = json.dumps({"key": key, "response": response.to_dict()}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for p in self.directory.glob("*.json") if not p.name.startswith("."))
