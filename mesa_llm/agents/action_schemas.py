"""Tool schemas that fit the agent and the moment, so small models can follow them.

Two flavours, both built from the registry's action schemas (:meth:`ActionRegistry.tool_schemas`):

* :func:`stable_tool_schemas` — for native tool calling: the agent's tools for the whole run, with
  enums only for what never changes during the run (the goods, the sides its role may trade, the
  other agents' ids). The list is the same every step, so providers' prompt caching works.
* :func:`state_tool_schemas` — for JSON-schema structured output: only the tools usable now, with
  enums of what exists this step (goods, sides it can afford, open sessions, standing offers, its
  open orders, messages, alliances) and numbers bounded to what the world admits (prices within
  the good's admissible range, quantities within what the agent holds or can pay for).

Every string gets ``maxLength`` ≤ :data:`MAX_SCHEMA_STRING` (:data:`MAX_STATE_STRING` in JSON mode; long limits crashed llama.cpp's grammar
compiler) and id enums are bounded (:data:`MAX_ENUM_IDS`, else an integer range). Schemas are a
help, not the rule: the world validates every action again.
"""

from __future__ import annotations

import copy
import json
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mesa_llm.actions import ACTION_CLASSES, ActionRegistry
from mesa_llm.agents.observation import Observation

#: longest string any schema allows (llama.cpp's grammar compiler crashed on maxLength 2000)
MAX_SCHEMA_STRING = 500
#: longest string in JSON mode's per-state schemas: a small model rambling inside a message's text
#: (digits, repeated words) otherwise spends the whole token budget there and the answer is cut off
MAX_STATE_STRING = 100
#: most ids listed in one enum; beyond it an integer range stands for them
MAX_ENUM_IDS = 64
#: largest quantity a schema admits when nothing narrower is known
MAX_QUANTITY = 10**9

Schema = dict[str, Any]
_Patch = Callable[[dict[str, Any], "_Facts"], None]


class _Facts:
    """What the schemas of one agent may name: stable facts, plus this step's when known.

    The other agents are kept as the schemas show them (`peers_shown`: their ids up to
    :data:`MAX_ENUM_IDS`, else their range and count), never as their whole list: given ``shown``
    by a caller that found it in O(log agents), an agent's schemas cost the same at 100 agents
    as at 10,000 (sorting every agent's peers every step made JSON mode O(agents^2) a step)."""

    __slots__ = ("goods", "sides", "shown", "price_range", "obs")

    def __init__(
        self,
        goods: Mapping[str, tuple[float, float]],
        sides: Sequence[str],
        peers: Sequence[int] | None,
        obs: Observation | None = None,
        *,
        shown: tuple[Any, ...] | None = None,
    ) -> None:
        self.goods = dict(goods)
        self.sides = list(sides)
        self.shown = shown if shown is not None else peers_shown(sorted(set(peers or ())))
        lows = [lo for lo, _ in self.goods.values()]
        highs = [hi for _, hi in self.goods.values()]
        self.price_range: tuple[float, float] | None = (min(lows), max(highs)) if lows else None
        self.obs = obs

    def peer_schema(self, description: str | None = None) -> Schema:
        """`id_schema` of the other agents' ids, from how they show."""
        shown = self.shown
        if not _is_range(shown):
            return id_schema(shown, description)
        out: Schema = {"type": "integer", "minimum": shown[2], "maximum": shown[3]}
        if description:
            out["description"] = description
        return out

    def peer_count(self) -> int:
        """How many other agents there are, up to 100 (an id list's ``maxItems``)."""
        return int(self.shown[1]) if _is_range(self.shown) else min(len(self.shown), 100)

    def sessions(self, action: str) -> list[dict[str, Any]]:
        """This step's open sessions in which ``action`` is allowed (empty without a state)."""
        if self.obs is None:
            return []
        return [
            s
            for s in self.obs.negotiations
            if s.get("status") == "open" and action in (s.get("allowed") or []) and isinstance(s.get("session_id"), str)
        ]


# -- small schema builders ----------------------------------------------------------------------


def id_schema(ids: Iterable[int], description: str | None = None) -> Schema:
    """An integer that is one of ``ids``: an enum up to :data:`MAX_ENUM_IDS` ids, else their range."""
    values = sorted(set(ids))
    out: Schema = {"type": "integer"}
    if not values:
        out["minimum"] = 0
    elif len(values) <= MAX_ENUM_IDS:
        out["enum"] = values
    else:
        out["minimum"], out["maximum"] = values[0], values[-1]
    if description:
        out["description"] = description
    return out


