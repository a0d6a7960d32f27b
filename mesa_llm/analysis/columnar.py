"""The columnar copy of a recording: one Parquet file per event type, next to the JSON-lines stream.

Where: ``REC.parquet/`` beside the stream ``REC`` (``runs/a.jsonl`` -> ``runs/a.jsonl.parquet/``),
holding ``<event_type>.parquet`` for every event type of the run and ``manifest.json``. It is
written when a run with a large stream closes with its ``simulation_end`` (`mesa_llm.Simulation.close`,
``Simulation.columnar_copy``), or by ``mesa-llm export REC --parquet`` (`write_copy`); an interrupted run has none until exported.

Each file has one row per event of its type: ``position`` (the event's line in the stream, from 0),
``event_id``, ``timestamp`` (UTC), ``step``, ``agent_id`` (null for model events) and ``content``
(the content's JSON text exactly as in the stream). Its key-value metadata ``mesa_llm.copy`` and
the manifest name the stream's size and SHA-256, and the manifest each file's size and SHA-256.

`load_recording` reads the copy instead of the stream's envelopes when it belongs to that
stream (`read_copy`): the stream's size and hash match, every file's size and hash match the
manifest, and the files are what this module writes. Hashing a 500 MB stream takes 0.5-1 s, so
once it has matched, ``verified.json`` (`STAMP`) keeps the stream's file identity (device, inode,
size, mtime and ctime) and later loads skip the hash while that identity is unchanged. Anything else (a stale, truncated or edited
copy) is ignored with a one-line note and the stream is read. A copy is data like the stream:
it is read with explicit columns and types (no pandas metadata, no extension types, nothing
executed), bounded in size by its stream, and its contents are decoded and checked per event
type when a table first needs them, as the stream's are.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mesa_llm.recording import RecordingError

__all__ = ["COPY_SUFFIX", "MANIFEST", "STAMP", "copy_path", "read_copy", "write_copy"]

#: appended to the stream's file name to name its copy's folder
COPY_SUFFIX = ".parquet"
#: the copy's table of contents
MANIFEST = "manifest.json"
#: the proof that the stream was hashed and has not changed since (`_stamped`)
STAMP = "verified.json"
_MAX_STAMP_BYTES = 4096
# A change to the stream within this long after its ctime may keep that ctime on a filesystem
# with coarse timestamps (1-2 s on some): a stamp taken that soon after is not trusted (as git
# treats "racily clean" index entries), the next load hashes the stream and stamps it again.
RACY_NS = 2_000_000_000
FORMAT = 1
_META_KEY = b"mesa_llm.copy"
# event types that may name a file (a recording's types are untrusted text)
_SAFE_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_HEX = re.compile(r"[0-9a-f]{64}\Z")
_MAX_MANIFEST_BYTES = 1 << 20
_MAX_FILES = 1000
# the envelope columns, read at load; the content column is read per type when needed
ENVELOPE = ("position", "event_id", "timestamp", "step", "agent_id")
SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("event_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("step", pa.int64()),
        ("agent_id", pa.int64()),
        ("content", pa.binary()),
    ]
)
_PLAIN_END = b',"metadata":{}}'


def copy_path(recording: str | Path) -> Path:
    """Where the columnar copy of the stream `recording` lives: ``REC.parquet/`` beside it."""
    path = Path(recording)
    return path.with_name(path.name + COPY_SUFFIX)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ----------------------------------------------------------------------------- the stamp
#
# Why a stamp can stand in for hashing the stream again: the stream is untrusted, and what must be
# ruled out is a copy that tells another story than its stream (a stream edited or replaced after
# its copy was made, by hand, by a tool or on purpose), since replay and verification read the
# stream. Size and mtime do not rule it out: an in-place edit keeps the size, and mtime is set at
# will (``touch -d``, ``cp -p``, tar). The ctime is not: the kernel sets it to the current time on
# every write, truncation, rename onto the path or change of mtime, and no call sets it to a chosen
# value (short of root changing the clock). So the stream's (device, inode, size, mtime, ctime),
# taken before it was hashed and unchanged after, identifies that content until something changes
# it. A stamp shipped with a recording from elsewhere cannot match (another device, inode and
# ctime), so such a stream is hashed; one taken while the stream was fresh is not trusted (RACY_NS).
# Someone able to write the stamp on this machine can also write the stream and a matching copy:
# that is outside what a check of a file can prevent. The copy's own files are still hashed.


def _identity(stat: os.stat_result) -> list[int]:
    """What the stamp keeps of the stream: device, inode, size, mtime and ctime (ns)."""
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _stamped(folder: Path, stat: os.stat_result, sha256: str) -> bool:
    """Whether the copy's stamp proves that the stream, as `stat` describes it now, hashed to
    `sha256` (the hash the manifest names): same identity, stamped well after the stream's ctime."""
    if os.name != "posix":
        return False  # Windows' st_ctime is the creation time, which a change does not move
    path = folder / STAMP
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_STAMP_BYTES:
            return False
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(data, dict) or data.get("sha256") != sha256:
        return False
    checked = data.get("checked_ns")
    if not isinstance(checked, int) or isinstance(checked, bool):
        return False
    return data.get("stream") == _identity(stat) and stat.st_ctime_ns + RACY_NS <= checked


