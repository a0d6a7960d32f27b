"""What the dashboard serves (a live scenario or a recording) and the Solara server that serves it.

`mesa-llm dashboard` checks its target and the address first (a bad scenario, recording or host
is one line of error, before any server starts), stores the target here with `configure`, then
runs Solara in this process behind `mesa_llm.dashboard.guard` (its own page only); the page
(`mesa_llm.dashboard.app`) reads the target with `current_config`.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesa_llm.dashboard import plotly_bundle
from mesa_llm.dashboard.guard import PageGuard, ServedAddress, is_loopback, new_token

APP_MODULE = "mesa_llm.dashboard.app"


@dataclass(frozen=True)
class DashboardConfig:
    """A live scenario (``spec`` set) or a recording to replay (``recording`` set).

    ``source``: the scenario's file, as ``validate`` names it in errors; ``out_dir``: where live
    sessions keep their recordings (None: each session's own temporary folder, deleted when the
    session ends)."""

    spec: Any = None  # ScenarioSpec
    recording: Path | None = None
    llm_model: str | None = None
    source: str | None = None
    out_dir: Path | None = None

    @property
    def mode(self) -> str:
        """"live" or "replay"."""
        return "replay" if self.recording is not None else "live"


_config: DashboardConfig | None = None


def configure(config: DashboardConfig) -> None:
    """Set what the pages of this process show."""
    global _config
    _config = config


def current_config() -> DashboardConfig:
    """What the pages show (RuntimeError when `configure` was not called)."""
    if _config is None:
        raise RuntimeError("the dashboard was not configured: start it with `mesa-llm dashboard TARGET`")
    return _config


def is_recording(target: str) -> bool:
    """Whether a dashboard target names a recording (a .jsonl/.json file) rather than a scenario."""
    return Path(target).suffix.lower() in (".jsonl", ".json")


#: folders of the kernel's pseudo files: "regular" to stat, yet nothing a user means to open
#: (/proc/self/environ holds the environment, secrets included)
_PSEUDO_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_target_file(target: str) -> None:
    """ValueError (one line) unless ``target``, when it names a path at all, is a regular,
    non-empty file outside /proc, /sys and /dev (a symlink is judged by what it points to).
    A name that is no path (a shipped scenario's) passes: the scenario loader resolves it."""
    path = Path(target)
    if not (path.exists() or path.is_symlink()):
        return
    resolved = path.resolve()
    if any(resolved == root or resolved.is_relative_to(root) for root in _PSEUDO_ROOTS):
        raise ValueError(f"{target}: not a regular file (it lies in {resolved.parts[0]}{resolved.parts[1]})")
    try:
        info = resolved.stat()
    except OSError as exc:
        raise ValueError(f"{target}: cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ValueError(f"{target}: {what}")
    if info.st_size == 0:
        raise ValueError(f"{target}: the file is empty")


def listen_address(host: str, port: int, allow_remote: bool) -> ServedAddress:
    """Where to serve: ``host`` and ``port`` (0: a free one, picked now), checked: a host other
    than this machine needs ``allow_remote``, and the address must be free to listen on
    (ValueError, one line)."""
    if not is_loopback(host) and not allow_remote:
        raise ValueError(
            f"--host {host}: not a loopback address, so anyone who can reach it could watch and drive "
            "this dashboard; add --allow-remote to serve it there anyway"
        )
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            probe.bind((host.strip("[]"), port))
            port = int(probe.getsockname()[1])
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot listen on {host}:{port}: {reason}") from None
    return ServedAddress(host, port)


#: seconds a session is kept once its page is gone (closed without a word, or the network dropped)
DEFAULT_IDLE_TIMEOUT = 120.0


def serve(
    port: int,
    host: str,
    open_browser: bool,
    *,
    allow_remote: bool = False,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> None:
    """Run the Solara server (blocking) for the configured target, for its own page only
    (`mesa_llm.dashboard.guard`); a session whose page has been gone ``idle_timeout`` seconds ends.

    Served beyond this machine, browsers on other machines need the page's address with its
    token, which goes to a file readable only by the user (never to the terminal or a log); the
    command names the file."""
    # Solara reports usage to a telemetry service and checks PyPI for a newer version at start by
    # default: a research tool serving local data does neither (read when solara is imported)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    if port == 0 or (not is_loopback(host) and not allow_remote):
        port = listen_address(host, port, allow_remote).port  # (the command checked the rest)
    address = ServedAddress(host, port)
    # `solara run` sets this too, but Solara reads it when its server module is imported, which
    # must happen here, before the run, to put the guard in front of its app
    os.environ["SOLARA_APP"] = APP_MODULE
    from solara.__main__ import cli
    from solara.server import settings
    from solara.server.starlette import app as solara_app

    token = new_token()
    url = address.url()
    on_shutdown: list[Callable[[], None]] = []
    if address.remote:
        url_file = _private_url_file(address.url(token))
        # (uvicorn ends the process by re-raising SIGINT/SIGTERM after its shutdown: no atexit)
        on_shutdown.append(lambda: shutil.rmtree(url_file.parent, ignore_errors=True))
        print(
            f"dashboard at {url}: from another machine, open the address in {url_file} "
            "(it holds the access token; readable only by you)",
            file=sys.stderr,
        )
    else:
        print(f"dashboard at {url}", file=sys.stderr)
    plotly_bundle.install_route(solara_app)  # first: the guard goes in front of it
    install_guard(solara_app, address, token, require_url_token=address.remote, on_shutdown=on_shutdown)
    settings.kernel.cull_timeout = f"{idle_timeout:g}s"
    # Solara warns on every page load that its session cookie cannot be SameSite=None over http:
    # the dashboard wants it same-site anyway
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")
    if open_browser:
        # a browser here reaches a wildcard address over loopback (no token); one address only
        # over that address, as from another machine
        if address.hosts.any_ip_literal:
            here = f"http://127.0.0.1:{address.port}/"
        else:
            here = address.url(token if address.remote else None)
        threading.Thread(target=_open_when_up, args=(address, here), daemon=True).start()
    args = [
        "run", APP_MODULE, "--port", str(address.port), "--host", host, "--production", "--no-check-version",
        "--no-open", "--log-level", "warning",
    ]  # fmt: skip
    # the first page would wait for these imports (mesa pulls in scipy) and for Plotly's widget:
    # done while the server starts and the browser loads Solara's scripts
    threading.Thread(target=warm_up, daemon=True, name="dashboard-warm-up").start()
    cli(args, standalone_mode=False)


def warm_up() -> None:
    """Import and load what the first page of the configured target needs."""
    if _config is not None and _config.mode == "live":
        import mesa_llm.simulation  # noqa: F401 - imported for its side effect: loaded once
    plotly_bundle.warm_up()


def install_guard(
    app: Any,
    address: ServedAddress,
    token: str,
    require_url_token: bool,
    on_shutdown: list[Callable[[], None]] | None = None,
) -> None:
    """Put `PageGuard` in front of Solara's Starlette ``app`` (replacing one installed before)."""
    app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not PageGuard]
    app.add_middleware(
        PageGuard, address=address, token=token, require_url_token=require_url_token, on_shutdown=on_shutdown or []
    )


def _private_url_file(url: str) -> Path:
    """A file only the user can read (in a fresh 0700 folder) holding ``url``."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="mesa_llm_dashboard_url_"))
    path = folder / "dashboard.url"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(url + "\n")
    return path


def _open_when_up(address: ServedAddress, url: str) -> None:
    import time
    import webbrowser

    probe_host = "127.0.0.1" if address.hosts.any_ip_literal else address.host.strip("[]")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection((probe_host, address.port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
            continue
        webbrowser.open(url)
        return
