"""The recordings the server serves: files of its recordings folder only, read through
`mesa_llm.analysis` (every field checked as any recording read back is).

A name is a plain file name (``*.jsonl`` stream or ``*.json`` export) of a regular file directly
in the folder: no separators, no ``..``, no symbolic link (a link could lead out of the folder),
no device or FIFO. Loaded recordings are cached by (name, size, modification time), so a
recording still being written is read afresh when it has grown.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mesa_llm.server.errors import ApiError
from mesa_llm.server.settings import MAX_EVENTS_PAGE
from mesa_llm.server.stream import finite

#: a recording's name: a file name the recorder could have written
RECORDING_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}\.jsonl?")
#: recordings kept loaded at once
CACHE_SIZE = 4
#: files listed at most (newest first)
MAX_LISTED = 10_000


class RecordingStore:
    """The recordings folder: list it, read a recording's events by page, summarise one."""

    def __init__(self, folder: Path, cache_size: int = CACHE_SIZE) -> None:
        """Serve the recordings directly in ``folder``."""
        self.folder = Path(folder)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self) -> list[dict[str, Any]]:
        """Every recording in the folder (name, bytes, modified as seconds since the epoch), newest first."""
        rows: list[dict[str, Any]] = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ApiError(500, f"the recordings folder cannot be read: {exc.strerror or exc}") from None
        for entry in entries:
            if not RECORDING_NAME.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                rows.append({"name": entry.name, "bytes": info.st_size, "modified": info.st_mtime})
        rows.sort(key=lambda r: (-r["modified"], r["name"]))
        return rows[:MAX_LISTED]

    def path(self, name: str) -> tuple[Path, os.stat_result]:
        """The file of recording ``name`` (ApiError 400 for a name that is not a plain recording
        file name, 404 when there is no such regular file in the folder)."""
        if not isinstance(name, str) or not RECORDING_NAME.fullmatch(name) or ".." in name:
            raise ApiError(
                400,
                "recording name: a .jsonl or .json file name of the recordings folder (letters, digits, "
                "'_', '-', '.', '+'; no path)",
            )
        path = self.folder / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise ApiError(404, f"no recording {name!r} (GET /api/recordings lists them)") from None
        except OSError as exc:
            raise ApiError(404, f"recording {name!r} cannot be read: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ApiError(404, f"no recording {name!r}: not a regular file of the recordings folder")
        return path, info

    def load(self, name: str) -> Any:
        """The `mesa_llm.analysis.Recording` of ``name`` (cached); ApiError 422 when it is corrupt."""
        from mesa_llm.analysis import load_recording
        from mesa_llm.recording import RecordingError

        path, info = self.path(name)
        key = (name, info.st_size, info.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        try:
            rec = load_recording(path)
        except RecordingError as exc:
            # named by its name in the folder, not by the server's path
            raise ApiError(422, str(exc).replace(str(path), name)) from None
        with self._lock:
            for old in [k for k in self._cache if k[0] == name]:
                del self._cache[old]
            self._cache[key] = rec
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return rec

    def events(
        self,
        name: str,
        *,
        from_step: int | None = None,
        to_step: int | None = None,
        event_types: list[str] | None = None,
        agent_id: int | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """One page of a recording's events, in recording order, filtered by step range
        (inclusive), event types and agent."""
        from mesa_llm.recording import RecordingError

        if not 1 <= limit <= MAX_EVENTS_PAGE:
            raise ApiError(422, f"limit: between 1 and {MAX_EVENTS_PAGE}, not {limit}")
        if offset < 0:
            raise ApiError(422, f"offset: at least 0, not {offset}")
        rec = self.load(name)
        try:
            frame = rec.events
            mask = np.ones(len(frame), dtype=bool)
            steps = frame["step"].to_numpy()
            if from_step is not None:
                mask &= steps >= from_step
            if to_step is not None:
                mask &= steps <= to_step
            if event_types:
                mask &= frame["event_type"].isin(event_types).to_numpy()
            if agent_id is not None:
                mask &= (frame["agent_id"] == agent_id).fillna(False).to_numpy(dtype=bool)
            rows = np.flatnonzero(mask)
            page = rows[offset : offset + limit]
            events = []
            for i in page:
                agent = frame["agent_id"].iat[i]
                events.append(
                    finite(
                        {
                            "event_id": str(frame["event_id"].iat[i]),
                            "timestamp": frame["timestamp"].iat[i].isoformat(),
                            "step": int(steps[i]),
                            "agent_id": None if pd.isna(agent) else int(agent),
                            "event_type": str(frame["event_type"].iat[i]),
                            "content": dict(frame["content"].iat[i]),
                        }
                    )
                )
        except RecordingError as exc:
            raise ApiError(422, str(exc).replace(str(rec.path), name)) from None
        end = offset + len(page)
        return {
            "recording": name,
            "total": int(len(rows)),
            "offset": offset,
            "limit": limit,
            "next_offset": end if end < len(rows) else None,
            "events": events,
        }

    def summary(self, name: str) -> dict[str, Any]:
        """`mesa_llm.analysis.summary_metrics` of a recording (JSON-ready)."""
        from mesa_llm.analysis import summary_metrics
        from mesa_llm.recording import RecordingError

        rec = self.load(name)
        try:
            return dict(finite(summary_metrics(rec)))
        except RecordingError as exc:
            raise ApiError(422, str(exc).replace(str(rec.path), name)) from None


__all__ = ["RECORDING_NAME", "RecordingStore"]
