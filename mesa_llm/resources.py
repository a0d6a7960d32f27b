"""Locates the packaged data folders (scenarios, prompts) in a wheel or a source checkout, and
reads the files users name (scenarios, sweep specs) with a bound, refusing what is not a plain file."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
#: folders of the kernel's pseudo-files and devices: never a user's document (a /proc file reads
#: as a regular file of size 0 and may hold the environment's secrets)
SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


class UnreadableFileError(ValueError):
    """A named file that is not read: the message is one short reason (no content of the file)."""


def system_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``, as written or once its links are followed, lies under /proc, /sys or /dev."""
    candidates = [Path(os.path.abspath(path))]
    with contextlib.suppress(OSError, RuntimeError):  # a link loop: the read refuses it
        candidates.append(Path(path).resolve())
    return any(c == root or c.is_relative_to(root) for c in candidates for root in SYSTEM_FOLDERS)


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``); :class:`UnreadableFileError`
    for a missing file, a folder, a device, FIFO or socket (opened without blocking, checked on
    the open descriptor, so a swap after the check cannot slip one in) or a file that is too large."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UnreadableFileError("file not found") from None
    except IsADirectoryError:
        raise UnreadableFileError("not a regular file (a folder)") from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFileError("not a regular file (a folder)")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFileError("not a regular file (a device, FIFO or socket)")
        if info.st_size > max_bytes:
            raise UnreadableFileError(f"the file is larger than {_size(max_bytes)} ({info.st_size:,} bytes)")
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UnreadableFileError(f"the file is larger than {_size(max_bytes)}")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def data_dir(name: str) -> Path:
    """Return the folder holding the shipped ``name`` data (``"scenarios"`` or ``"prompts"``).

    A wheel carries them under ``mesa_llm/_data/``; an editable install or a source checkout
    uses the top-level folders of the repository.
    """
    packaged = _PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"mesa_llm data folder {name!r} not found (looked in {packaged} and {checkout})"
    )


def scenarios_dir() -> Path:
    """The folder of shipped scenario YAML files."""
    return data_dir("scenarios")


def prompts_dir() -> Path:
    """The folder of shipped Jinja prompt templates."""
    return data_dir("prompts")
