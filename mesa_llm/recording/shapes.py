"""Hand-built JSON for the contents a rule-based step records by the thousand (the hot path).

Each function here takes an event's content and returns its JSON text, exactly the text the
recorder's compact encoder (`SimulationRecorder.encode`) gives, or None when the content is not
of the fixed shape it knows (other keys, another key order, a value of another type, a float that
is not finite): the caller then encodes it as usual. The encoder costs ~2 us per small dict (a
list of chunks, a call per key and value); one f-string costs a third of that.

Exactness rests on what json's C encoder does with the types accepted here, and nothing else:
``str`` -> ``json.encoder.encode_basestring`` (the non-ASCII-keeping escaper the recorder's
encoder uses), exact ``int`` -> ``int.__repr__`` (``bool`` and other subclasses are refused),
exact finite ``float`` -> ``float.__repr__`` (NaN and the infinities are refused: the encoder
writes ``NaN``/``Infinity``, left to it). The property tests in tests/recording check the text
against the encoder for any content.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring as _str
from typing import Any

__all__ = ["SHAPES"]

_ORDER_ARGUMENTS = ("good", "side", "price", "quantity", "lifetime")
_ORDER = ("order_id", "side", "good", "price", "quantity", "lifetime")
_TRADE = ("good", "price", "quantity", "buyer_id", "seller_id", "buy_order_id", "sell_order_id", "buyer_fee", "seller_fee")


def _number(x: Any) -> bool:
    """An exact int, or an exact finite float (``x - x`` is NaN for NaN and the infinities)."""
    cls = x.__class__
    return cls is int or (cls is float and x - x == 0.0)


def action(content: Any) -> str | None:
    """An ``action`` placing an order: ``{"type", "arguments": {good, side, price, quantity, lifetime}}``."""
    if content.__class__ is not dict or len(content) != 2:
        return None
    kind, arguments = content.values()
    if (
        arguments.__class__ is not dict or tuple(content) != ("type", "arguments") or kind.__class__ is not str
        or tuple(arguments) != _ORDER_ARGUMENTS
    ):  # fmt: skip
        return None
    good, side, price, quantity, lifetime = arguments.values()
    if (
        good.__class__ is not str or side.__class__ is not str or lifetime.__class__ is not str
        or quantity.__class__ is not int or not _number(price)
    ):  # fmt: skip
        return None
    return (
        f'{{"type":{_str(kind)},"arguments":{{"good":{_str(good)},"side":{_str(side)},"price":{price!r},'
        f'"quantity":{quantity!r},"lifetime":{_str(lifetime)}}}}}'
    )


def order(content: Any) -> str | None:
    """An ``order`` placed: ``{order_id, side, good, price, quantity, lifetime}``."""
    if content.__class__ is not dict or tuple(content) != _ORDER:
        return None
    order_id, side, good, price, quantity, lifetime = content.values()
    if (
        order_id.__class__ is not int or side.__class__ is not str or good.__class__ is not str
        or lifetime.__class__ is not str or quantity.__class__ is not int or not _number(price)
    ):  # fmt: skip
        return None
    return (
        f'{{"order_id":{order_id!r},"side":{_str(side)},"good":{_str(good)},"price":{price!r},'
        f'"quantity":{quantity!r},"lifetime":{_str(lifetime)}}}'
    )


def trade(content: Any) -> str | None:
    """A ``trade``: ``{good, price, quantity, buyer_id, seller_id, buy_order_id, sell_order_id,
    buyer_fee, seller_fee}`` (`mesa_llm.payloads.trade_record`)."""
    if content.__class__ is not dict or tuple(content) != _TRADE:
        return None
    good, price, quantity, buyer, seller, buy_order, sell_order, buyer_fee, seller_fee = content.values()
    if (
        good.__class__ is not str or quantity.__class__ is not int or buyer.__class__ is not int
        or seller.__class__ is not int or buy_order.__class__ is not int or sell_order.__class__ is not int
        or not _number(price) or not _number(buyer_fee) or not _number(seller_fee)
    ):  # fmt: skip
        return None
    return (
        f'{{"good":{_str(good)},"price":{price!r},"quantity":{quantity!r},"buyer_id":{buyer!r},'
        f'"seller_id":{seller!r},"buy_order_id":{buy_order!r},"sell_order_id":{sell_order!r},'
        f'"buyer_fee":{buyer_fee!r},"seller_fee":{seller_fee!r}}}'
    )


SHAPES: dict[str, Callable[[Any], str | None]] = {"action": action, "order": order, "trade": trade}
"""Event type -> its hand-built encoder (content -> text, or None: encode it as usual)."""
