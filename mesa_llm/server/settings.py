"""What a `mesa-llm serve` server is allowed to do: its address, folders, token and limits.

The limits are named constants here, each overridable by an option of ``mesa-llm serve`` (or a
field of `ServerSettings`). Pure Python: no FastAPI import.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mesa_llm.host_header import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

#: simulations open at once (not yet stopped or finished): each holds a model in memory
MAX_SIMULATIONS = 8
#: stopped or finished simulations kept for reading (state, metrics) until deleted; beyond it the
#: oldest is forgotten (its recording stays on disk)
MAX_FINISHED_KEPT = 32
#: agents one simulation may hold (a scenario's own limit is far higher: one client must not take
#: the server's memory)
MAX_AGENTS = 10_000
#: WebSocket connections at once (all simulations together)
MAX_CONNECTIONS = 64
#: HTTP connections and requests at once before the server answers 503 (uvicorn's limit)
MAX_HTTP_CONCURRENCY = 256
#: bytes of one HTTP request body
MAX_BODY_BYTES = 1024 * 1024
#: bytes of one WebSocket message a client sends (larger: a one-line error, the message ignored)
MAX_MESSAGE_BYTES = 64 * 1024
#: bytes of one WebSocket frame the server reads at all (larger: the connection is closed, 1009)
MAX_FRAME_BYTES = 1024 * 1024
#: messages per second a WebSocket client may send (a burst of as many is allowed)
MESSAGES_PER_SECOND = 20.0
#: state updates waiting for one slow client before they are coalesced (latest state kept)
CLIENT_QUEUE = 8
#: events carried by one state update (the rest are counted in ``skipped_events``)
MAX_EVENTS_PER_UPDATE = 1000
#: steps one request may ask for (``POST .../step``)
MAX_STEPS_PER_REQUEST = 1000
#: fastest run rate (steps per second); 0 means as fast as the machine steps
MAX_RATE = 1000.0
#: events returned per page of a recording's events
MAX_EVENTS_PAGE = 1000
#: shortest bearer token accepted from a token file
MIN_TOKEN_CHARS = 16
#: largest token file read
MAX_TOKEN_FILE_BYTES = 4096



@dataclass(frozen=True)
class ServerSettings:
    """Where the server listens, which folders it serves, its token and its limits.

    ``recordings``: the folder simulations record to and the only one whose recordings are served;
    ``checkpoints``: the folder of RL checkpoints (None: none listed); ``token``: the bearer token
    every API request must carry (None: no token, allowed on loopback only); ``extra_hosts``:
    further ``Host`` names that name this server (a reverse proxy's; the test client's).
    """

    recordings: Path = Path("recordings")
    checkpoints: Path | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    max_simulations: int = MAX_SIMULATIONS
    max_finished_kept: int = MAX_FINISHED_KEPT
    max_agents: int = MAX_AGENTS
    max_connections: int = MAX_CONNECTIONS
    max_body_bytes: int = MAX_BODY_BYTES
    max_message_bytes: int = MAX_MESSAGE_BYTES
    messages_per_second: float = MESSAGES_PER_SECOND
    client_queue: int = CLIENT_QUEUE
    max_events_per_update: int = MAX_EVENTS_PER_UPDATE
    extra_hosts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"--host {self.host}: not a loopback address, so anyone who can reach it could drive "
                "this server; give --token-file PATH (a bearer token is read from it, or generated into it)"
            )
        for name in ("max_simulations", "max_agents", "max_connections", "max_body_bytes", "max_message_bytes", "client_queue",
                     "max_events_per_update"):  # fmt: skip
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.messages_per_second > 0:
            raise ValueError("messages_per_second must be positive")

    @property
    def remote(self) -> bool:
        """Served beyond this machine."""
        return not is_loopback(self.host)


def read_token_file(path: Path) -> tuple[str, bool]:
    """The bearer token in ``path``, and whether it was generated now.

    An existing file must be a regular file holding one token of at least `MIN_TOKEN_CHARS`
    printable characters without spaces; a missing one is created (readable by the user only)
    with a new random token. ValueError (one line) otherwise. The token itself is never printed."""
    try:
        info = path.stat()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ValueError(f"--token-file {path}: cannot be created: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
        return token, True
    except OSError as exc:
        raise ValueError(f"--token-file {path}: cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"--token-file {path}: not a regular file")
    if info.st_size > MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"--token-file {path}: larger than {MAX_TOKEN_FILE_BYTES} bytes: not a token file")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--token-file {path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) < MIN_TOKEN_CHARS or not text.isprintable() or any(c.isspace() for c in text):
        raise ValueError(
            f"--token-file {path}: must hold one token of at least {MIN_TOKEN_CHARS} printable characters "
            "without spaces (delete the file to have one generated)"
        )
    return text, False


__all__ = [
    "CLIENT_QUEUE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_AGENTS",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_EVENTS_PAGE",
    "MAX_EVENTS_PER_UPDATE",
    "MAX_FINISHED_KEPT",
    "MAX_FRAME_BYTES",
    "MAX_HTTP_CONCURRENCY",
    "MAX_MESSAGE_BYTES",
    "MAX_RATE",
    "MAX_SIMULATIONS",
    "MAX_STEPS_PER_REQUEST",
    "MESSAGES_PER_SECOND",
    "ServerSettings",
    "is_loopback",
    "read_token_file",
]
