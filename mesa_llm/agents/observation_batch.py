"""A step's observations built in one pass, with the JSON text each is recorded as.

`TraderAgent.observe` builds one agent's observation; a recording then encodes it (~1.1 KB, most
of it the market part all agents share and parts that change only when the agent trades).
`ObservationBatch` builds the same observation objects and, alongside, their recorded text from
parts made once per step (the market part, the step) or once per agent and kept while what they
show is unchanged (the agent's head, account and private parts, from the ledger's integers and the
schedules; its recent trades; the tail of its tools and empty parts, once per tool list). The text
is exactly ``encode(observation.to_dict())``: every part is made by the encoder or by the
hand-built writers that give its text (`account_json`, `private_json`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mesa_llm.agents.observation import (
    AccountView,
    Encoder,
    MarketSnapshot,
    Observation,
    _rest,
    account_json,
    private_json,
)

if TYPE_CHECKING:
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Ledger, Money

__all__ = ["ObservationBatch", "account_view"]


def account_view(account: Any, to_units: Any) -> AccountView:
    """The `AccountView` of a ledger account (its balances in currency units; goods reserved by
    open orders listed only when nonzero; available goods with the short limit added)."""
    holdings = dict(account.holdings)
    reserved = account.reserved_goods
    short_limit = account.short_limit
    if any(reserved.values()):
        shown_reserved = {g: q for g, q in reserved.items() if q}
        available = {g: q - reserved.get(g, 0) + short_limit for g, q in holdings.items()}
    else:  # nothing reserved (the usual state at a step's start): the same dicts, fewer steps
        shown_reserved = {}
        available = {g: q + short_limit for g, q in holdings.items()} if short_limit else dict(holdings)
    # positional: the view's fields in their order (keywords cost a third more per view)
    return AccountView(
        to_units(account.cash), holdings, to_units(account.reserved_cash), shown_reserved,
        to_units(account.available_cash()), available,
    )  # fmt: skip


class _Seen:
    """What an agent's last recorded observation was made of, and the text made of it."""

    __slots__ = (
        "cash", "reserved_cash", "credit_limit", "short_limit", "holdings", "reserved_goods", "account_json",
        "private_key", "private_json", "head_key", "head", "mid", "trades", "trade_texts", "tools", "tail",
    )  # fmt: skip

    def __init__(self) -> None:
        self.cash: Any = None  # None: nothing made yet
        self.reserved_cash: Any = None
        self.credit_limit: Any = None
        self.short_limit: Any = None
        self.holdings: dict[str, int] = {}
        self.reserved_goods: dict[str, int] = {}
        self.account_json = ""
        self.private_key: Any = None
        self.private_json = ""
        self.head_key: Any = None
        self.head = ""
        #: the text from the head to the market part's key, made of the three before
        self.mid: str | None = None
        self.trades: tuple[Any, ...] | None = None
        self.trade_texts: list[str] = []
        self.tools: Any = None
        #: the text from "recent_trades" to the end, for ``trades`` and ``tools`` (None: remake it)
        self.tail: str | None = None