def _str_enum(values: Iterable[str], description: str | None = None) -> Schema:
    unique = list(dict.fromkeys(v for v in values if isinstance(v, str)))[:MAX_ENUM_IDS]
    out: Schema = {"type": "string", "enum": unique} if unique else {"type": "string", "maxLength": 64}
    if description:
        out["description"] = description
    return out


def _number(low: float, high: float, description: str | None = None) -> Schema:
    out: Schema = {"type": "number", "minimum": low, "maximum": max(high, low)}
    if description:
        out["description"] = description
    return out


def _terms_schema(spaces: list[dict[str, Any]]) -> Schema | None:
    """The terms of one outcome space (bounds per issue), when every candidate session shares it."""
    distinct = {json.dumps(s, sort_keys=True) for s in spaces}
    if len(distinct) != 1:
        return None
    issues = spaces[0].get("issues") or []
    properties: dict[str, Schema] = {}
    for issue in issues:
        name, kind = issue.get("name"), issue.get("type")
        if not isinstance(name, str):
            return None
        if kind == "categorical":
            properties[name] = _str_enum(issue.get("values") or [])
        elif kind in ("continuous", "integer") and issue.get("low") is not None and issue.get("high") is not None:
            low, high = issue["low"], issue["high"]
            if kind == "integer":
                properties[name] = {"type": "integer", "minimum": int(low), "maximum": int(high)}
            else:
                tick = issue.get("tick")
                described = f"a multiple of {tick:g}" if tick else None
                properties[name] = _number(float(low), float(high), described)
        else:
            return None
    if not properties:
        return None
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        "description": "a value for every issue",
    }


def _set_ids(params: dict[str, Any], name: str, ids: Sequence[int], *, optional: bool = False) -> None:
    _set_id(params, name, lambda description: id_schema(ids, description), optional=optional)


def _set_id(
    params: dict[str, Any], name: str, make: Callable[[str | None], Schema], *, optional: bool = False
) -> None:
    """``params[name]`` as the id schema ``make(description)`` gives (nullable when ``optional``)."""
    props = params["properties"]
    if name not in props:
        return
    schema = make(props[name].get("description"))
    props[name] = {"anyOf": [schema, {"type": "null"}], "default": None} if optional else schema


def _set_peer_list(params: dict[str, Any], name: str, f: _Facts) -> None:
    """``params[name]`` as a list of other agents' ids (at most as many as there are, up to 100)."""
    props = params["properties"]
    if name not in props or not f.shown:
        return
    old = props[name]
    inner = old["anyOf"][0] if "anyOf" in old else old
    array: Schema = {"type": "array", "items": f.peer_schema(), "minItems": 1, "maxItems": f.peer_count()}
    if "description" in old:
        array["description"] = old["description"]
    if inner.get("minItems") is None:
        array.pop("minItems")
    props[name] = {"anyOf": [array, {"type": "null"}], "default": None} if "anyOf" in old else array


def _require(params: dict[str, Any], name: str, schema: Schema) -> None:
    params["properties"][name] = schema
    if name not in params["required"]:
        params["required"].append(name)


# -- per-tool patches -----------------------------------------------------------------------------


def _place_order(params: dict[str, Any], f: _Facts) -> None:
    props = params["properties"]
    if f.goods:
        props["good"] = _str_enum(f.goods, "name of the good")
    sides = list(f.sides)
    if f.obs is not None:
        account = f.obs.account
        can_buy = "buy" in sides and account.available_cash > 0
        can_sell = "sell" in sides and any(q > 0 for q in account.available_goods.values())
        narrowed = [s for s, ok in (("buy", can_buy), ("sell", can_sell)) if ok]
        sides = narrowed or sides
    if sides:
        props["side"] = {"type": "string", "enum": sides}
    if f.price_range is not None:
        props["price"] = _number(*f.price_range, props["price"].get("description"))
    if f.obs is not None:
        props["quantity"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": _max_quantity(f, sides),
            "description": props["quantity"].get("description", "number of units"),
        }


def _max_quantity(f: _Facts, sides: Sequence[str]) -> int:
    assert f.obs is not None
    account = f.obs.account
    best = 1
    if "sell" in sides:
        best = max(best, *account.available_goods.values(), 1)
    if "buy" in sides:
        cheapest = min((lo for lo, _ in f.goods.values()), default=0.0)
        if cheapest > 0:
            best = max(best, int(math.floor(account.available_cash / cheapest)))
    return min(best, MAX_QUANTITY)


