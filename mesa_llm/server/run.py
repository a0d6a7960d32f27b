"""``mesa-llm serve``: bind the address (a clear one-line error if it cannot), then run the app
with uvicorn until Ctrl-C or SIGTERM, whose graceful shutdown closes every simulation (each
recording ends with ``simulation_end``)."""

from __future__ import annotations

import socket
import sys
from dataclasses import replace

from mesa_llm.server.settings import MAX_FRAME_BYTES, MAX_HTTP_CONCURRENCY, ServerSettings

#: seconds the server waits for open connections at shutdown before closing them
GRACEFUL_SHUTDOWN_S = 5


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); ValueError (one line) when the
    address cannot be listened on."""
    name = host.strip().strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((name, port))
        sock.listen(512)
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: ServerSettings, sock: socket.socket) -> None:
    """Serve the API on the bound ``sock`` (blocking) until Ctrl-C or SIGTERM."""
    import uvicorn

    from mesa_llm.server.app import create_app

    port = int(sock.getsockname()[1])
    settings = replace(settings, port=port)
    app = create_app(settings)
    name = settings.host if ":" not in settings.host.strip("[]") else f"[{settings.host.strip('[]')}]"
    print(f"mesa-llm server at http://{name}:{port}/ (API reference: /docs)", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
        ws_per_message_deflate=False,  # no compression bombs; updates are small and local
        limit_concurrency=MAX_HTTP_CONCURRENCY + settings.max_connections,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["GRACEFUL_SHUTDOWN_S", "bind", "serve"]
