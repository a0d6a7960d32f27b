"""Ledger owns every account's cash and goods and every movement of them, in integer ticks and units.

Double-entry: each posting debits one account and credits another, so totals only change
through ``issue`` / ``retire`` (endowments, scenario shocks), and ``check_invariants``
can prove conservation at any time. Reservations earmark cash or goods for open orders so
that a fill can always be paid for or delivered.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "HOUSE",
    "Account",
    "ConservationError",
    "InsufficientFunds",
    "InsufficientGoods",
    "JournalEntry",
    "Ledger",
    "LedgerError",
    "UnknownAccount",
]

HOUSE = "house"  # the house account id (fees, fines)

DEFAULT_JOURNAL_LIMIT = 5_000
"""Postings a ledger keeps by default: the latest between this many and twice as many."""

AccountId = int | str
# (kind, from_account, to_account, good or None for cash, amount, memo); from/to is None
# for issue/retire, whose other side is outside the economy.
JournalEntry = tuple[str, AccountId | None, AccountId | None, str | None, int, str]


class LedgerError(Exception):
    """Base class of ledger errors; messages say which account, what and how much."""


class InsufficientFunds(LedgerError):
    """An account lacks the available cash (cash - reserved + credit) for a movement."""


class InsufficientGoods(LedgerError):
    """An account lacks the available quantity (holding - reserved + short limit) of a good."""


class ConservationError(LedgerError):
    """An invariant of the ledger is broken (totals, reservations or limits)."""


class UnknownAccount(LedgerError):
    """No account with this id."""


@dataclass(slots=True)
class Account:
    """One participant's balances; read it, but change it only through the Ledger."""

    account_id: AccountId
    cash: int
    holdings: dict[str, int]
    reserved_cash: int = 0
    reserved_goods: dict[str, int] = field(default_factory=dict)
    credit_limit: int = 0  # cash may go down to -credit_limit (0 = no credit)
    short_limit: int = 0  # each holding may go down to -short_limit (0 = no short selling)

    def available_cash(self, released: int = 0, *, credit: bool = True) -> int:
        """Cash that can still be reserved, spent or taken: cash - (reserved - ``released``), plus
        the credit limit unless ``credit`` is False (fines and penalties come from own cash only).

        ``released`` is a reservation about to be given back (a trade settling the order that
        reserved it). The one place this formula is written.
        """
        free = self.cash - (self.reserved_cash - released)
        return free + self.credit_limit if credit else free


def _amount(value: object, what: str) -> int:
    """Return value as a non-negative Python int; TypeError / ValueError otherwise."""
    if type(value) is not int:
        # numpy integers (fills from the clearing) are accepted and converted;
        # bools and floats are not amounts.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{what} must be an int, got {value!r}")
        value = int(value)
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