def _cancel_order(params: dict[str, Any], f: _Facts) -> None:
    if f.obs is not None and f.obs.open_orders:
        params["properties"]["order_id"] = id_schema(o["order_id"] for o in f.obs.open_orders)


def _talk(params: dict[str, Any], f: _Facts) -> None:
    if f.shown:
        _set_id(params, "recipient_id", f.peer_schema)


def _forward(params: dict[str, Any], f: _Facts) -> None:
    if f.obs is not None and f.obs.messages:
        ids = [m["message_id"] for m in f.obs.messages if isinstance(m.get("message_id"), int)]
        if ids:
            params["properties"]["message_id"] = id_schema(ids)
    _set_peer_list(params, "recipient_ids", f)


def _session_schema(sessions: list[dict[str, Any]]) -> Schema:
    return _str_enum((s["session_id"] for s in sessions), "the negotiation")


def _counterparts(sessions: list[dict[str, Any]], me: int) -> list[int]:
    return sorted({p for s in sessions for p in s.get("parties") or [] if isinstance(p, int) and p != me})


def _make_offer(params: dict[str, Any], f: _Facts) -> None:
    props = params["properties"]
    if f.goods:
        props["good"] = {"anyOf": [_str_enum(f.goods), {"type": "null"}], "default": None, "description": "good of a new negotiation"}
    if f.shown:
        _set_id(params, "counterparty_id", f.peer_schema, optional=True)
    sessions = f.sessions("make_offer")
    if not sessions or f.obs is None:
        return
    # offers go into the sessions that exist: a required session id, terms within their space
    _require(params, "session_id", _session_schema(sessions))
    params["required"] = ["session_id", *[r for r in params["required"] if r != "session_id"]]
    props.pop("good", None)
    counterparts = _counterparts(sessions, f.obs.agent_id)
    if all(len(s.get("parties") or []) <= 2 for s in sessions):
        props.pop("counterparty_id", None)  # bilateral: the offer can only go to the other party
    elif counterparts:
        _set_ids(params, "counterparty_id", counterparts, optional=True)
    terms = _terms_schema([s.get("space") or {} for s in sessions])
    if terms is not None:
        props["terms"] = terms


def _standing_ids(sessions: list[dict[str, Any]]) -> list[int]:
    return [o["offer_id"] for s in sessions for o in s.get("standing") or [] if isinstance(o.get("offer_id"), int)]


def _accept(params: dict[str, Any], f: _Facts) -> None:
    sessions = f.sessions("accept_offer")
    if not sessions:
        return
    params["properties"]["session_id"] = _session_schema(sessions)
    offers = _standing_ids(sessions)
    if offers:
        params["properties"]["offer_id"] = id_schema(offers, "the standing offer you accept")


def _reject(params: dict[str, Any], f: _Facts) -> None:
    sessions = f.sessions("reject_offer")
    if not sessions:
        return
    params["properties"]["session_id"] = _session_schema(sessions)
    offers = _standing_ids(sessions)
    if offers:
        _set_ids(params, "offer_id", offers, optional=True)
    terms = _terms_schema([s.get("space") or {} for s in sessions])
    if terms is not None:
        params["properties"]["counter"] = {"anyOf": [terms, {"type": "null"}], "default": None}


def _end(params: dict[str, Any], f: _Facts) -> None:
    sessions = f.sessions("end_negotiation")
    if sessions:
        params["properties"]["session_id"] = _session_schema(sessions)


def _cfp(params: dict[str, Any], f: _Facts) -> None:
    if f.goods:
        params["properties"]["good"] = _str_enum(f.goods)
    _set_peer_list(params, "seller_ids", f)


def _settle(params: dict[str, Any], f: _Facts) -> None:
    sessions = f.sessions("propose_settlement")
    if not sessions:
        return
    params["properties"]["session_id"] = _session_schema(sessions)
    terms = _terms_schema([s.get("space") or {} for s in sessions])
    if terms is not None:
        params["properties"]["terms"] = terms


def _bid(params: dict[str, Any], f: _Facts) -> None:
    sessions = f.sessions("bid")
    if sessions:
        params["properties"]["session_id"] = _session_schema(sessions)
        bounds = [f.goods[s["good"]] for s in sessions if s.get("good") in f.goods]
        if bounds:
            params["properties"]["price"] = _number(min(b[0] for b in bounds), max(b[1] for b in bounds))
    elif f.price_range is not None:
        params["properties"]["price"] = _number(*f.price_range)


