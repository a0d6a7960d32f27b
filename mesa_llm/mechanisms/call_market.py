"""The call market as a mechanism: the exchange's orders, its per-good call auction and settlement.

An adapter over :class:`mesa_llm.world.exchange.Exchange` (which keeps the rules: goods, ticks,
admissible prices, reservations, the numpy clearing): orders and cancellations are resolved here,
and every step's clearings and trades are recorded (``clearing``, ``trade``) as they always were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mesa_llm import payloads
from mesa_llm.actions import ActionBase, CancelOrder, PlaceOrder, RejectedAction
from mesa_llm.mechanisms.base import Mechanism, Record, Recorded

if TYPE_CHECKING:
    from mesa_llm.agents.roles import Role
    from mesa_llm.agents.trader import TraderAgent
    from mesa_llm.market import Money
    from mesa_llm.world.exchange import Exchange

#: the tools of the call market
CALL_MARKET_TOOLS = ("place_order", "cancel_order")


class CallMarketMechanism(Mechanism):
    """Limit orders cleared by a uniform-price call auction per good at the end of every step."""

    name: ClassVar[str] = "call_market"
    summary: ClassVar[str] = "limit orders, a uniform-price call auction per good each step"
    builtin: ClassVar[bool] = True
    actions: ClassVar[tuple[type[ActionBase], ...]] = (PlaceOrder, CancelOrder)

    def __init__(
        self, exchange: Exchange, *, enabled: bool, money: Money, record: Record, traders: Sequence[TraderAgent]
    ) -> None:
        """``enabled`` is the scenario's ``market.call_market`` (orders refused when False);
        ``traders`` (creation order) give each clearing's mean fundamental value."""
        super().__init__()
        self.exchange = exchange
        self.enabled = enabled
        self.money = money
        self.record = record
        self.traders = traders
        #: last step's trades (good, price, quantity, parties): what a regulator surveils
        self.last_trades: list[dict[str, Any]] = []

    def tools(self, population: str | None, role: Role) -> list[str]:
        return [name for name in CALL_MARKET_TOOLS if role.allows(name) and (self.enabled or name == "cancel_order")]

    def available(self, agent: TraderAgent, step: int) -> list[str]:
        """``place_order`` when the market is open to the agent (not suspended), ``cancel_order``
        when it has open orders."""
        out = []
        if self.enabled and not self.exchange.rules.is_suspended(agent.unique_id, step):
            out.append("place_order")
        if self.exchange.open_orders(agent.unique_id):
            out.append("cancel_order")
        return out

    def act(self, agent: TraderAgent, action: ActionBase, step: int) -> list[Recorded]:
        me = agent.unique_id
        if isinstance(action, PlaceOrder):
            if not self.enabled:
                raise RejectedAction("this scenario has no call market: trade by negotiation")
            order = self.exchange.place_order(me, agent.role, action, step)
            content = {
                "order_id": order.order_id,
                "side": action.side,
                "good": order.good,
                "price": action.price,
                "quantity": order.quantity,
                "lifetime": order.lifetime._value_,  # `.value` is a property, 8x slower per order
            }
            return [("order", content, me)]
        assert isinstance(action, CancelOrder)
        cancelled = self.exchange.cancel_order(me, action.order_id)
        return [("order_cancelled", {"order_id": cancelled.order_id, "remaining": cancelled.remaining}, me)]

    def begin_step(self, step: int) -> None:
        self.exchange.begin_step()

    def fill_observation(self, observation: Any, agent: TraderAgent, step: int) -> None:
        """Nothing: the market snapshot and open orders are every observation's own fields."""

    def clear(self, step: int) -> None:
        """Clear every good, settle the fills in the ledger and record each clearing and trade."""
        money = self.money
        self.last_trades = []
        for c in self.exchange.clear(step):
            fundamental = payloads.mean_fundamental(self.traders, c.good, money)
            self.record("clearing", payloads.clearing_record(c, money, fundamental), None)
            for t in c.trades:
                content = payloads.trade_record(t, money)
                self.record("trade", content, None)  # the tallies count it (and the parties' fills)
                self.last_trades.append({"good": content["good"], "price": content["price"], "quantity": content["quantity"],
                                         "buyer_id": content["buyer_id"], "seller_id": content["seller_id"]})  # fmt: skip


__all__ = ["CALL_MARKET_TOOLS", "CallMarketMechanism"]
