"""Response caches keyed by :meth:`ChatRequest.cache_key`: in memory, or one JSON file per key on disk.

litellm's own cache writes are fire-and-forget and broke on several versions; this one is small,
synchronous and deterministic. A hit returns the stored response marked ``cached=True`` with
``latency_s=0.0``, ``cost_usd=0.0`` and ``attempts=0`` (usage kept, so one can see what it saved).
No pickle: entries are plain JSON, safe to share and inspect. The memory cache is bounded (least
recently used entries go first); a scenario's disk cache is a folder inside the scenario's folder
(:func:`confined_cache_folder`), as its templates are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import OrderedDict
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


#: default bounds of a memory cache: entries, and characters of their JSON form in all (~64 MB)
MEMORY_CACHE_ENTRIES = 4_096
MEMORY_CACHE_CHARS = 64 * 1024 * 1024


class MemoryCache:
    """Responses of one process, least recently used first out once ``max_entries`` entries or
    ``max_chars`` characters (their JSON form) are held; copies in and out, so callers cannot
    alter entries. A long run with ever new prompts no longer grows it without end."""

    def __init__(self, max_entries: int = MEMORY_CACHE_ENTRIES, max_chars: int = MEMORY_CACHE_CHARS) -> None:
        if max_entries < 1 or max_chars < 1:
            raise ValueError("a memory cache holds at least one entry and one character")
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[str, tuple[ChatResponse, int]] = OrderedDict()
        self._chars = 0

    def get(self, key: str) -> ChatResponse | None:
        """The stored answer as a cache hit (now the most recently used), or None."""
        stored = self._entries.get(key)
        if stored is None:
            return None
        self._entries.move_to_end(key)
        return as_cache_hit(stored[0])

    def put(self, key: str, response: ChatResponse) -> None:
        """Store a copy of ``response``, evicting the least recently used entries past the bounds
        (an answer larger than the whole cache is not kept)."""
        data = response.to_dict()
        size = len(key) + len(json.dumps(data, default=str))
        old = self._entries.pop(key, None)
        if old is not None:
            self._chars -= old[1]
        if size > self.max_chars:
            return
        self._entries[key] = (ChatResponse.from_dict(data), size)
        self._chars += size
        while len(self._entries) > self.max_entries or self._chars > self.max_chars:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._chars -= dropped

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._chars = 0


def cache_setting_problem(value: str) -> str | None:
    """Why ``llm.cache`` = ``value`` cannot name a disk cache folder, judged from the text alone
    (None if it may): ``memory``, or a path relative to the scenario's folder that stays in it."""
    if value == "memory":
        return None
    if not value.strip() or "\x00" in value or len(value) > 255:
        return "must be 'memory' or a folder relative to the scenario's folder"
    if os.path.isabs(value) or value.startswith("~") or Path(value).is_absolute():
        return "must be a folder relative to the scenario's folder (or 'memory'), not an absolute path"
    normal = os.path.normpath(value)
    if normal == ".":
        return "must be a subfolder of the scenario's folder, not the folder itself"
    if normal == ".." or normal.startswith(".." + os.sep):
        return "leaves the scenario's folder"
    return None


def confined_cache_folder(value: str, base: str | os.PathLike[str]) -> Path:
    """The disk cache folder ``value`` names inside ``base`` (the scenario's folder), links
    followed; ValueError naming the setting if it is absolute, leaves ``base`` (through ``..`` or a
    symlink) or is something other than a folder."""
    problem = cache_setting_problem(value)
    if problem is not None:
        raise ValueError(f"llm.cache: {value[:80]!r} {problem}")
    root = Path(base).resolve()
    target = (root / value).resolve()
    if target == root or not target.is_relative_to(root):
        raise ValueError(f"llm.cache: {value[:80]!r} leaves the scenario's folder")
    if target.exists() and not target.is_dir():
        raise ValueError(f"llm.cache: {value[:80]!r} is not a folder")
    return target


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