def _regulate(params: dict[str, Any], f: _Facts) -> None:
    if f.shown:
        _set_id(params, "agent_id", f.peer_schema)


def _propose_alliance(params: dict[str, Any], f: _Facts) -> None:
    _set_peer_list(params, "invitee_ids", f)


def _alliance_name(source: str) -> _Patch:
    def patch(params: dict[str, Any], f: _Facts) -> None:
        if f.obs is None:
            return
        alliances = f.obs.alliances or {}
        if source == "invited_to":
            names = [n for n in alliances.get("invited_to") or [] if isinstance(n, str)]
        else:
            names = [a["name"] for a in alliances.get("member_of") or [] if isinstance(a, dict) and isinstance(a.get("name"), str)]
        if names:
            params["properties"]["name"] = _str_enum(names)

    return patch


_PATCHES: dict[str, _Patch] = {
    "place_order": _place_order,
    "cancel_order": _cancel_order,
    "send_message": _talk,
    "forward_message": _forward,
    "make_offer": _make_offer,
    "accept_offer": _accept,
    "reject_offer": _reject,
    "end_negotiation": _end,
    "call_for_proposals": _cfp,
    "propose_settlement": _settle,
    "bid": _bid,
    "flag_violation": _regulate,
    "impose_fine": _regulate,
    "suspend_trader": _regulate,
    "propose_alliance": _propose_alliance,
    "join_alliance": _alliance_name("invited_to"),
    "leave_alliance": _alliance_name("member_of"),
    "message_alliance": _alliance_name("member_of"),
}


# -- whole schemas --------------------------------------------------------------------------------


def _tidy(node: Any, max_string: int = MAX_SCHEMA_STRING) -> Any:
    """Drop pydantic's titles (tokens that say nothing) and cap every string's length."""
    if isinstance(node, dict):
        out = {k: _tidy(v, max_string) for k, v in node.items() if k != "title"}
        if out.get("type") == "string" and "enum" not in out and "const" not in out:
            out["maxLength"] = min(int(out.get("maxLength", max_string)), max_string)
        return out
    if isinstance(node, list):
        return [_tidy(v, max_string) for v in node]
    return node


def _drop_nulls(params: dict[str, Any]) -> None:
    """An optional argument is left out, not sent as null: ``anyOf [X, null]`` becomes ``X`` and
    defaults go (fewer tokens for every call; the action's own model still accepts null)."""
    required = set(params["required"])
    for name, prop in list(params["properties"].items()):
        prop.pop("default", None)
        options = prop.get("anyOf")
        if name in required or not isinstance(options, list):
            continue
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(options):
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            params["properties"][name] = {**kept[0], **merged}


def _build(
    registry: ActionRegistry, names: Sequence[str], facts: _Facts, max_string: int = MAX_SCHEMA_STRING
) -> list[Schema]:
    out = []
    for base in registry.tool_schemas(list(names)):
        schema = copy.deepcopy(base)
        params = schema["function"]["parameters"]
        params["required"] = list(params.get("required", []))
        patch = _PATCHES.get(schema["function"]["name"])
        if patch is not None:
            patch(params, facts)
        elif facts.obs is not None and (cls := registry.action_class(schema["function"]["name"])) is not None:
            cls.narrow_schema(params, facts.obs)  # a plugin mechanism's action: its own bounds
        _drop_nulls(params)
        out.append(_tidy(schema, max_string))
    return out


def _is_range(shown: tuple[Any, ...]) -> bool:
    """Whether ``shown`` (`peers_shown`) stands for its agents by their range, not their ids."""
    return bool(shown) and shown[0] == "range"


def peers_shown(ids: Sequence[int], me: int | None = None) -> tuple[Any, ...]:
    """How the agents ``ids`` other than ``me`` show in a tool schema: `id_schema` of their ids (an
    enum up to :data:`MAX_ENUM_IDS` ids, else their range) and an id list's ``maxItems`` (at most
    100); so their ids up to that many, else ``("range", count up to 100, lowest, highest)``.
    ``ids`` sorted and unique; past MAX_ENUM_IDS ids it takes O(log ids), not O(ids)."""
    at = bisect_left(ids, me) if me is not None else len(ids)
    has_me = at < len(ids) and ids[at] == me
    count = len(ids) - has_me
    if count <= MAX_ENUM_IDS:
        return tuple(i for i in ids if i != me)
    low = ids[1] if has_me and at == 0 else ids[0]
    high = ids[-2] if has_me and at == len(ids) - 1 else ids[-1]
    return ("range", min(count, 100), low, high)