class Ledger:
    """Every movement of cash and goods, double-entry: each posting debits one account and credits another; totals only change through issue/retire (endowments, scenario shocks)."""

    def __init__(self, goods: Iterable[str], journal_limit: int | None = DEFAULT_JOURNAL_LIMIT) -> None:
        """A ledger of `goods` with only the house account.

        `journal_limit` bounds the journal kept in memory: once it holds twice this many postings
        the oldest half is dropped (None keeps every posting). The balances and totals, which the
        invariants check, never depend on the journal.
        """
        if journal_limit is not None and journal_limit < 1:
            raise ValueError(f"journal_limit must be positive, got {journal_limit}")
        self.goods: tuple[str, ...] = tuple(dict.fromkeys(goods))
        for good in self.goods:
            if not isinstance(good, str) or not good:
                raise ValueError(f"goods must be non-empty strings, got {good!r}")
        self._accounts: dict[AccountId, Account] = {}
        self._journal: list[JournalEntry] = []
        self._journal_dropped = 0  # postings dropped from the front of _journal
        self._journal_limit = journal_limit
        # Trim when the list exceeds this (a huge number when unbounded: one int compare per call).
        self._journal_high = 2 * journal_limit if journal_limit is not None else 1 << 62
        self._issued_cash = 0
        self._retired_cash = 0
        self._issued_goods: dict[str, int] = dict.fromkeys(self.goods, 0)
        self._retired_goods: dict[str, int] = dict.fromkeys(self.goods, 0)
        self.open_account(HOUSE)

    # -- accounts ---------------------------------------------------------------------

    def open_account(
        self,
        account_id: AccountId,
        cash: int = 0,
        holdings: Mapping[str, int] | None = None,
        credit_limit: int = 0,
        short_limit: int = 0,
    ) -> Account:
        """Open an account; its endowment is issued (counted in the issued totals)."""
        if account_id is None:
            raise LedgerError("account id must not be None")
        if account_id in self._accounts:
            raise LedgerError(f"account {account_id!r} already exists")
        credit_limit = _amount(credit_limit, f"credit limit of account {account_id!r}")
        short_limit = _amount(short_limit, f"short limit of account {account_id!r}")
        account = Account(
            account_id=account_id,
            cash=0,
            holdings=dict.fromkeys(self.goods, 0),
            reserved_cash=0,
            reserved_goods=dict.fromkeys(self.goods, 0),
            credit_limit=credit_limit,
            short_limit=short_limit,
        )
        # Validate the endowment before the account exists, so a bad call changes nothing.
        cash, goods = self._issue_amounts(account_id, cash, holdings)
        self._accounts[account_id] = account
        self._apply_issue(account, cash, goods, "endowment")
        return account

    def account(self, account_id: AccountId) -> Account:
        """Return the account (live object: read it, change it through the ledger only)."""
        try:
            return self._accounts[account_id]
        except KeyError:
            raise UnknownAccount(f"no account {account_id!r}") from None

    def accounts_of(self, account_ids: Sequence[AccountId]) -> list[Account]:
        """`account` of each id, in order (many at once: one dict lookup each, in C)."""
        try:
            return list(map(self._accounts.__getitem__, account_ids))
        except KeyError:
            return [self.account(account_id) for account_id in account_ids]  # raises `account`'s error

    def accounts(self) -> Iterator[Account]:
        """Iterate over all accounts, the house first, then in opening order."""
        return iter(list(self._accounts.values()))

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._accounts

    def available_cash(self, account_id: AccountId) -> int:
        """Cash that can still be reserved or spent: cash - reserved + credit limit."""
        return self.account(account_id).available_cash()

    def available_goods(self, account_id: AccountId, good: str) -> int:
        """Quantity that can still be reserved or delivered: holding - reserved + short limit."""
        a = self.account(account_id)
        self._check_good(good)
        return a.holdings[good] - a.reserved_goods[good] + a.short_limit

    # -- reservations -----------------------------------------------------------------

    def reserve_cash(self, account_id: AccountId, amount: int) -> None:
        """Earmark cash (e.g. limit price * quantity of a buy order)."""
        if type(amount) is not int or amount < 0:  # a plain non-negative int passes as it is
            amount = _amount(amount, "cash reservation")
        a = self._accounts.get(account_id) or self.account(account_id)
        available = a.available_cash()
        if amount > available:
            raise InsufficientFunds(
                f"account {account_id!r} cannot reserve {amount} cash: {available} available"
            )
        a.reserved_cash += amount

    def release_cash(self, account_id: AccountId, amount: int) -> None:
        """Give back earmarked cash."""
        if type(amount) is not int or amount < 0:
            amount = _amount(amount, "cash release")
        a = self._accounts.get(account_id) or self.account(account_id)
        if amount > a.reserved_cash:
            raise LedgerError(
                f"account {account_id!r} cannot release {amount} cash: only {a.reserved_cash} reserved"
            )
        a.reserved_cash -= amount

    def reserve_goods(self, account_id: AccountId, good: str, quantity: int) -> None:
        """Earmark goods (e.g. the quantity of a sell order)."""
        if type(quantity) is not int or quantity < 0:
            quantity = _amount(quantity, f"{good} reservation")
        a = self._accounts.get(account_id) or self.account(account_id)
        if good not in self._issued_goods:
            self._check_good(good)
        available = a.holdings[good] - a.reserved_goods[good] + a.short_limit
        if quantity > available:
            raise InsufficientGoods(
                f"account {account_id!r} cannot reserve {quantity} {good}: {available} available"
            )
        a.reserved_goods[good] += quantity

    def release_goods(self, account_id: AccountId, good: str, quantity: int) -> None:
        """Give back earmarked goods."""
        if type(quantity) is not int or quantity < 0:
            quantity = _amount(quantity, f"{good} release")
        a = self._accounts.get(account_id) or self.account(account_id)
        if good not in self._issued_goods:
            self._check_good(good)
        reserved = a.reserved_goods[good]
        if quantity > reserved:
            raise LedgerError(
                f"account {account_id!r} cannot release {quantity} {good}: only {reserved} reserved"
            )
        a.reserved_goods[good] = reserved - quantity

    def reserve_each(
        self, account_ids: Sequence[AccountId], goods: Sequence[str], buys: Sequence[bool], amounts: Sequence[int]
    ) -> list[int]:
        """For each order in turn, `reserve_cash` of ``amounts[i]`` (a buy) or `reserve_goods` of
        ``amounts[i]`` units of ``goods[i]`` (a sell) of account ``account_ids[i]``: the same
        reservations in the same order (a batch's orders at once). Returns the places of those
        `reserve_cash` or `reserve_goods` would refuse with a `LedgerError` (an unknown account
        or good, too little available): nothing is reserved for them, as there."""
        accounts, issued = self._accounts, self._issued_goods
        refused: list[int] = []
        for index, (account_id, good, buy, amount) in enumerate(zip(account_ids, goods, buys, amounts, strict=True)):
            if type(amount) is not int or amount < 0:
                amount = _amount(amount, "cash reservation" if buy else f"{good} reservation")
            a = accounts.get(account_id)
            if a is None:
                refused.append(index)
            elif buy:
                if amount > a.cash - a.reserved_cash + a.credit_limit:  # `Account.available_cash`
                    refused.append(index)
                else:
                    a.reserved_cash += amount
            elif good not in issued:
                refused.append(index)
            else:
                reserved = a.reserved_goods[good]
                if amount > a.holdings[good] - reserved + a.short_limit:
                    refused.append(index)
                else:
                    a.reserved_goods[good] = reserved + amount
        return refused

    def release_each(
        self, account_ids: Sequence[AccountId], goods: Sequence[str], buys: Sequence[bool], amounts: Sequence[int]
    ) -> None:
        """For each order in turn, `release_cash` of ``amounts[i]`` (a buy) or `release_goods` of
        ``amounts[i]`` units of ``goods[i]`` (a sell) of account ``account_ids[i]``, with their
        checks: a release that would fail raises its `LedgerError`, the ones before it done."""
        accounts, issued = self._accounts, self._issued_goods
        for account_id, good, buy, amount in zip(account_ids, goods, buys, amounts, strict=True):
            a = accounts.get(account_id)
            if a is None or type(amount) is not int or amount < 0 or not buy and good not in issued:
                # the unusual case: the one-by-one call checks it (and raises its error)
                if buy:
                    self.release_cash(account_id, amount)
                else:
                    self.release_goods(account_id, good, amount)
            elif buy:
                if amount > a.reserved_cash:
                    self.release_cash(account_id, amount)  # raises: more than reserved
                a.reserved_cash -= amount
            else:
                reserved = a.reserved_goods[good]
                if amount > reserved:
                    self.release_goods(account_id, good, amount)  # raises: more than reserved
                a.reserved_goods[good] = reserved - amount

    # -- postings ---------------------------------------------------------------------

    def settle_trade(
        self,
        buyer_id: AccountId,
        seller_id: AccountId,
        good: str,
        quantity: int,
        price: int,
        *,
        buyer_reserved_cash: int = 0,
        seller_reserved_goods: int = 0,
        buyer_fee: int = 0,
        seller_fee: int = 0,
    ) -> None:
        """Deliver ``quantity`` of ``good`` against ``quantity * price`` cash, atomically.

        First releases what the orders had reserved for this fill, then checks both legs
        and the fees, and only then applies them (fees go to HOUSE). If a check fails,
        nothing changes and InsufficientFunds / InsufficientGoods is raised.
        """
        if not (
            type(quantity) is int and type(price) is int and type(buyer_reserved_cash) is int
            and type(seller_reserved_goods) is int and type(buyer_fee) is int and type(seller_fee) is int
            and quantity >= 0 and price >= 0 and buyer_reserved_cash >= 0 and seller_reserved_goods >= 0
            and buyer_fee >= 0 and seller_fee >= 0
        ):  # fmt: skip  # plain non-negative ints (the clearing's) pass as they are
            quantity = _amount(quantity, "trade quantity")
            price = _amount(price, "trade price")
            buyer_reserved_cash = _amount(buyer_reserved_cash, "buyer reserved cash")
            seller_reserved_goods = _amount(seller_reserved_goods, "seller reserved goods")
            buyer_fee = _amount(buyer_fee, "buyer fee")
            seller_fee = _amount(seller_fee, "seller fee")
        buyer = self.account(buyer_id)
        seller = self.account(seller_id)
        house = self._accounts[HOUSE]
        if good not in self._issued_goods:
            self._check_good(good)
        if buyer_reserved_cash > buyer.reserved_cash:
            raise LedgerError(
                f"account {buyer_id!r} cannot release {buyer_reserved_cash} cash: "
                f"only {buyer.reserved_cash} reserved"
            )
        if seller_reserved_goods > seller.reserved_goods[good]:
            raise LedgerError(
                f"account {seller_id!r} cannot release {seller_reserved_goods} {good}: "
                f"only {seller.reserved_goods[good]} reserved"
            )
        value = quantity * price

        if buyer is not seller and buyer_id != HOUSE and seller_id != HOUSE:
            # Fast path, the usual case: two distinct non-house accounts.
            available = (
                seller.holdings[good]
                - (seller.reserved_goods[good] - seller_reserved_goods)
                + seller.short_limit
            )
            if quantity > available:
                raise InsufficientGoods(
                    f"account {seller_id!r} cannot deliver {quantity} {good}: {available} available"
                )
            available = buyer.available_cash(released=buyer_reserved_cash)
            if value + buyer_fee > available:
                raise InsufficientFunds(
                    f"account {buyer_id!r} cannot pay {value + buyer_fee} for {quantity} {good} "
                    f"at {price} (fee {buyer_fee}): {available} available"
                )
            if seller_fee > value:  # a fee larger than the proceeds is paid from cash
                available = seller.available_cash()
                if seller_fee - value > available:
                    raise InsufficientFunds(
                        f"account {seller_id!r} cannot pay fee {seller_fee} on proceeds "
                        f"{value}: {available} available"
                    )
        else:
            self._check_net_trade(
                buyer,
                seller,
                good,
                quantity,
                price,
                buyer_reserved_cash,
                seller_reserved_goods,
                buyer_fee,
                seller_fee,
            )

        # All checks passed: release, then post both legs and the fees.
        self._post_trade(buyer_id, seller_id, buyer, seller, house, good, quantity, value, buyer_reserved_cash,
                         seller_reserved_goods, buyer_fee, seller_fee)  # fmt: skip
        if len(self._journal) > self._journal_high:
            self._trim_journal()

    def _post_trade(
        self, buyer_id: AccountId, seller_id: AccountId, buyer: Account, seller: Account, house: Account, good: str,
        quantity: int, value: int, reserved_cash: int, reserved_goods: int, buyer_fee: int, seller_fee: int,
    ) -> None:  # fmt: skip
        """A checked trade's postings (`settle_trade`'s and `settle_trades`'): release the
        reservations, both legs, then each party's fee to the house, journalled in that order."""
        journal = self._journal
        buyer.reserved_cash -= reserved_cash
        seller.reserved_goods[good] -= reserved_goods
        buyer.cash -= value
        seller.cash += value
        seller.holdings[good] -= quantity
        buyer.holdings[good] += quantity
        journal.append(("trade_cash", buyer_id, seller_id, None, value, ""))
        journal.append(("trade_goods", seller_id, buyer_id, good, quantity, ""))
        if buyer_fee:
            buyer.cash -= buyer_fee
            house.cash += buyer_fee
            journal.append(("fee", buyer_id, HOUSE, None, buyer_fee, ""))
        if seller_fee:
            seller.cash -= seller_fee
            house.cash += seller_fee
            journal.append(("fee", seller_id, HOUSE, None, seller_fee, ""))

    def settle_trades(
        self, good: str, price: int, buyer_ids: Sequence[AccountId], seller_ids: Sequence[AccountId],
        quantities: Sequence[int], buyer_reserved_cash: Sequence[int], fees: Sequence[int],
    ) -> None:  # fmt: skip
        """`settle_trade` of each trade of a clearing in turn (all of ``good`` at ``price``; per
        trade its buyer, seller and quantity, the cash the buy order had reserved for it, and
        the fee each party pays; the seller's reserved goods are the quantity): the same
        postings and journal entries. A trade off the usual case (a party the house or the
        other party, a fee above the proceeds, anything `settle_trade` would refuse) goes
        through `settle_trade`, which settles or refuses it as usual (the trades before it settled)."""
        accounts, journal, house = self._accounts, self._journal, self._accounts[HOUSE]
        if type(price) is not int or price < 0 or good not in self._issued_goods:
            usual = False
        else:
            usual = True
        for buyer_id, seller_id, quantity, reserved, fee in zip(buyer_ids, seller_ids, quantities, buyer_reserved_cash,
                                                               fees, strict=True):  # fmt: skip
            buyer, seller = accounts.get(buyer_id), accounts.get(seller_id)
            value = quantity * price if type(quantity) is int else -1
            if (
                not usual or buyer is None or seller is None or buyer is seller or buyer is house or seller is house
                or value < 0 or quantity < 0 or type(reserved) is not int or type(fee) is not int or reserved < 0 or fee < 0
                or fee > value or reserved > buyer.reserved_cash
                or quantity > seller.reserved_goods[good]  # (the seller's reserved goods, released first)
                or quantity > seller.holdings[good] - (seller.reserved_goods[good] - quantity) + seller.short_limit
                or value + fee > buyer.cash - (buyer.reserved_cash - reserved) + buyer.credit_limit
            ):  # fmt: skip
                self.settle_trade(buyer_id, seller_id, good, quantity, price, buyer_reserved_cash=reserved,
                                  seller_reserved_goods=quantity, buyer_fee=fee, seller_fee=fee)  # fmt: skip
                continue
            self._post_trade(buyer_id, seller_id, buyer, seller, house, good, quantity, value, reserved, quantity, fee, fee)
            if len(journal) > self._journal_high:
                self._trim_journal()
                journal = self._journal

    def _check_net_trade(
        self,
        buyer: Account,
        seller: Account,
        good: str,
        quantity: int,
        price: int,
        buyer_reserved_cash: int,
        seller_reserved_goods: int,
        buyer_fee: int,
        seller_fee: int,
    ) -> None:
        # Self-trades and trades with the house: check each account's *net* change.
        house = self._accounts[HOUSE]
        value = quantity * price
        accounts = {id(a): a for a in (buyer, seller, house)}
        cash_delta = dict.fromkeys(accounts, 0)
        cash_delta[id(buyer)] -= value + buyer_fee
        cash_delta[id(seller)] += value - seller_fee
        cash_delta[id(house)] += buyer_fee + seller_fee
        goods_delta = dict.fromkeys(accounts, 0)
        goods_delta[id(buyer)] += quantity
        goods_delta[id(seller)] -= quantity
        for key, acc in accounts.items():
            released = seller_reserved_goods if acc is seller else 0
            available = acc.holdings[good] - (acc.reserved_goods[good] - released) + acc.short_limit
            if goods_delta[key] < 0 and available + goods_delta[key] < 0:
                raise InsufficientGoods(
                    f"account {acc.account_id!r} cannot deliver {-goods_delta[key]} {good}: "
                    f"{available} available"
                )
        for key, acc in accounts.items():
            released = buyer_reserved_cash if acc is buyer else 0
            available = acc.available_cash(released=released)
            if cash_delta[key] < 0 and available + cash_delta[key] < 0:
                raise InsufficientFunds(
                    f"account {acc.account_id!r} cannot pay {-cash_delta[key]} "
                    f"({quantity} {good} at {price}, fees {buyer_fee} + {seller_fee}): "
                    f"{available} available"
                )

    def transfer_cash(
        self, from_id: AccountId, to_id: AccountId, amount: int, memo: str = ""
    ) -> None:
        """Move cash between accounts (fines, contract payments); never beyond what is available."""
        amount = _amount(amount, "cash transfer")
        src = self.account(from_id)
        dst = self.account(to_id)
        available = src.available_cash()
        if src is not dst and amount > available:
            raise InsufficientFunds(
                f"account {from_id!r} cannot transfer {amount} cash to {to_id!r}: "
                f"{available} available"
            )
        src.cash -= amount
        dst.cash += amount
        self._journal.append(("transfer_cash", from_id, to_id, None, amount, memo))
        self._trim_journal()

    def transfer_goods(
        self, from_id: AccountId, to_id: AccountId, good: str, quantity: int, memo: str = ""
    ) -> None:
        """Move goods between accounts (contract deliveries); never beyond what is available."""
        quantity = _amount(quantity, f"{good} transfer")
        src = self.account(from_id)
        dst = self.account(to_id)
        self._check_good(good)
        available = src.holdings[good] - src.reserved_goods[good] + src.short_limit
        if src is not dst and quantity > available:
            raise InsufficientGoods(
                f"account {from_id!r} cannot transfer {quantity} {good} to {to_id!r}: "
                f"{available} available"
            )
        src.holdings[good] -= quantity
        dst.holdings[good] += quantity
        self._journal.append(("transfer_goods", from_id, to_id, good, quantity, memo))
        self._trim_journal()

    def issue(
        self,
        account_id: AccountId,
        cash: int = 0,
        holdings: Mapping[str, int] | None = None,
        memo: str = "",
    ) -> None:
        """Inject cash and goods from outside the economy (a scenario shock)."""
        account = self.account(account_id)
        amounts = self._issue_amounts(account_id, cash, holdings)
        self._apply_issue(account, *amounts, memo)

    def retire(
        self,
        account_id: AccountId,
        cash: int = 0,
        holdings: Mapping[str, int] | None = None,
        memo: str = "",
    ) -> None:
        """Remove cash and goods from the economy; never below reservations or limits."""
        a = self.account(account_id)
        cash, goods = self._issue_amounts(account_id, cash, holdings)
        available = a.available_cash()
        if cash > available:
            raise InsufficientFunds(
                f"account {account_id!r} cannot retire {cash} cash: {available} available"
            )
        for good, quantity in goods.items():
            available = a.holdings[good] - a.reserved_goods[good] + a.short_limit
            if quantity > available:
                raise InsufficientGoods(
                    f"account {account_id!r} cannot retire {quantity} {good}: {available} available"
                )
        if cash:
            a.cash -= cash
            self._retired_cash += cash
            self._journal.append(("retire_cash", account_id, None, None, cash, memo))
        for good, quantity in goods.items():
            if quantity:
                a.holdings[good] -= quantity
                self._retired_goods[good] += quantity
                self._journal.append(("retire_goods", account_id, None, good, quantity, memo))
        self._trim_journal()

    # -- totals and checks ------------------------------------------------------------

    def total_cash(self) -> int:
        """Sum of cash over all accounts, the house included."""
        return sum(a.cash for a in self._accounts.values())

    def total_goods(self, good: str) -> int:
        """Sum of one good's holdings over all accounts."""
        self._check_good(good)
        return sum(a.holdings[good] for a in self._accounts.values())

    def check_invariants(self) -> None:
        """Raise ConservationError naming the first broken invariant.

        Totals equal issued minus retired, for cash and every good; for every account
        0 <= reserved <= what could be reserved, cash >= -credit_limit and every holding
        >= -short_limit.
        """
        expected_cash = self._issued_cash - self._retired_cash
        total = self.total_cash()
        if total != expected_cash:
            raise ConservationError(
                f"total cash {total} != issued {self._issued_cash} - retired {self._retired_cash}"
            )
        for good in self.goods:
            expected = self._issued_goods[good] - self._retired_goods[good]
            total = self.total_goods(good)
            if total != expected:
                raise ConservationError(
                    f"total {good} {total} != issued {self._issued_goods[good]} "
                    f"- retired {self._retired_goods[good]}"
                )
        for a in self._accounts.values():
            aid = a.account_id
            if a.cash < -a.credit_limit:
                raise ConservationError(
                    f"account {aid!r} cash {a.cash} below -credit limit {a.credit_limit}"
                )
            if not 0 <= a.reserved_cash <= a.cash + a.credit_limit:
                raise ConservationError(
                    f"account {aid!r} reserved cash {a.reserved_cash} outside "
                    f"0..{a.cash + a.credit_limit}"
                )
            if set(a.holdings) != set(self.goods) or set(a.reserved_goods) != set(self.goods):
                raise ConservationError(f"account {aid!r} holds goods outside {self.goods}")
            for good in self.goods:
                holding = a.holdings[good]
                reserved = a.reserved_goods[good]
                if holding < -a.short_limit:
                    raise ConservationError(
                        f"account {aid!r} holding {holding} {good} below -short limit {a.short_limit}"
                    )
                if not 0 <= reserved <= holding + a.short_limit:
                    raise ConservationError(
                        f"account {aid!r} reserved {reserved} {good} outside "
                        f"0..{holding + a.short_limit}"
                    )

    @property
    def journal_size(self) -> int:
        """Number of postings so far (including those no longer kept)."""
        return self._journal_dropped + len(self._journal)

    @property
    def journal_start(self) -> int:
        """Index of the oldest posting still kept (0 until the journal limit drops some)."""
        return self._journal_dropped

    def journal(self, start: int = 0) -> list[JournalEntry]:
        """Postings from index ``start`` on: (kind, from, to, good or None, amount, memo).

        Indexes count every posting ever made; postings before `journal_start` are no longer
        kept, so asking for them returns the kept ones only.
        """
        return self._journal[max(start - self._journal_dropped, 0) :]

    def _trim_journal(self) -> None:
        """Drop the oldest postings beyond the limit (amortised: at most once per limit postings)."""
        journal = self._journal
        if len(journal) > self._journal_high and self._journal_limit is not None:
            excess = len(journal) - self._journal_limit
            del journal[:excess]
            self._journal_dropped += excess

    @property
    def issued_cash(self) -> int:
        """Cash issued so far (endowments and injections)."""
        return self._issued_cash

    @property
    def retired_cash(self) -> int:
        """Cash retired so far."""
        return self._retired_cash

    # -- internals --------------------------------------------------------------------

    def _check_good(self, good: str) -> None:
        if good not in self._issued_goods:
            raise LedgerError(f"unknown good {good!r}; the ledger holds {self.goods}")

    def _issue_amounts(
        self, account_id: AccountId, cash: int, holdings: Mapping[str, int] | None
    ) -> tuple[int, dict[str, int]]:
        cash = _amount(cash, f"cash of account {account_id!r}")
        goods: dict[str, int] = {}
        for good, quantity in (holdings or {}).items():
            self._check_good(good)
            goods[good] = _amount(quantity, f"{good} of account {account_id!r}")
        return cash, goods

    def _apply_issue(self, account: Account, cash: int, goods: dict[str, int], memo: str) -> None:
        aid = account.account_id
        if cash:
            account.cash += cash
            self._issued_cash += cash
            self._journal.append(("issue_cash", None, aid, None, cash, memo))
        for good, quantity in goods.items():
            if quantity:
                account.holdings[good] += quantity
                self._issued_goods[good] += quantity
                self._journal.append(("issue_goods", None, aid, good, quantity, memo))
        self._trim_journal()
