"""What the server tells people: the API description (also in `/openapi.json`), the `/docs`
reference rendered from the OpenAPI document (plain HTML: no script, nothing from another site),
and the files of the demo page at `/`."""

from __future__ import annotations

import html
import json
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi.responses import HTMLResponse, Response

API_DESCRIPTION = """\
Drive mesa_llm simulations from any language: create one from a scenario, step or run it, steer
it, watch it over a WebSocket, act for its external agents, and read recordings.

Every request and answer is JSON. Every refusal is `{"error": "one line"}` with a 4xx/5xx status.
When the server was started with a token (always when it listens beyond loopback), send
`Authorization: Bearer TOKEN` with every `/api` request (`GET /api/health` says whether one is needed).

## A simulation end to end

1. `GET /api/scenarios` — pick a scenario name, e.g. `double_auction`.
2. `POST /api/simulations` with `{"scenario": "double_auction", "seed": 3, "overrides": [...]}` → `201`
   and the simulation (`id`, `status: "idle"`, `external_agents`, `recording`). To take part
   yourself, add a population with `policy: external` through an override, e.g.
   `populations.2={"name": "me", "role": "buyer", "count": 1, "policy": "external",
   "private": {"widget": {"units": 2, "values": [150, 140]}}, "endowment": {"cash": 1000}}`
   (`N` in `populations.N` = the number of populations the scenario has appends one).
3. For each step: `GET /api/simulations/{id}/agents/{agent_id}/observation` (what your agent sees,
   with `available_actions` and their argument schemas), then
   `POST /api/simulations/{id}/agents/{agent_id}/actions` with
   `{"actions": [{"type": "place_order", "good": "widget", "side": "buy", "price": 120.0, "quantity": 1}]}`
   (answer: the actions refused at once), then `POST /api/simulations/{id}/step` with `{"steps": 1}`
   (answer: per step `trades`, `volume` and `rejections` of your actions by the world's rules).
   An agent given no actions for a step waits.
4. Or let it run: `POST /api/simulations/{id}/run` with `{"rate": 10}` (steps per second; 0 = as
   fast as it goes), then `.../pause`, `.../resume`, `.../stop`. Schedule a shock with
   `POST /api/simulations/{id}/events` and `{"event": {"type": "flash_crash", "magnitude": 0.2, "duration": 5}}`.
5. `GET .../state`, `GET .../metrics` any time; `DELETE /api/simulations/{id}` stops and forgets it.
   Its recording stays: `GET /api/recordings`, `GET /api/recordings/{name}/events?type=trade`,
   `GET /api/recordings/{name}/summary`.

A simulation stopped or finished stays readable until deleted; its recording always ends with
`simulation_end`.

## WebSocket: `ws://HOST:PORT/api/simulations/{id}/stream[?events=...]`

`events`: `*` (default: every event), `none`, or comma-separated event types (`trade,clearing`).
A browser passes the token as the subprotocol `bearer.TOKEN` next to `mesa-llm`; other clients
send the `Authorization` header. A browser page must be served by this server (its `Origin`).

Server → client, at once on connecting and after every step:

```
{"type": "state_update", "simulation_id": "sim-1", "timestamp": 1767000000.123, "tick": 12,
 "skipped_updates": 0, "skipped_events": 0,
 "data": {"agents": [{"agent_id", "name", "population", "role", "policy", "cash", "reserved_cash", "holdings"}],
          "environment": {"step", "max_steps", "status", "rate", "goods": {GOOD: {"best_bid", "best_ask",
                          "bid_depth", "ask_depth", "last_price", "last_volume", "reference_price"}},
                          "negotiations", "alliances", "reputation"},
          "metrics": {"trades", "volume", "fees", "allocative_efficiency", ...},
          "events": [recorded events of the step: {"event_id", "timestamp", "step", "agent_id", "event_type",
                     "content", "metadata"}]}}
```

`timestamp`: seconds since the epoch when the step ended; `tick`: the step. A client that reads
slower than the simulation steps gets coalesced updates: the latest state always, and
`skipped_updates` / `skipped_events` say how many steps and events since its previous message
are not in this one (also events beyond the server's per-update limit). When the simulation ends:
a last `state_update`, then `{"type": "simulation_end", "simulation_id", "status", "tick"}`, and
the server closes the socket (1000).

Client → server (at most the server's `messages_per_second`, each at most `max_message_bytes`):

```
{"type": "control", "command": "pause" | "resume" | "stop" | "step" | "run" | "schedule_event",
 "params": {...}, "id": "optional, echoed"}
```

`params`: `step` `{"steps": 1}`; `run` `{"rate": 10, "steps": null}`; `schedule_event`
`{"event": {"type": "flash_crash", ...}, "at_step": null}`; others `{}`. Answered by
`{"type": "ack", "id", "command", "result": {"simulation": {...}}}` or
`{"type": "error", "id", "error": "one line"}`; the connection stays open after an error.
"""

