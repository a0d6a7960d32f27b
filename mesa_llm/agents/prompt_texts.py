"""The shipped prompt templates an LLM agent renders every step, written by Python: the same text, without Jinja.

Why: an LLM agent renders its observation, memory, plan and act prompts every step; through Jinja the observation
was ~30 us (attribute look-ups through the environment, a context object, a generator of ~60 pieces) and the other
three ~25 us together, ~14 % of an LLM call's client CPU. `act_text`, `plan_text` (with the shipped ``tools.j2``
they include) and `memory_text` write their short templates; `observation_text`
follows the template's compiled code (``env.compile(source, raw=True)``) statement by statement for the parts an
ordinary trader's observation has (the step, the account, private values, the market, open orders, recent trades,
the tools) and returns None for anything else: a section the everyday observation leaves empty (rejections,
messages, a suspension, negotiations, contracts, alliances, reputation, surveillance), a part that is not a plain
dict or list, a key the template reads that is missing (Jinja then raises its own error). The caller renders the
template then (the reference). It is used only where the shipped template itself would render
(`mesa_llm.agents.prompts.PromptLibrary`: the library's source of the template, and of all it includes, is the
shipped file's). Every writer declines (None) when a variable its template reads is absent.

Jinja's semantics it keeps: ``{{ x }}`` is ``str(x)``; ``a.b`` of a plain dict is its key ``"b"``; ``join`` is
``sep.join(map(str, ...))``; ``is none`` is ``is None``; ``if`` is Python's truth; the template's whitespace
(``trim_blocks``, ``lstrip_blocks``) is written out in the literal pieces below. tests/agents/test_prompt_texts.py
renders both ways for many observations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: the keys of an observation that, when truthy, take the template (sections this function does not write)
_RARE = ("rejections", "messages", "suspended_until", "negotiations", "contracts", "alliances", "reputation",
         "surveillance")  # fmt: skip
_RARE_KEYS = frozenset(_RARE)
#: the keys `observation_text` reads of a private view, an order, a trade and a market good
_PRIVATE_KEYS = frozenset({"values", "values_left", "costs", "costs_left", "fundamental"})
_ORDER_KEYS = frozenset({"order_id", "side", "remaining", "good", "price", "lifetime"})
_TRADE_KEYS = frozenset({"step", "side", "quantity", "good", "price"})
_GOOD_KEYS = frozenset({"last_price", "reference_price", "last_trade_step", "last_volume", "last_clearing_step",
                        "best_bid", "best_ask", "price_history"})  # fmt: skip
_MARKET_KEYS = frozenset({"market_exists"})
_ACCOUNT_KEYS = frozenset({"cash", "reserved_cash", "holdings", "reserved_goods"})
#: the variables the writers read: tools.j2 (both modes, then JSON mode's own), act.j2 and plan.j2's own
_TOOLS_VARIABLES = frozenset({"agent_id", "agent_name", "tool_mode", "max_actions"})
_JSON_VARIABLES = frozenset({"example", "tool_signatures"})
_OPENING_VARIABLES = frozenset({"memory_text", "observation_text"})
#: a key that is absent
_ABSENT: Any = object()


def _has(value: Any, keys: frozenset[str]) -> bool:
    """Whether ``value`` is a plain dict holding every one of ``keys`` (as the template reads them)."""
    return type(value) is dict and value.keys() >= keys


def observation_text(context: dict[str, Any], num: Callable[[Any], str]) -> str | None:
    """``observation.j2`` (the shipped one) rendered with ``context`` (``obs``, ``market``, ``tool_mode``) and the
    library's ``num`` filter, before the library's final ``strip``; None when the observation is not of the everyday
    kind this writes (see the module)."""
    obs = context.get("obs")
    if type(obs) is not dict:
        return None
    if not obs.keys() >= _RARE_KEYS or any(map(obs.get, _RARE)):
        return None
    step, horizon, role = obs.get("step"), obs.get("horizon"), obs.get("role", _ABSENT)
    if type(step) is not int or type(horizon) is not int or role is _ABSENT:
        return None
    account: Any = obs.get("account")
    private, goods = obs.get("private"), obs.get("market")
    orders, trades, actions = obs.get("open_orders"), obs.get("recent_trades"), obs.get("available_actions")
    if type(private) is not dict or type(goods) is not dict or type(orders) is not list or type(trades) is not list:
        return None
    if type(actions) is not list:
        return None
    market = context.get("market", _ABSENT)
    if market is not _ABSENT and not _has(market, _MARKET_KEYS):
        return None
    tool_mode = context.get("tool_mode", _ABSENT)
    out = [f"Step {step!s} of {horizon!s} ({horizon - step!s} after this one).\n\n"]
    if role not in ("mediator", "regulator"):
        if not _has(account, _ACCOUNT_KEYS):
            return None
        holdings, reserved_goods = account["holdings"], account["reserved_goods"]
        if type(holdings) is not dict or type(reserved_goods) is not dict:
            return None
        out.append(f"Your account: cash {num(account['cash'])}")
        if account["reserved_cash"]:
            out.append(f" ({num(account['reserved_cash'])} reserved)")
        out.append("; holdings")
        last = len(holdings) - 1
        for i, (good, q) in enumerate(holdings.items()):
            out.append(f" {good!s} {q!s}")
            if reserved_goods.get(good):
                out.append(f" ({reserved_goods[good]!s} reserved)")
            if i != last:
                out.append(",")
        out.append(".\n")
    for good, p in private.items():
        if not _has(p, _PRIVATE_KEYS):
            return None
        values, costs, fundamental = p["values"], p["costs"], p["fundamental"]
        out.append(f"Private, {good!s}:")
        if values:
            out.append(f" values of your next units {', '.join(map(num, values))}")
            if p["values_left"] > len(values):
                out.append(f" ({p['values_left']!s} units left in all)")
            out.append(";")
        if costs:
            out.append(f" costs of your next units {', '.join(map(num, costs))}")
            if p["costs_left"] > len(costs):
                out.append(f" ({p['costs_left']!s} units left in all)")
            out.append(";")
        if fundamental is not None:
            out.append(f" your estimate of its value {num(fundamental)};")
        if not values and not costs and fundamental is None:
            out.append(" no units left to trade;")
        out.append("\n")
    if market is _ABSENT or market["market_exists"]:
        out.append("Market:\n")
        for good, m in goods.items():
            if not _has(m, _GOOD_KEYS):
                return None
            out.append(f"- {good!s}: ")
            last_price = m["last_price"]
            if last_price is None:
                out.append(f"no trade yet (reference price {num(m['reference_price'])})")
            else:
                out.append(f"last trade at {num(last_price)}")
                if m["last_trade_step"] is not None:
                    out.append(f" in step {m['last_trade_step']!s}")
                if m["last_volume"]:
                    out.append(f" ({m['last_volume']!s} units)")
                else:
                    out.append("; no trade last step")
            bid, ask = m["best_bid"], m["best_ask"]
            if m["last_clearing_step"] == step - 1 and (bid is not None or ask is not None):
                out.append(f"; last step's best bid {num(bid) if bid is not None else 'none'}, best ask "
                           f"{num(ask) if ask is not None else 'none'}")  # fmt: skip
            history = m["price_history"]
            if len(history) > 1:
                out.append(f"; recent trade prices {', '.join(map(num, history[-5:]))}")
            out.append(".\n")
    if orders:
        out.append("Your open orders:\n")
        for o in orders:
            if not _has(o, _ORDER_KEYS):
                return None
            out.append(f"- #{o['order_id']!s} {o['side']!s} {o['remaining']!s} {o['good']!s} at {num(o['price'])} ({o['lifetime']!s})\n")
    if trades:
        out.append("Your recent trades:\n")
        for t in trades:
            if not _has(t, _TRADE_KEYS):
                return None
            side = "bought" if t["side"] == "buy" else "sold"
            out.append(f"- step {t['step']!s}: {side} {t['quantity']!s} {t['good']!s} at {num(t['price'])}\n")
    if tool_mode is _ABSENT or tool_mode != "json":
        out.append(f"Tools available now: {', '.join(map(str, actions))}.\n")
    return "".join(out)


def _given(context: dict[str, Any], names: frozenset[str]) -> bool:
    """Whether ``context`` gives every one of ``names`` (an absent one fails the template: the writers decline)."""
    return context.keys() >= names


def _tools_text(context: dict[str, Any]) -> str | None:
    """The shipped ``tools.j2`` (included by act.j2 and plan.j2) with ``context``; None when a variable it reads is
    absent or a JSON-mode signature is not a string."""
    if not _given(context, _TOOLS_VARIABLES):
        return None
    head = f"You are agent {context['agent_id']!s} ({context['agent_name']!s}).\n"
    if context["tool_mode"] != "json":
        return f"{head}When you act, call the tools for the actions you want (at most {context['max_actions']!s}); call `wait` to do nothing.\n"
    if not _given(context, _JSON_VARIABLES):
        return None
    lines = context["tool_signatures"]
    if type(lines) is not list or not all(type(line) is str for line in lines):
        return None
    out = [head, 'When you act, answer with one JSON object {"actions": [{"tool": <name>, "arguments": {...}}, ...]} of at most ',
           f"{context['max_actions']!s} actions, e.g. {context['example']!s}\nTools (? = optional):\n"]  # fmt: skip
    # the template's three loops: plain tools, then those naming agents, then those with numeric ranges
    out += [f"- {line}\n" for line in lines if ".." not in line and "_id: " not in line]
    out += [f"- {line}\n" for line in lines if ".." not in line and "_id: " in line]
    out += [f"- {line}\n" for line in lines if ".." in line]
    return "".join(out)


def _opening(context: dict[str, Any]) -> list[str] | None:
    """The beginning act.j2 and plan.j2 share: the tools, the memory (when any) and the observation."""
    if not _given(context, _OPENING_VARIABLES):
        return None
    tools = _tools_text(context)
    if tools is None:
        return None
    memory = context["memory_text"]
    return [tools, "\n", f"{memory!s}\n\n" if memory else "", f"{context['observation_text']!s}"]


def act_text(context: dict[str, Any], num: Callable[[Any], str]) -> str | None:
    """The shipped ``act.j2`` (with the shipped ``tools.j2``) rendered with ``context``; None when a variable it
    reads is absent (see `_tools_text`)."""
    out = _opening(context)
    if out is None or "plan" not in context:
        return None
    plan = context["plan"]
    out.append(f"\n\nYour plan: {plan!s}\n" if plan else "\n")
    out.append(f"\nDecide your actions for this step (at most {context['max_actions']!s}).")
    return "".join(out)


def plan_text(context: dict[str, Any], num: Callable[[Any], str]) -> str | None:
    """The shipped ``plan.j2`` (with the shipped ``tools.j2``) rendered with ``context``; None when a variable it
    reads is absent (see `_tools_text`)."""
    out = _opening(context)
    if out is None:
        return None
    out.append("\n\nThink about this step before acting. In at most two short sentences, write your plan: what you "
               "will do now and why, given your private information and the market. Do not call any tool; answer in "
               "plain text.")  # fmt: skip
    return "".join(out)


def memory_text(context: dict[str, Any], num: Callable[[Any], str]) -> str | None:
    """The shipped ``memory.j2`` rendered with ``context``; None unless ``memory`` is a plain dict with ``summary``
    and ``recent`` (a list)."""
    memory = context.get("memory")
    if type(memory) is not dict or "summary" not in memory or type(memory.get("recent")) is not list:
        return None
    summary, recent = memory["summary"], memory["recent"]
    out = [f"So far: {summary!s}\n"] if summary else []
    if recent:
        out.append("Recent events:\n")
        out += [f"- {e!s}\n" for e in recent]
    return "".join(out)
