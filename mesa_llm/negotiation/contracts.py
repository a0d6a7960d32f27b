"""Contracts: agreements turned into delivery-versus-payment obligations, settled through the ledger.

An :class:`Agreement` fixes terms in currency units; :func:`contract_from_agreement` converts
the price to integer ticks once, and :class:`ContractBook` settles each contract when it is
due: both legs move or neither does. A party that cannot perform (the seller lacks the goods,
the buyer the cash) is in breach and pays a penalty to the other party, capped at its available
cash so no balance ever goes negative and no reserved funds are touched.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from mesa_llm.market.ledger import Ledger
from mesa_llm.market.money import Money, OffTickError
from mesa_llm.negotiation.protocols import Agreement

__all__ = ["Contract", "ContractBook", "contract_from_agreement"]


@dataclass(slots=True)
class Contract:
    """A binding obligation: the seller delivers ``quantity`` of ``good``, the buyer pays
    ``price`` ticks per unit, at ``delivery_step``.

    ``good`` None is a pure service contract: only cash moves. ``penalty`` is what the
    breaching party actually paid (ticks).
    """

    contract_id: int
    session_id: str
    protocol: str
    buyer_id: int
    seller_id: int
    good: str | None
    quantity: int
    price: int  # ticks per unit
    delivery_step: int
    terms: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # "pending" | "fulfilled" | "breached"
    breached_by: int | None = None
    penalty: int = 0  # ticks actually paid
    #: the step the contract was settled (fulfilled or breached), None while pending
    settled_step: int | None = None

    def value(self) -> int:
        """Total price in ticks: price * quantity."""
        return self.price * self.quantity

    def to_dict(self, money: Money | None = None) -> dict[str, Any]:
        """JSON-ready form; with ``money`` the price, value and penalty are in currency units."""
        data: dict[str, Any] = {
            "contract_id": self.contract_id,
            "session_id": self.session_id,
            "protocol": self.protocol,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
            "parties": [self.buyer_id, self.seller_id],
            "good": self.good,
            "quantity": self.quantity,
            "delivery_step": self.delivery_step,
            "terms": dict(self.terms),
            "status": self.status,
            "breached_by": self.breached_by,
            "settled_step": self.settled_step,
        }
        if money is None:
            data.update(price=self.price, value=self.value(), penalty=self.penalty)
        else:
            data.update(
                price=money.to_units(self.price),
                value=money.to_units(self.value()),
                penalty=money.to_units(self.penalty),
            )
        return data


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not math.isfinite(float(value)) or not float(value).is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(float(value))


def contract_from_agreement(
    agreement: Agreement,
    contract_id: int,
    money: Money,
    *,
    default_good: str | None,
    delivery_offset: int = 0,
) -> Contract:
    """Turn an agreement into a contract.

    The terms must hold ``price`` (per unit, currency units, on the tick); ``quantity``
    (int >= 1, default 1) and ``delivery`` (steps after the agreement, >= 0, default
    ``delivery_offset``) are optional; every term (other issues included) stays in
    ``terms``. ValueError naming the term when one is missing or invalid.
    """
    terms = dict(agreement.terms)
    if "price" not in terms:
        raise ValueError(
            f"agreement of session {agreement.session_id} has no 'price' term: {terms}"
        )
    try:
        price = money.to_ticks(terms["price"])
    except OffTickError:
        raise ValueError(
            f"agreement of session {agreement.session_id}: price {terms['price']!r} is not a "
            f"multiple of the tick {money.tick_size} (give the price issue that tick)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"agreement of session {agreement.session_id}: price: {exc}") from None
    if price < 0:
        raise ValueError(f"agreement of session {agreement.session_id}: negative price {price}")
    quantity = _whole(terms.get("quantity", 1), "quantity")
    if quantity < 1:
        raise ValueError(f"agreement of session {agreement.session_id}: quantity {quantity} < 1")
    delivery = _whole(terms.get("delivery", delivery_offset), "delivery")
    if delivery < 0:
        raise ValueError(f"agreement of session {agreement.session_id}: delivery {delivery} < 0")
    return Contract(
        contract_id=contract_id,
        session_id=agreement.session_id,
        protocol=agreement.protocol,
        buyer_id=agreement.buyer_id,
        seller_id=agreement.seller_id,
        good=default_good,
        quantity=quantity,
        price=price,
        delivery_step=agreement.step + delivery,
        terms=terms,
    )


class ContractBook:
    """All contracts of a run, and their settlement.

    A breach costs ``penalty_fixed + penalty_rate * value`` ticks (rounded half up), paid by
    the breaching party to the other, capped at the breaching party's unreserved cash.
    """

    def __init__(self, penalty_rate: float = 0.1, penalty_fixed: int = 0) -> None:
        penalty_rate = float(penalty_rate)
        if not math.isfinite(penalty_rate) or penalty_rate < 0:
            raise ValueError(f"penalty_rate must be a finite number >= 0, got {penalty_rate}")
        if (
            isinstance(penalty_fixed, bool)
            or not isinstance(penalty_fixed, int)
            or penalty_fixed < 0
        ):
            raise ValueError(f"penalty_fixed must be an int >= 0 (ticks), got {penalty_fixed!r}")
        self.penalty_rate = penalty_rate
        self.penalty_fixed = penalty_fixed
        self._contracts: dict[int, Contract] = {}

    def __len__(self) -> int:
        return len(self._contracts)

    def add(self, contract: Contract) -> None:
        """Register a pending contract (ValueError on a duplicate id or a bad contract)."""
        if contract.contract_id in self._contracts:
            raise ValueError(f"contract {contract.contract_id} already exists")
        if contract.status != "pending":
            raise ValueError(f"contract {contract.contract_id} is {contract.status}, not pending")
        if contract.quantity < 1 or contract.price < 0:
            raise ValueError(
                f"contract {contract.contract_id}: quantity must be >= 1 and price >= 0"
            )
        self._contracts[contract.contract_id] = contract

    def get(self, contract_id: int) -> Contract:
        """The contract with this id (KeyError otherwise)."""
        return self._contracts[contract_id]

    def due(self, step: int) -> list[Contract]:
        """Pending contracts with delivery_step <= step, in contract_id order."""
        return sorted(
            (
                c
                for c in self._contracts.values()
                if c.status == "pending" and c.delivery_step <= step
            ),
            key=lambda c: c.contract_id,
        )

    def penalty_for(self, contract: Contract) -> int:
        """The penalty a breach of this contract costs (ticks, before the cap)."""
        return self.penalty_fixed + math.floor(self.penalty_rate * contract.value() + 0.5)

    def settle(self, contract: Contract, ledger: Ledger, step: int) -> dict[str, Any]:
        """Deliver versus pay, atomically, or record a breach and collect the penalty.

        The seller is checked first (available goods, not reserved), then the buyer
        (available cash). Returns a JSON-ready dict: contract_id, session_id, buyer_id,
        seller_id, good, quantity, price, value, status, breached_by, penalty, penalty_due,
        reason, step (all money in ticks).
        """
        if contract.status != "pending":
            raise ValueError(f"contract {contract.contract_id} is already {contract.status}")
        value = contract.value()
        cid = contract.contract_id
        buyer, seller, good = contract.buyer_id, contract.seller_id, contract.good
        reason = ""
        breacher: int | None = None
        if good is not None:
            have = ledger.available_goods(seller, good)
            if have < contract.quantity:
                breacher = seller
                reason = (
                    f"seller {seller} could not deliver {contract.quantity} {good}: "
                    f"{have} available"
                )
        if breacher is None:
            cash = ledger.available_cash(buyer)
            if cash < value:
                breacher = buyer
                reason = f"buyer {buyer} could not pay {value}: {cash} available"

        penalty_due = 0
        paid = 0
        if breacher is None:
            if good is not None and contract.quantity:
                ledger.transfer_goods(
                    seller, buyer, good, contract.quantity, memo=f"contract {cid} delivery"
                )
            if value:
                try:
                    ledger.transfer_cash(buyer, seller, value, memo=f"contract {cid} payment")
                except Exception:
                    # Checked above, so only a misuse (e.g. buyer == seller) gets here:
                    # undo the delivery so the contract stays all-or-nothing.
                    if good is not None and contract.quantity:
                        ledger.transfer_goods(
                            buyer, seller, good, contract.quantity, memo=f"contract {cid} undo"
                        )
                    raise
            contract.status = "fulfilled"
            reason = "delivered and paid"
        else:
            other = buyer if breacher == seller else seller
            penalty_due = self.penalty_for(contract)
            account = ledger.account(breacher)
            # Unreserved own cash only: credit lines are not spent on penalties.
            capacity = max(0, account.available_cash(credit=False))
            paid = min(penalty_due, capacity)
            if paid:
                ledger.transfer_cash(breacher, other, paid, memo=f"contract {cid} penalty")
            contract.status = "breached"
            contract.breached_by = breacher
            contract.penalty = paid
        contract.settled_step = step
        return {
            "contract_id": cid,
            "session_id": contract.session_id,
            "protocol": contract.protocol,
            "buyer_id": buyer,
            "seller_id": seller,
            "good": good,
            "quantity": contract.quantity,
            "price": contract.price,
            "value": value,
            "status": contract.status,
            "breached_by": contract.breached_by,
            "penalty": paid,
            "penalty_due": penalty_due,
            "reason": reason,
            "step": step,
        }

    def settle_due(self, ledger: Ledger, step: int) -> list[dict[str, Any]]:
        """Settle every contract due at ``step``, in contract_id order."""
        return [self.settle(c, ledger, step) for c in self.due(step)]

    def open_contracts(self, agent_id: int) -> list[Contract]:
        """Pending contracts this agent is party to, in contract_id order."""
        return [
            c for c in self.all() if c.status == "pending" and agent_id in (c.buyer_id, c.seller_id)
        ]

    def all(self) -> list[Contract]:
        """Every contract, in contract_id order."""
        return [self._contracts[k] for k in sorted(self._contracts)]