#: the demo page's Content Security Policy: its own script and style only, its own socket
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws://{host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@cache
def _page_file(name: str) -> bytes:
    return files("mesa_llm.server").joinpath("page", name).read_bytes()


def page_response(name: str, media_type: str, host: str) -> Response:
    """One file of the demo page (read from the package on first use)."""
    return Response(
        _page_file(name),
        media_type=media_type,
        headers={"content-security-policy": _PAGE_CSP.format(host=host), "cache-control": "no-cache"},
    )


def _schema_text(schema: Any) -> str:
    return html.escape(json.dumps(schema, indent=2, sort_keys=False))


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type_text(schema: dict[str, Any]) -> str:
    name = _ref_name(schema)
    if name:
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type_text(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type_text(schema.get('items', {}))}"
    return html.escape(str(schema.get("type", "any")))


def reference_page(openapi: dict[str, Any]) -> HTMLResponse:
    """The API reference at `/docs`: every route with its parameters, body and answers, every
    schema, and the WebSocket protocol, rendered on the server from the OpenAPI document."""
    info = openapi.get("info", {})
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(info.get('title', 'API'))} — reference</title>",
        "<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "pre{background:#f4f4f4;padding:.6em;overflow:auto;font-size:13px}code{background:#f4f4f4;padding:0 .2em}"
        ".op{border-top:1px solid #ccc;padding:.4em 0}.m{font-weight:bold;display:inline-block;width:5em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}"
        "</style></head><body>",
        f"<h1>{html.escape(info.get('title', 'API'))} {html.escape(str(info.get('version', '')))}</h1>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3). The demo page: <a href='/'>/</a>.</p>",
        f"<pre>{html.escape(info.get('description', ''))}</pre>",
        "<h2>Endpoints</h2>",
    ]
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            out.append("<div class='op'>")
            out.append(f"<h3><span class='m'>{html.escape(method.upper())}</span><code>{html.escape(path)}</code></h3>")
            if op.get("summary"):
                out.append(f"<p><b>{html.escape(op['summary'])}</b></p>")
            if op.get("description"):
                out.append(f"<p>{html.escape(op['description'])}</p>")
            params = op.get("parameters") or []
            if params:
                out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>about</th></tr>")
                for p in params:
                    out.append(
                        f"<tr><td><code>{html.escape(p.get('name', ''))}</code></td><td>{html.escape(p.get('in', ''))}</td>"
                        f"<td>{_type_text(p.get('schema', {}))}</td><td>{'yes' if p.get('required') else 'no'}</td>"
                        f"<td>{html.escape(p.get('description', '') or p.get('schema', {}).get('description', ''))}</td></tr>"
                    )
                out.append("</table>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                out.append(f"<p>Body (JSON): {_type_text(body)}</p>")
            answers = []
            for code, answer in op.get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                kind = _type_text(schema) if schema else ""
                answers.append(f"<tr><td>{html.escape(code)}</td><td>{html.escape(answer.get('description', ''))}</td><td>{kind}</td></tr>")
            out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>" + "".join(answers) + "</table>")
            out.append("</div>")
    out.append("<h2>Schemas</h2>")
    for name, schema in openapi.get("components", {}).get("schemas", {}).items():
        out.append(f"<h3 id='schema-{html.escape(name)}'>{html.escape(name)}</h3>")
        if schema.get("description"):
            out.append(f"<p>{html.escape(schema['description'])}</p>")
        out.append(f"<pre>{_schema_text(schema)}</pre>")
    out.append("</body></html>")
    return HTMLResponse("\n".join(out), headers={"content-security-policy": _DOCS_CSP})


__all__ = ["API_DESCRIPTION", "page_response", "reference_page"]
