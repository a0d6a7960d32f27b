"""The results of a sweep on disk: a journal of rows, and the tables derived from it.

Every finished run is appended to ``DIR/journal.jsonl`` as one JSON line, flushed and fsynced
before the next run is counted, so a sweep killed at any point keeps every row it finished (a
line cut by the kill is the only thing lost, and it is re-run). ``DIR/results.parquet`` and
``DIR/results.csv`` are rebuilt from the journal (latest row per ``run_id``) and replaced
atomically (write a temporary file, then ``os.replace``): a reader never sees half a table, and the
table holds each run exactly once however often it was retried.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

JOURNAL = "journal.jsonl"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
SPEC_COPY = "spec.yaml"
#: the columns every table starts and ends with (factor columns and metrics go between)
LEAD_COLUMNS = ["run_id", "condition"]
MID_COLUMNS = ["replicate", "seed", "status", "error"]
TAIL_COLUMNS = ["prompt_tokens", "completion_tokens", "tokens", "cost_usd", "wall_s", "recording", "key"]
#: statuses a row may carry (mesa_llm.experiments.worker's, without importing it)
STATUSES = frozenset({"ok", "failed", "timeout", "budget_exceeded", "not_run_budget"})
#: integers stored in the tables' Int64 columns
_INT64 = 2**63
Warn = Callable[[str], None]


class StoreError(ValueError):
    """A results folder that cannot be used (another sweep's, corrupt journal); one line."""


class ResultsStore:
    """The journal and tables of one sweep folder."""

    def __init__(self, out_dir: str | Path, warn: Warn | None = None) -> None:
        self.dir = Path(out_dir)
        self.journal = self.dir / JOURNAL
        self._handle: Any = None
        self._lock: Any = None
        self._last_tables = 0.0
        self._warn = warn
        self._warned: set[str] = set()  # the journal is read after every row: each note once

    # ------------------------------------------------------------------ set-up

    def open(self, spec_text: str) -> None:
        """Create the folder, lock it against a second sweep, and copy the spec into it (or check
        that the copy already there is the same spec: a folder holds one sweep)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.dir}: cannot create the results folder ({exc.strerror or exc})") from None
        # a folder someone handed over: what the sweep writes or reads must be its own plain files,
        # not links out (appending rows to ~/.bashrc) or devices (reading /dev/zero without end)
        for name, folder in ((".lock", False), (SPEC_COPY, False), (JOURNAL, False), ("runs", True)):
            problem = _not_own(self.dir / name, folder)
            if problem is not None:
                raise StoreError(f"{self.dir / name}: {problem}: not a sweep folder's own file; use another --out")
        try:
            (self.dir / "runs").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.dir}: cannot create the results folder ({exc.strerror or exc})") from None
        self._lock = _lock(self.dir / ".lock")
        copy = self.dir / SPEC_COPY
        if copy.exists():
            if copy.stat().st_size > 4 * len(spec_text.encode("utf-8")) + 1024 or copy.read_text(
                encoding="utf-8", errors="replace"
            ) != spec_text:
                self.close()
                raise StoreError(
                    f"{self.dir} holds results of a different spec ({copy} differs): use another --out, "
                    "or restore that spec to resume it"
                )
        else:
            _atomic_write_text(copy, spec_text)
        _drop_torn_tail(self.journal)
        self._handle = self.journal.open("a", encoding="utf-8")

    def close(self) -> None:
        """Close the journal and release the folder."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None

    # ------------------------------------------------------------------ rows

    def rows(self) -> dict[str, dict[str, Any]]:
        """The latest valid journal row of every run id (a torn last line, from a kill, is ignored;
        a row of the wrong shape is skipped with a note, so its run runs again)."""
        return {row["run_id"]: row for row in self.read()}

    def read(self) -> Iterator[dict[str, Any]]:
        """The valid rows of the journal in order, each skipped one noted once."""
        return read_journal(self.journal, self._note_once)

    def _note_once(self, text: str) -> None:
        if self._warn is not None and text not in self._warned:
            self._warned.add(text)
            self._warn(text)

    def append(self, row: dict[str, Any]) -> None:
        """Append one row durably (flushed and fsynced) before it counts as done. Non-finite
        numbers are stored as null; a row that still cannot be stored becomes an error row."""
        assert self._handle is not None, "open() the store first"
        clean = _finite(row)
        try:
            text = json.dumps(clean, allow_nan=False, default=str)
            problem = row_problem(json.loads(text))
        except (TypeError, ValueError, RecursionError) as exc:
            text, problem = "", f"{type(exc).__name__}: {exc}"
        if problem is not None:
            error = f"the run's result could not be stored ({problem})"[:500]
            text = json.dumps(_error_row(row, error), allow_nan=False, default=str)
        self._handle.write(text + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def write_tables(self, order: list[str], factor_paths: list[str], *, every_s: float = 0.0) -> bool:
        """Rebuild results.parquet and results.csv from the journal, in plan order (at most once
        per ``every_s`` seconds unless 0); True if written."""
        now = time.monotonic()
        if every_s and now - self._last_tables < every_s:
            return False
        self._last_tables = now
        from mesa_llm.analysis.report import csv_safe

        frame = results_frame(self.rows(), order, factor_paths)
        tmp_csv = self.dir / f".{RESULTS_CSV}.tmp"
        tmp_parquet = self.dir / f".{RESULTS_PARQUET}.tmp"
        csv_safe(frame).to_csv(tmp_csv, index=False)  # levels and errors are text from files: inert there
        frame.to_parquet(tmp_parquet, index=False)
        os.replace(tmp_csv, self.dir / RESULTS_CSV)
        os.replace(tmp_parquet, self.dir / RESULTS_PARQUET)
        return True


def _not_own(path: Path, folder: bool) -> str | None:
    """Why ``path`` (absent is fine) is not a plain file (or folder) of the sweep folder itself."""
    if path.is_symlink():
        return "a symbolic link"
    if not path.exists():
        return None
    if folder:
        return None if path.is_dir() else "not a folder"
    return None if path.is_file() else "not a regular file"


def read_journal(path: Path, warn: Warn | None = None) -> Iterator[dict[str, Any]]:
    """The valid rows of a journal. A torn last line (a kill mid-write) is ignored; any other line
    that is not a valid row (not JSON, a field missing or of the wrong type) is skipped, with one
    line to ``warn`` naming the file and line: its run is simply not done, and runs again.
    StoreError if the journal is a link, a device or a FIFO (never read without end)."""
    if not path.exists() and not path.is_symlink():
        return
    not_own = _not_own(path, folder=False)
    if not_own is not None:
        raise StoreError(f"{path}: {not_own}: not a sweep folder's own journal")
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    last = len(lines) - 1  # after the final newline: "" for a clean journal, a torn row after a kill
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            if number - 1 == last:
                return  # cut by a kill mid-write: that run is simply not done
            problem: str | None = "not JSON"
        else:
            problem = row_problem(row)
        if problem is not None:
            if warn is not None:
                warn(f"{path}: line {number}: {problem}; the row is skipped (its run runs again)")
            continue
        yield row


def _is_int(value: Any, low: int = 0, high: int = _INT64) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):  # math.isfinite would overflow on a 400-digit integer
        return abs(value) < 10**300
    return math.isfinite(value) and abs(value) < 1e300


def _is_text(value: Any, limit: int = 10_000) -> bool:
    return isinstance(value, str) and len(value) <= limit


#: field -> (required, check, what it must be)
_ROW_FIELDS: dict[str, tuple[bool, Callable[[Any], bool], str]] = {
    "run_id": (True, lambda v: _is_text(v, 200) and bool(v), "not a run id"),
    "condition": (True, lambda v: _is_text(v, 200), "not a condition name"),
    "factors": (True, lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v), "not a mapping of levels"),
    "replicate": (True, _is_int, "not a whole number >= 0"),
    "seed": (True, _is_int, "not a whole number >= 0 (below 2**63)"),
    "key": (True, lambda v: _is_text(v, 200), "not a run key"),
    "status": (True, lambda v: isinstance(v, str) and v in STATUSES, f"not one of {', '.join(sorted(STATUSES))}"),
    "metrics": (True, lambda v: isinstance(v, dict), "not a mapping of numbers"),
    "error": (False, lambda v: v is None or _is_text(v), "not text"),
    "prompt_tokens": (False, _is_int, "not a whole number >= 0 (below 2**63)"),
    "completion_tokens": (False, _is_int, "not a whole number >= 0 (below 2**63)"),
    "tokens": (False, _is_int, "not a whole number >= 0 (below 2**63)"),
    "cost_usd": (False, lambda v: _is_number(v) and v >= 0, "not an amount >= 0"),
    "wall_s": (False, lambda v: v is None or _is_number(v), "not a number of seconds"),
    "recording": (False, lambda v: v is None or _is_text(v, 4096), "not a path"),
}