def _stamp(folder: Path, stream: Path, before: os.stat_result, checked_ns: int, sha256: str) -> None:
    """Record that `stream`, as `before` describes it (taken after `checked_ns`), hashed to
    `sha256`, if it is still unchanged; best effort (a read-only folder keeps hashing)."""
    try:
        if _identity(stream.stat()) != _identity(before):
            return  # changed while it was hashed: what was hashed is not known
        body = {"sha256": sha256, "checked_ns": checked_ns, "stream": _identity(before)}
        tmp = folder / f".{STAMP}.tmp-{secrets.token_hex(4)}"
        try:
            tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
            os.replace(tmp, folder / STAMP)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        pass


# ----------------------------------------------------------------------------- writing


def write_copy(recording: str | Path, out: str | Path | None = None) -> Path:
    """Write the columnar copy of a finished stream (into `out`, default ``REC.parquet/``) and
    return its folder; an older copy there is replaced.

    Raises:
        RecordingError: the stream is missing, cut or interrupted (no ``simulation_end``), not in
            the recorder's line format, has an event type that cannot name a file, or `out` is a
            folder holding other files.
    """
    from mesa_llm.analysis.loader import _store_from_stream  # the loader's envelope parser
    from mesa_llm.recording import load_events

    path = Path(recording)
    target = Path(out) if out is not None else copy_path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such recording")
    checked_ns = time.time_ns()  # before the stream's identity is taken and it is hashed (_stamped)
    stat = path.stat()
    store = _store_from_stream(path)
    if store is None or store.source is None:
        loaded = load_events(path)  # says what is wrong with it (or raises)
        if loaded.truncated or "simulation_end" not in {e["event_type"] for e in loaded.events[-1:]}:
            raise RecordingError(
                f"{path}: the run was interrupted (no simulation_end): no columnar copy of it"
            )
        raise RecordingError(f"{path}: not in the recorder's line format: no columnar copy of it")
    unsafe = [t for t in store.type_names if not _SAFE_TYPE.match(t)]
    if unsafe:
        raise RecordingError(f"{path}: event type {unsafe[0][:64]!r} cannot name a file: no columnar copy")
    _check_target(target)
    source = store.source
    digest = hashlib.sha256()
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir(parents=True)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            digest.update(mm)
            if os.fstat(f.fileno()).st_size != stat.st_size:
                raise RecordingError(f"{path}: the file changed while it was copied")
            stream_sha256 = digest.hexdigest()
            meta = {
                "format": FORMAT,
                "source": {"name": path.name, "size": stat.st_size, "sha256": stream_sha256},
                "events": len(store),
            }
            files: dict[str, dict[str, Any]] = {}
            for event_type in store.type_names:
                idx = store.indices(event_type)
                contents = _content_bytes(mm, source, idx)
                table = pa.table(
                    {
                        "position": pa.array(idx, type=pa.int64()),
                        "event_id": pa.array(store.event_id[idx], type=pa.string()),
                        "timestamp": pa.array(
                            store.timestamp[idx].to_numpy(dtype="datetime64[us]"),
                            type=pa.timestamp("us", tz="UTC"),
                        ),
                        "step": pa.array(store.step[idx], type=pa.int64()),
                        "agent_id": pa.array(store.agent_id[idx], type=pa.int64(), from_pandas=True),
                        "content": pa.array(contents, type=pa.binary()),
                    },
                    schema=SCHEMA,
                ).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
                file = tmp / f"{event_type}.parquet"
                pq.write_table(
                    table, file, compression="snappy", write_statistics=["position", "step"]
                )
                files[event_type] = {
                    "rows": len(idx),
                    "size": file.stat().st_size,
                    "sha256": _sha256_file(file),
                }
        manifest = {**meta, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _stamp(tmp, path, stat, checked_ns, stream_sha256)
        if target.exists():
            _remove_copy(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _content_bytes(mm: mmap.mmap, source: Any, idx: np.ndarray) -> list[bytes]:
    """The content of each event as its JSON text in the stream (re-encoded from the decoded
    line when the line has metadata after its content)."""
    starts = source.content_start[idx].tolist()
    ends = (source.line_end[idx] - len(_PLAIN_END)).tolist()
    out = [mm[a:b] for a, b in zip(starts, ends, strict=True)]
    for i in np.flatnonzero(~source.plain[idx]).tolist():
        index = int(idx[i])
        line = mm[int(source.line_start[index]) : int(source.line_end[index])]
        try:
            content = json.loads(line).get("content")
        except (ValueError, RecursionError, AttributeError):
            raise RecordingError(f"{source.path}: line {index + 1} is corrupt") from None
        out[i] = json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    return out


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RecordingError(f"{target}: exists and is not a folder of a columnar copy")
    if target.is_dir():
        others = [p.name for p in target.iterdir() if not _ours(p)]
        if others:
            raise RecordingError(
                f"{target}: holds other files ({others[0]}, ...): not a columnar copy, left alone"
            )


def _ours(path: Path) -> bool:
    if path.name in (MANIFEST, STAMP) or path.name.startswith(f".{STAMP}.tmp-"):
        return path.is_file() and not path.is_symlink()
    return (
        path.suffix == ".parquet" and bool(_SAFE_TYPE.match(path.stem))
        and path.is_file() and not path.is_symlink()
    )  # fmt: skip


def _remove_copy(target: Path) -> None:
    """Remove an older copy: its own files only, then the folder."""
    for p in target.iterdir():
        if _ours(p):
            p.unlink()
    target.rmdir()


# ----------------------------------------------------------------------------- reading


class CopyMismatch(ValueError):
    """The copy does not belong to its stream, or is not a copy this module writes."""


@dataclass
class CopyColumns:
    """The envelope columns of a recording read from its copy, in the stream's order."""

    folder: Path
    event_id: pa.StringArray
    step: np.ndarray
    agent_id: np.ndarray
    missing: np.ndarray
    timestamp: np.ndarray
    type_codes: np.ndarray
    type_names: list[str]
    source: CopySource
    #: the stream's size and modification time when the copy was found to be its own
    stream_size: int = 0
    stream_mtime_ns: int = 0


class CopySource:
    """The contents of a copy, decoded per event type when first needed (from the copy's bytes
    verified at load, kept in memory: what is decoded is what was checked)."""

    def __init__(self, folder: Path, files: dict[str, pa.Buffer], row_of: np.ndarray, codes: np.ndarray, names: Sequence[str]) -> None:
        self.folder = folder
        self._files = files
        self._row_of = row_of
        self._codes = codes
        self._names = list(names)
        self._contents: dict[str, tuple[np.ndarray, bytes]] = {}
        self._problems: dict[str, dict[int, str]] = {}

    def contents(self, event_type: str) -> tuple[np.ndarray, bytes]:
        """Offsets (n + 1) and bytes of the content column of a type's file, checked once
        against the stream's limits (`problems`)."""
        cached = self._contents.get(event_type)
        if cached is None:
            table = pq.ParquetFile(pa.BufferReader(self._files[event_type])).read(
                columns=["content"], use_threads=False  # see _envelopes
            )
            column = table.column("content").combine_chunks()
            if column.null_count:
                raise RecordingError(f"{self.where(event_type)}: a content is missing")
            offsets_buffer, data_buffer = column.buffers()[1:3]
            offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
                column.offset : column.offset + len(column) + 1
            ].astype(np.int64)
            data = data_buffer.to_pybytes() if data_buffer is not None else b""
            cached = (offsets, data)
            self._contents[event_type] = cached
            self._problems[event_type] = _limit_problems(offsets, data)
        return cached

    def where(self, event_type: str) -> Path:
        """The file of a type's events."""
        return self.folder / f"{event_type}.parquet"

    def place(self, index: int) -> str:
        """Where the event at this position is in the copy: file and row."""
        name = self._names[int(self._codes[index])]
        return f"{self.where(name)}: row {int(self._row_of[index]) + 1} (event {index + 1})"

    def array_text(self, idx: np.ndarray) -> bytes | None:
        """The contents of the events at these positions as the text of one JSON array, when they
        are all the events of one type in order and none breaks the limits (a table's first build);
        None otherwise (`chunks` then). Commas are put in with numpy, not a bytes object per event."""
        if not len(idx):
            return None
        codes = self._codes[idx]
        if bool((codes != codes[0]).any()):
            return None
        name = self._names[int(codes[0])]
        offsets, data = self.contents(name)
        rows = self._row_of[idx]
        if self._problems[name] or len(rows) != len(offsets) - 1 or bool((rows != np.arange(len(rows))).any()):
            return None
        first, last = int(offsets[0]), int(offsets[-1])
        buffer = np.frombuffer(data, dtype=np.uint8)[first:last]
        return b"[" + np.insert(buffer, offsets[1:-1] - first, ord(",")).tobytes() + b"]"

    def chunks(self, idx: np.ndarray) -> list[bytes]:
        """The content bytes of the events at these positions.

        Raises:
            RecordingError: one of them breaks the stream's limits (size, nesting, an object).
        """
        codes = self._codes[idx]
        kinds = np.unique(codes).tolist()
        out: list[bytes] = [b""] * len(idx)
        for code in kinds:
            sel = np.flatnonzero(codes == code) if len(kinds) > 1 else None
            positions = idx if sel is None else idx[sel]
            name = self._names[code]
            offsets, data = self.contents(name)
            rows = self._row_of[positions]
            bad = self._problems[name]
            if bad:
                for index, row in zip(positions.tolist(), rows.tolist(), strict=True):
                    if row in bad:
                        raise RecordingError(f"{self.place(index)} is corrupt: {bad[row]}")
            starts, ends = offsets[rows].tolist(), offsets[rows + 1].tolist()
            pieces = [data[a:b] for a, b in zip(starts, ends, strict=True)]
            if sel is None:
                return pieces
            for i, piece in zip(sel.tolist(), pieces, strict=True):
                out[i] = piece
        return out


def _limit_problems(offsets: np.ndarray, data: bytes) -> dict[int, str]:
    """Row -> problem, for the contents that break a stream line's limits: longer than
    MAX_LINE_BYTES, not an object, nested deeper than MAX_DEPTH (measured only for the rows with
    more opening brackets than that)."""
    from mesa_llm.recording.schema import MAX_DEPTH, MAX_LINE_BYTES, nesting_depth

    problems: dict[int, str] = {}
    buffer = np.frombuffer(data, dtype=np.uint8)
    lengths = np.diff(offsets)
    for row in np.flatnonzero(lengths > MAX_LINE_BYTES).tolist():
        problems[row] = f"longer than {MAX_LINE_BYTES:,} bytes"
    starts = offsets[:-1]
    first = np.zeros(len(starts), dtype=np.uint8)
    filled = lengths > 0
    first[filled] = buffer[starts[filled]]
    for row in np.flatnonzero(first != ord("{")).tolist():
        problems.setdefault(row, "the content is not a JSON object")
    opens = np.flatnonzero((buffer == ord("{")) | (buffer == ord("[")))
    counts = np.searchsorted(opens, offsets[1:]) - np.searchsorted(opens, starts)
    for row in np.flatnonzero(counts > MAX_DEPTH).tolist():
        if row not in problems and nesting_depth(data[int(starts[row]) : int(offsets[row + 1])]) > MAX_DEPTH:
            problems[row] = f"nested deeper than {MAX_DEPTH} levels"
    return problems


def read_copy(recording: Path) -> tuple[CopyColumns | None, str | None]:
    """The envelope columns of a stream read from its copy, or (None, a one-line note saying why
    the copy was not used); (None, None) when there is no copy."""
    folder = copy_path(recording)
    if not folder.is_dir() and not folder.is_symlink():
        return None, None
    try:
        return _read(recording, folder), None
    except (CopyMismatch, OSError, ValueError, pa.ArrowException, MemoryError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, f"{folder}: columnar copy not used ({reason}); reading {recording.name}"


def _read(recording: Path, folder: Path) -> CopyColumns:
    if folder.is_symlink():
        raise CopyMismatch("a symbolic link, not a folder")
    manifest = _manifest(folder / MANIFEST)
    checked_ns = time.time_ns()  # before the stream's identity is taken and it is hashed (_stamped)
    stat = recording.stat()
    source = manifest["source"]
    if source["size"] != stat.st_size:
        raise CopyMismatch(f"stale: the recording is {stat.st_size:,} bytes, the copy is of {source['size']:,}")
    if _stamped(folder, stat, source["sha256"]):
        columns = _envelopes(folder, manifest, stat.st_size)
        columns.stream_size, columns.stream_mtime_ns = stat.st_size, stat.st_mtime_ns
        return columns
    # the stream's hash is computed while the copy is read (hashlib releases the GIL)
    digest: list[str] = []

    def hash_stream() -> None:
        try:
            digest.append(_sha256_file(recording))
        except OSError as exc:
            digest.append(f"unreadable: {exc}")

    hasher = threading.Thread(target=hash_stream, daemon=True)
    hasher.start()
    try:
        columns = _envelopes(folder, manifest, stat.st_size)
    finally:
        hasher.join()
    if digest[0] != source["sha256"]:
        raise CopyMismatch("stale: the recording's SHA-256 differs from the one the copy was made of")
    _stamp(folder, recording, stat, checked_ns, digest[0])
    columns.stream_size, columns.stream_mtime_ns = stat.st_size, stat.st_mtime_ns
    return columns


def _manifest(path: Path) -> dict[str, Any]:
    if path.is_symlink() or not path.is_file():
        raise CopyMismatch(f"no {MANIFEST}")
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise CopyMismatch(f"{MANIFEST} larger than {_MAX_MANIFEST_BYTES:,} bytes")

    def no_constant(name: str) -> Any:
        raise ValueError(f"{MANIFEST}: {name} is not a number JSON allows")

    data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=no_constant)
    problem = _manifest_problem(data)
    if problem:
        raise CopyMismatch(f"{MANIFEST}: {problem}")
    return data


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _manifest_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return f"not a format {FORMAT} manifest"
    source = data.get("source")
    if not isinstance(source, dict) or not _count(source.get("size")):
        return "source.size: expected a byte count"
    if not isinstance(source.get("sha256"), str) or not _HEX.match(source["sha256"]):
        return "source.sha256: expected 64 hex digits"
    if not _count(data.get("events")) or data["events"] == 0:
        return "events: expected a count of events"
    files = data.get("files")
    if not isinstance(files, dict) or not files or len(files) > _MAX_FILES:
        return f"files: expected 1 to {_MAX_FILES} files"
    for name, entry in files.items():
        if not isinstance(name, str) or not _SAFE_TYPE.match(name):
            return "files: an event type that cannot name a file"
        if not isinstance(entry, dict) or not all(_count(entry.get(k)) for k in ("rows", "size")):
            return f"files.{name}: expected rows and size"
        if not isinstance(entry.get("sha256"), str) or not _HEX.match(entry["sha256"]):
            return f"files.{name}.sha256: expected 64 hex digits"
    if sum(e["rows"] for e in files.values()) != data["events"]:
        return "files: the rows do not add up to the events"
    return None


def _envelopes(folder: Path, manifest: dict[str, Any], source_size: int) -> CopyColumns:
    files: dict[str, dict[str, Any]] = manifest["files"]
    n = int(manifest["events"])
    # a copy is smaller than its stream (contents as they are, envelopes compressed): bounded by it
    if sum(e["size"] for e in files.values()) > 2 * source_size + (1 << 20):
        raise CopyMismatch("larger than its recording allows")
    meta = json.dumps({k: manifest[k] for k in ("format", "source", "events")}, sort_keys=True)
    buffers: dict[str, pa.Buffer] = {}
    parts: dict[str, pa.Table] = {}
    for name, entry in files.items():
        file = folder / f"{name}.parquet"
        if file.is_symlink() or not file.is_file():
            raise CopyMismatch(f"{file.name} is missing")
        with open(file, "rb") as f:
            data = f.read(entry["size"] + 1)
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CopyMismatch(f"{file.name} is not the file the manifest lists (truncated or edited)")
        buffer = pa.py_buffer(data)
        parquet = pq.ParquetFile(pa.BufferReader(buffer))
        if not parquet.schema_arrow.remove_metadata().equals(SCHEMA):
            raise CopyMismatch(f"{file.name}: not the columns of a copy")
        own = (parquet.schema_arrow.metadata or {}).get(_META_KEY)
        if own is None or json.dumps(json.loads(own), sort_keys=True) != meta:
            raise CopyMismatch(f"{file.name}: made for another recording")
        info = parquet.metadata
        if info.num_rows != entry["rows"]:
            raise CopyMismatch(f"{file.name}: {info.num_rows} rows, the manifest says {entry['rows']}")
        unpacked = sum(info.row_group(i).total_byte_size for i in range(info.num_row_groups))
        if unpacked > 4 * source_size + (1 << 20):
            raise CopyMismatch(f"{file.name}: unpacks larger than its recording allows")
        buffers[name] = buffer
        # one thread: on two busy cores, a thread pool per small file took 2.5x as long
        parts[name] = parquet.read(columns=list(ENVELOPE), use_threads=False)
    for name, table in parts.items():
        for column in ("position", "event_id", "timestamp", "step"):
            if table.column(column).null_count:
                raise CopyMismatch(f"{name}.parquet: {column} has nulls")
    # All the files' rows one after the other (the manifest's rows add up to n), then `order`:
    # for each position of the stream, its row there; columns are gathered by it, not row by row.
    whole = pa.concat_tables(parts.values())
    pos = whole.column("position").to_numpy()
    if len(pos) != n or (n and (int(pos.min()) < 0 or int(pos.max()) >= n)):
        raise CopyMismatch("position out of range")
    order = np.full(n, -1, dtype=np.int64)
    order[pos] = np.arange(n)
    if bool((order < 0).any()):  # n rows, n positions: one missing = another twice
        raise CopyMismatch("events missing")
    rows = np.fromiter((t.num_rows for t in parts.values()), dtype=np.int64, count=len(parts))
    first_row = np.cumsum(rows) - rows
    file_of = np.repeat(np.arange(len(parts), dtype=np.int32), rows)[order]
    row_of = (np.arange(n, dtype=np.int64) - np.repeat(first_row, rows))[order]
    # type codes in order of first appearance, as the stream's
    firsts = np.full(len(parts), n, dtype=np.int64)
    filled = rows > 0
    if bool(filled.any()):
        firsts[filled] = np.minimum.reduceat(pos, first_row[filled])
    ranked = np.argsort(firsts, kind="stable")
    files_by_code = [list(parts)[i] for i in ranked.tolist()]
    code_of_file = np.empty(len(parts), dtype=np.int32)
    code_of_file[ranked] = np.arange(len(parts), dtype=np.int32)
    codes = code_of_file[file_of]
    agents = whole.column("agent_id")
    stamps = whole.column("timestamp").cast(pa.timestamp("us")).cast(pa.int64())
    return CopyColumns(
        folder=folder,
        event_id=whole.column("event_id").combine_chunks().take(pa.array(order)),  # 8x a chunked take
        step=whole.column("step").to_numpy()[order],
        agent_id=agents.fill_null(0).to_numpy()[order],
        missing=agents.is_null().to_numpy(zero_copy_only=False)[order],
        timestamp=stamps.to_numpy()[order].view("datetime64[us]"),
        type_codes=codes,
        type_names=files_by_code,
        source=CopySource(folder, buffers, row_of, codes, files_by_code),
    )