class ObservationBatch:
    """Builds one run's observations step by step, as `TraderAgent.observe` does, and (given the
    recorder's encoder) the JSON text of each, ``encode(observation.to_dict())``, from kept parts.

    Call `begin` at each step, then `observe` for each agent; the kept parts are per agent and
    compared with the state they were made from at every step (the ledger's integers, the private
    schedules and unit counts, the trade records, the tool list), so no change goes unseen.
    """

    def __init__(self, encode: Encoder | None) -> None:
        """``encode``: the recorder's compact encoder (None: observations are not recorded)."""
        self.encode = encode
        self._seen: dict[Any, _Seen] = {}
        #: the text after "recent_trades" of an observation whose rest is empty but for its tools
        self._rest: dict[tuple[str, ...], str] = {}
        self._step: Any = None
        self._step_text = ""
        self._market_text = ""
        self._horizon = 0
        self._market: MarketSnapshot | None = None
        self._accounts: Any = None
        self._money: Money | None = None

    def begin(self, step: int, horizon: int, market: MarketSnapshot, ledger: Ledger, money: Money) -> None:
        """Start a step: the shared market snapshot and what every agent's observation reads."""
        encode = self.encode
        if money is not self._money:
            self._seen.clear()  # the texts are in another currency unit
        self._step, self._horizon, self._market = step, horizon, market
        self._accounts, self._money = ledger.account, money
        if encode is not None:
            self._step_text = f'{{"step":{step if type(step) is int else encode(step)},'
            self._market_text = market.to_json(encode)

    def observe(
        self, agent: TraderAgent, open_orders: list[dict[str, Any]], tools: tuple[str, ...],
        surveillance: dict[str, Any] | None = None,
    ) -> tuple[Observation, str | None]:  # fmt: skip
        """``agent``'s observation (what `TraderAgent.observe` gives, with ``tools`` as its
        ``available_actions`` and ``surveillance`` set) and its JSON text (None when not recording)."""
        money = self._money
        assert money is not None and self._market is not None, "begin() first"
        me = agent.unique_id
        account = self._accounts(me)
        to_units = money.to_units
        view = account_view(account, to_units)
        private, private_key = agent.private_views(money)
        recent_trades = list(agent.recent_trades) if agent.keep_trades else []
        shown = agent.messages_shown
        observation = Observation(
            self._step, self._horizon, me, agent.name, agent.role._value_, money.tick_size, view, private,
            self._market, open_orders, recent_trades, agent.inbox[-shown:] if shown else [], agent.rejections,
            list(tools),
        )  # fmt: skip
        if surveillance is not None:
            observation.surveillance = surveillance
        encode = self.encode
        if encode is None:
            return observation, None
        seen = self._seen.get(me)
        if seen is None:
            seen = self._seen[me] = _Seen()
        mid = seen.mid
        if (
            seen.cash != account.cash or seen.reserved_cash != account.reserved_cash
            or seen.credit_limit != account.credit_limit or seen.short_limit != account.short_limit
            or seen.holdings != account.holdings or seen.reserved_goods != account.reserved_goods
        ):  # fmt: skip
            seen.cash, seen.reserved_cash = account.cash, account.reserved_cash
            seen.credit_limit, seen.short_limit = account.credit_limit, account.short_limit
            seen.holdings, seen.reserved_goods = dict(account.holdings), dict(account.reserved_goods)
            seen.account_json = account_json(view, encode)
            mid = None
        if seen.private_key != private_key:
            seen.private_key = private_key
            seen.private_json = private_json(private, encode)
            mid = None
        head_key = (self._horizon, observation.name, observation.role, observation.tick_size)
        if seen.head_key != head_key or type(observation.tick_size) is not float:
            seen.head_key = head_key
            seen.head = encode({"horizon": self._horizon, "agent_id": me, "name": observation.name,
                                "role": observation.role, "tick_size": observation.tick_size})[1:-1]  # fmt: skip
            mid = None
        if mid is None:
            mid = seen.mid = f'{seen.head},"account":{seen.account_json},"private":{seen.private_json},"market":'
        trades = tuple(recent_trades)
        if seen.trades != trades:
            # a trade record's text is made once, when it first shows, and reused while it stays in
            # the window (records are never changed; the kept tuple holds them, so ids are theirs)
            known = dict(zip(map(id, seen.trades or ()), seen.trade_texts, strict=True))
            seen.trade_texts = [known.get(id(t)) or encode(t) for t in trades]
            seen.trades, seen.tail = trades, None
        if seen.tools is not tools:
            seen.tools, seen.tail = tools, None
        tail = seen.tail
        special = observation.messages or observation.rejections or surveillance is not None
        if tail is None or special:
            if special:  # shown this step only: not kept
                rest = encode(_rest(observation))
            else:
                rest = self._rest.get(tools)  # type: ignore[assignment]
                if rest is None:
                    rest = self._rest[tools] = encode(_rest(observation))
            tail = f'"recent_trades":[{",".join(seen.trade_texts)}],{rest[1:]}'
            if not special:
                seen.tail = tail
        open_text = "[]" if not open_orders else encode(open_orders)
        return observation, f'{self._step_text}{mid}{self._market_text},"open_orders":{open_text},{tail}'