def row_problem(row: Any) -> str | None:
    """Why ``row`` is not a result row (one short phrase naming the field), or None if it is one."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not a row"
    for name, (required, check, what) in _ROW_FIELDS.items():
        if name not in row:
            if required:
                return f"{name} is missing"
            continue
        if not check(row[name]):
            return f"{name}: {what}"
    for name, value in row["metrics"].items():
        if not (value is None or (_is_number(value) and (not isinstance(value, int) or abs(value) < _INT64))):
            return f"metrics.{str(name)[:80]}: not a number"
    return None


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinities) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _error_row(row: dict[str, Any], error: str) -> dict[str, Any]:
    """A failed row for the run of ``row``, keeping only what is sure to store."""
    def pick(name: str, default: Any) -> Any:
        value = row.get(name, default)
        _, check, _ = _ROW_FIELDS[name]
        return value if check(value) else default

    return {
        "run_id": str(row.get("run_id"))[:200], "condition": pick("condition", ""), "factors": {},
        "replicate": pick("replicate", 0), "seed": pick("seed", 0), "key": pick("key", ""), "status": "failed",
        "error": error, "metrics": {}, "prompt_tokens": pick("prompt_tokens", 0),
        "completion_tokens": pick("completion_tokens", 0), "tokens": pick("tokens", 0),
        "cost_usd": pick("cost_usd", 0.0), "wall_s": pick("wall_s", None), "recording": pick("recording", None),
    }  # fmt: skip


def results_frame(rows: dict[str, dict[str, Any]], order: list[str], factor_paths: list[str]) -> pd.DataFrame:
    """One row per run id of ``order`` that has a result (plan order), with the table's columns."""
    records = []
    metric_names: dict[str, None] = {}
    fixed = set(LEAD_COLUMNS + MID_COLUMNS + TAIL_COLUMNS + factor_paths)
    for run_id in order:
        row = rows.get(run_id)
        if row is None:
            continue
        metrics = row.get("metrics") or {}
        metric_names.update(dict.fromkeys(metrics))
        record = {k: row.get(k) for k in LEAD_COLUMNS}
        record.update({p: (row.get("factors") or {}).get(p) for p in factor_paths})
        record.update({k: row.get(k) for k in MID_COLUMNS})
        record.update({k: v for k, v in metrics.items() if k not in fixed})  # a metric never replaces a column
        record.update({k: row.get(k) for k in TAIL_COLUMNS})
        records.append(record)
    metric_cols = [m for m in metric_names if m not in fixed]
    columns = LEAD_COLUMNS + factor_paths + MID_COLUMNS + metric_cols + TAIL_COLUMNS
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in metric_cols + ["cost_usd", "wall_s"]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("replicate", "seed", "prompt_tokens", "completion_tokens", "tokens"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in factor_paths:
        frame[column] = _uniform(frame[column])
    for column in ("run_id", "condition", "status", "error", "recording", "key"):
        frame[column] = frame[column].astype("string")
    return frame


def _uniform(column: pd.Series) -> pd.Series:
    """A factor column with one type (parquet needs it): numbers if every level is one (and fits
    int64 or float64), else text."""
    values = [v for v in column if v is not None]
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        if all(isinstance(v, int) for v in values):
            if all(-_INT64 <= v < _INT64 for v in values):
                return column.astype("Int64")
        elif all(abs(v) < 1e300 for v in values):
            return column.astype("float64")
    return column.map(lambda v: None if v is None else (v if isinstance(v, str) else json.dumps(v))).astype("string")


def _drop_torn_tail(path: Path) -> None:
    """Cut a row the last sweep was killed while writing (after the last newline), so the next row
    starts on a line of its own instead of being glued to the torn one."""
    if not path.exists():
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _lock(path: Path) -> Any:
    """An exclusive lock on ``path`` held until closed; StoreError if another sweep holds it."""
    handle = path.open("a")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (one sweep per folder is then the user's to keep)
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreError(f"{path.parent}: another sweep is writing to this folder") from None
    return handle