def stable_tools_key(
    registry: ActionRegistry,
    names: Sequence[str],
    *,
    goods: Mapping[str, tuple[float, float]],
    sides: Sequence[str],
    shown: tuple[Any, ...],
) -> tuple[Any, ...]:
    """What `stable_tool_schemas` is a function of, for peers that show as ``shown``
    (`peers_shown`): equal keys, equal lists. Past MAX_ENUM_IDS agents every agent of a population
    but the two at the ends of the ids has the same key, so the lists are built once per
    population, not once per agent (an O(agents) build per agent made the first step of 10,000 LLM
    agents O(agents^2))."""
    return (id(registry), tuple(names), tuple(goods.items()), tuple(sides), shown)


def stable_tool_schemas(
    registry: ActionRegistry,
    names: Sequence[str],
    *,
    goods: Mapping[str, tuple[float, float]],
    sides: Sequence[str],
    peers: Sequence[int],
) -> list[Schema]:
    """The agent's tools for the whole run (native tool calling): the same list every step.

    ``goods`` maps each good to its admissible (min, max) price, ``sides`` are the order sides the
    role may use, ``peers`` the other agents' ids; nothing that changes during the run is named.
    """
    return _build(registry, names, _Facts(goods, sides, peers))


def state_tool_schemas(
    registry: ActionRegistry,
    names: Sequence[str],
    observation: Observation,
    *,
    sides: Sequence[str],
    peers: Sequence[int] | None = None,
    shown: tuple[Any, ...] | None = None,
) -> list[Schema]:
    """The tools usable now with everything this step's ``observation`` pins down (JSON mode),
    the ones that trade or negotiate first and ``wait`` last (small models favour the first
    listed; the tools that end or cancel something come after the rest).

    The other agents are ``peers`` (their ids), or ``shown``: `peers_shown` of them, found by the
    caller without listing them (the same schemas, in O(log agents) rather than O(agents))."""
    if shown is None and peers is None:
        raise TypeError("state_tool_schemas needs the peers or how they show (shown=peers_shown(...))")
    goods = {name: (g.min_price, g.max_price) for name, g in observation.market.goods.items()}
    facts = _Facts(goods, sides, peers, observation, shown=shown)
    tools = _build(registry, sorted(names, key=_listing_rank), facts, MAX_STATE_STRING)
    for tool in tools:
        if tool["function"]["name"] == "wait":
            # no free-text reason: a small model filled it with the same ramble as its messages,
            # tokens that only delay the answer
            tool["function"]["parameters"].update(properties={}, required=[])
    return tools


#: the talk tools among EXAMPLE_TOOLS: a plugin mechanism's own tools are listed and shown before them
_TALK_EXAMPLES = ("send_message", "broadcast")


def _listing_rank(name: str) -> int:
    if name in EXAMPLE_TOOLS:
        return EXAMPLE_TOOLS.index(name) + (1 if name in _TALK_EXAMPLES else 0)
    if name not in _BUILTIN_TOOLS:  # a plugin mechanism's: after the market tools, before the talk ones
        return EXAMPLE_TOOLS.index(_TALK_EXAMPLES[0])
    return len(EXAMPLE_TOOLS) + 1 + (1 if name == "wait" else 0)


def json_mode_format(tools: Sequence[Schema], max_actions: int | None = None) -> dict[str, Any]:
    """The ``response_format`` asking for ``{"actions": [{"tool": ..., "arguments": {...}}]}``,
    at most ``max_actions`` of them (a grammar-constrained server then stops generating there)."""
    variants = []
    for schema in tools:
        fn = schema["function"]
        variants.append(
            {
                "type": "object",
                "properties": {"tool": {"const": fn["name"]}, "arguments": fn["parameters"]},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
        )
    actions: Schema = {"type": "array", "items": {"anyOf": variants}, "minItems": 1}
    if max_actions is not None:
        actions["maxItems"] = max_actions
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "actions",
            "schema": {
                "type": "object",
                "properties": {"actions": actions},
                "required": ["actions"],
                "additionalProperties": False,
            },
        },
    }


