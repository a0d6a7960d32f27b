"""Plotly's chart widget with its JavaScript served once per page, as a cacheable file.

Plotly's ``FigureWidget`` is an anywidget whose ``_esm`` trait holds the whole plotly.js widget
bundle (~5 MB): every chart sent it over the page's WebSocket and the browser evaluated it once
per chart, which took most of a live page's time to first paint. `figure_widget_class` gives a
``FigureWidget`` whose ``_esm`` is a few lines importing the bundle from this server instead
(`bundle_path`), so a page fetches it once (then from the browser's cache: the URL names the
bundle's hash, so it never goes stale) and evaluates it once, however many charts it shows.

`install_route` adds the route to the Solara app; `mesa_llm.dashboard.guard` stands in front of
it as of every other route (its own page only), and its CSP already allows scripts from 'self'.
Nothing here reads the bundle before it is first needed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesa_llm.dashboard.guard import ASGIApp, Message, Receive, Scope, Send

ROUTE_PREFIX = "/_mesa_llm/"
"""Where the dashboard serves its own static files (a prefix no Solara route uses)."""

#: gzip level of the served copy: level 9 takes 1.6x the time for 0.2% fewer bytes
_GZIP_LEVEL = 6
_CACHE_CONTROL = b"public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Bundle:
    """The plotly.js widget bundle: its bytes, gzipped bytes and the file name that holds its hash."""

    body: bytes
    gzipped: bytes
    name: str


def _bundle_file() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"


_lock = threading.Lock()


@functools.cache
def _load() -> Bundle:
    body = _bundle_file().read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Bundle(body=body, gzipped=gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0), name=f"plotly-widget.{digest}.js")


def bundle() -> Bundle:
    """The bundle, read (and compressed) on first use; later calls return the same object."""
    with _lock:  # the server's warm-up thread and a first request may ask at once
        return _load()


def bundle_path() -> str:
    """The URL path of the bundle on this server."""
    return ROUTE_PREFIX + bundle().name


def esm_shim(path: str) -> str:
    """The ``_esm`` of a chart: import the bundle from ``path`` on the page's own origin.

    anywidget imports an ``_esm`` that is not an http(s) URL from a blob: URL, against which a
    path cannot be resolved, hence the page's origin; the browser's module map makes every chart
    of the page share one fetch and one evaluation."""
    return (
        f"const bundle = await import(new URL({path!r}, window.location.origin).href);\n"
        "export default bundle.default;\n"
    )


@functools.cache
def figure_widget_class() -> type[Any]:
    """Plotly's ``FigureWidget`` importing its JavaScript from `bundle_path` (made on first use)."""
    from plotly.graph_objs import FigureWidget

    class DashboardFigureWidget(FigureWidget):
        """A ``FigureWidget`` that sends a short import of the bundle instead of the bundle.

        ``_first_figure`` (a figure dict: ``data``, ``layout``) is drawn at creation: the
        browser gets it with the widget and draws once. (A private name: a Solara element sets
        its arguments again on every render, and a ``data`` or ``layout`` set again would
        replace the figure; a private attribute set again changes nothing.)"""

        _esm = esm_shim(bundle_path())

        def __init__(self, _first_figure: dict[str, Any] | None = None, _validate: bool = True, **kwargs: Any) -> None:
            if _first_figure is not None:
                kwargs = {"data": _first_figure["data"], "layout": _first_figure["layout"], **kwargs}
            # validated as `add_traces` would: traces made without validation never report
            # their changes to the browser
            super().__init__(**kwargs)
            self._validate = _validate
            self._first_figure = _first_figure

    return DashboardFigureWidget


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app of ``ROUTE_PREFIX``: the bundle under its hashed name, 404 for anything else."""
    path = scope.get("path", "")
    if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD") or path != bundle_path():
        body, headers = b"404 Not Found\n", [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 404, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    served = bundle()
    gzipped = _accepts_gzip(scope)
    # an explicit Content-Encoding keeps Solara's GZip middleware from compressing it again
    body = served.gzipped if gzipped else served.body
    headers = [
        (b"content-type", b"text/javascript; charset=utf-8"),
        (b"content-encoding", b"gzip" if gzipped else b"identity"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", _CACHE_CONTROL),
        (b"vary", b"Accept-Encoding"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def install_route(app: Any) -> None:
    """Serve the bundle from Solara's Starlette ``app`` (before its catch-all page route) and name
    it in every HTML page's headers (`PreloadHeader`)."""
    from starlette.routing import Mount

    prefix = ROUTE_PREFIX.rstrip("/")
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != prefix]
    app.router.routes.insert(0, Mount(prefix, app=_serve))
    app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not PreloadHeader]
    app.add_middleware(PreloadHeader)


def warm_up() -> None:
    """Do now what a server's first page would otherwise wait for: read and compress the bundle,
    import Plotly's widget and load the validators and template of the dashboard's charts."""
    import plotly.graph_objects as go

    figure_widget_class()
    go.Figure(
        data=[{"type": kind} for kind in ("scatter", "bar", "scattergl")],
        layout={"template": "plotly_white", "shapes": [{"type": "line"}], "annotations": [{"text": ""}]},
    )


def _accepts_gzip(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key.lower() != b"accept-encoding":
            continue
        for item in value.decode("latin-1").lower().split(","):
            name, _, params = item.strip().partition(";")
            if name.strip() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
                return True
    return False


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    return next((v for k, v in headers if k.lower() == name), b"")



class PreloadHeader:
    """ASGI middleware: an HTML page names the bundle in a ``Link: rel=modulepreload`` header, so
    the browser fetches (and compiles) it while Solara's own scripts load instead of after the
    first chart asks for it. (Evaluating it that early, as a module script of the page, was
    slower: it held up the page's first paint.)"""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the header to an HTML response."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_link(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers", []))
                if _header(headers, b"content-type").startswith(b"text/html"):
                    link = f"<{bundle_path()}>; rel=modulepreload".encode("latin-1")
                    message = {**message, "headers": [*headers, (b"link", link)]}
            await send(message)

        await self.app(scope, receive, send_with_link)