# -- the JSON-mode prompt's view of the tools ---------------------------------------------------


def _describe_value(schema: Schema) -> str:
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _describe_value(kinds[0]) if len(kinds) == 1 else "value"
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind in ("number", "integer"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{kind} {low:g}..{high:g}"
        if low is not None:
            return f"{kind} >= {low:g}"
        return str(kind)
    if kind == "string":
        return f"string (max {schema.get('maxLength', MAX_SCHEMA_STRING)} chars)"
    if kind == "array":
        return f"list of {_describe_value(schema.get('items') or {})}"
    if kind == "object":
        props = schema.get("properties")
        if props:
            return "{" + ", ".join(f"{k}: {_describe_value(v)}" for k, v in props.items()) + "}"
        return "object"
    return str(kind or "value")


def tool_signatures(tools: Sequence[Schema]) -> list[str]:
    """One line per tool: ``name(arg: type/allowed values, optional?: ...)`` for the JSON-mode prompt."""
    lines = []
    for schema in tools:
        fn = schema["function"]
        params = fn["parameters"]
        required = set(params.get("required", []))
        args = ", ".join(
            f"{name}{'' if name in required else '?'}: {_describe_value(prop)}"
            for name, prop in params.get("properties", {}).items()
        )
        lines.append(f"{fn['name']}({args}) - {fn.get('description', '')}".rstrip(" -"))
    return lines


def _example_value(schema: Schema, hint: float | None) -> Any:
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _example_value(kinds[0], hint) if kinds else None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind in ("number", "integer"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if kind == "integer":
            return int(low) if low is not None and low > 0 else 1
        if hint is not None and (low is None or hint >= low) and (high is None or hint <= high):
            return hint
        if low is not None and high is not None:
            return round((low + high) / 2, 2)
        return 1.0
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _example_value(v, hint) for k, v in props.items() if k in set(schema.get("required", []))}
    if kind == "array":
        return [_example_value(schema.get("items") or {}, hint)]
    return "..."


#: tools an example may show, best first: small models copy the example, so never one that
#: ends, cancels or punishes something (end_negotiation, cancel_order, impose_fine, ...)
EXAMPLE_TOOLS = (
    "place_order",
    "make_offer",
    "accept_offer",
    "bid",
    "propose_settlement",
    "call_for_proposals",
    "flag_violation",
    "send_message",
    "broadcast",
)


#: the built-in tools (an example never shows one of them outside EXAMPLE_TOOLS)
_BUILTIN_TOOLS = frozenset(c.tool_name for c in ACTION_CLASSES)


#: the example's JSON without spaces: the form a local model's grammar makes it answer in
#: (local_server.COMPACT_JSON), so its answer repeats the example token for token and the
#: server's prompt-lookup drafting (local_server.DRAFT_NGRAM) finds it in the prompt
_COMPACT = (",", ":")


def example_call(tools: Sequence[Schema], price_hint: float | None = None) -> str:
    """One example answer: the first offered tool of :data:`EXAMPLE_TOOLS` that trades or
    negotiates, else a plugin mechanism's own tool, else a message, its required arguments filled
    in (enums' first values, ``price_hint`` for prices in range), else ``wait``; compact JSON."""
    by_name = {t["function"]["name"]: t for t in tools}
    chosen = next((by_name[name] for name in EXAMPLE_TOOLS if name in by_name and name not in _TALK_EXAMPLES), None)
    if chosen is None:  # a plugin mechanism's own tool (the first listed) before any talk
        chosen = next((t for name, t in by_name.items() if name not in _BUILTIN_TOOLS), None)
    if chosen is None:
        chosen = next((by_name[name] for name in _TALK_EXAMPLES if name in by_name), None)
    if chosen is None:
        return json.dumps({"actions": [{"tool": "wait", "arguments": {}}]}, separators=_COMPACT)
    params = chosen["function"]["parameters"]
    required = set(params.get("required", []))
    arguments = {k: _example_value(v, price_hint) for k, v in params.get("properties", {}).items() if k in required}
    return json.dumps({"actions": [{"tool": chosen["function"]["name"], "arguments": arguments}]}, separators=_COMPACT)


__all__ = [
    "MAX_ENUM_IDS",
    "MAX_SCHEMA_STRING",
    "MAX_STATE_STRING",
    "example_call",
    "id_schema",
    "json_mode_format",
    "stable_tool_schemas",
    "state_tool_schemas",
    "tool_signatures",
]
