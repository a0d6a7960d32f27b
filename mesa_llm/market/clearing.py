"""Clearing owns the uniform-price call auction on integer tick prices, vectorised with numpy.

Rule (each side given in arrival order = time priority). Expand orders into units: bids
descending b_1 >= b_2 >= ..., asks ascending s_1 <= s_2 <= ... The traded volume V is the
largest j with b_j >= s_j (volume-maximising). Every price in
[lo, hi] = [max(s_V, b_{V+1}), min(b_V, s_{V+1})] clears V units; the k-rule picks
p = lo + round_half_up(k * (hi - lo)). At p, bids above p and asks below p fill fully and
the rest of V goes to orders exactly at p by time priority (partial fills allowed).

Because prices are integer ticks, the demand and supply curves come from a histogram over
the price range (O(n + span), no sort) whenever the span is comparable to the number of
orders. For a wider span a coarse histogram locates the few price buckets that decide the
outcome and only their orders are sorted (a radix-select), which gives identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np

__all__ = ["ClearingResult", "clear_call_auction", "pair_fills"]

_INT64_MAX = int(np.iinfo(np.int64).max)
# One histogram bin per tick when the span is at most 4 bins per order plus this slack
# (the bins cost a few cumsum passes); wider spans take the bucketed path.
_COUNTING_SLACK = 2**12
# The bucketed path uses about one coarse bucket per 8 orders (plus this many): small
# enough for the counts to stay in cache, big enough that refined buckets are tiny.
_BUCKET_SLACK = 64


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """Outcome of one call auction; prices in ticks, quantities in units."""

    price: int | None  # None when nothing trades
    volume: int
    price_low: int | None  # clearing range [price_low, price_high]
    price_high: int | None
    buy_fills: np.ndarray  # int64, per buy order (same order as input)
    sell_fills: np.ndarray  # int64, per sell order
    excess_demand: int  # D(p) - volume (total buy quantity if no trade)
    excess_supply: int  # S(p) - volume (total sell quantity if no trade)


def clear_call_auction(
    buy_prices: np.ndarray,
    buy_quantities: np.ndarray,
    sell_prices: np.ndarray,
    sell_quantities: np.ndarray,
    k: float = 0.5,
) -> ClearingResult:
    """Clear one good's buy and sell orders at a single volume-maximising price.

    Prices are integer ticks, quantities positive integers; each side is in arrival order,
    which decides who fills at the margin. ``k`` in [0, 1] picks the price inside the
    clearing range: 0 the low end (buyers' favour), 1 the high end (sellers' favour).
    """
    return _clear(buy_prices, buy_quantities, sell_prices, sell_quantities, k)


def _clear(
    buy_prices: np.ndarray,
    buy_quantities: np.ndarray,
    sell_prices: np.ndarray,
    sell_quantities: np.ndarray,
    k: float = 0.5,
    *,
    method: str = "auto",
    max_buckets: int | None = None,
) -> ClearingResult:
    """clear_call_auction with the curve method forced ("counting" or "bucketed") for tests."""
    if method not in ("auto", "counting", "bucketed"):
        raise ValueError(f"unknown method {method!r}")
    k_exact = _k_fraction(k)
    bp, bq = _side_arrays(buy_prices, buy_quantities, "buy")
    sp, sq = _side_arrays(sell_prices, sell_quantities, "sell")
    total_buy = _total_quantity(bq, "buy")
    total_sell = _total_quantity(sq, "sell")
    if bp.size == 0 or sp.size == 0:
        return _no_trade(bp.size, sp.size, total_buy, total_sell)
    bid_max = int(bp.max())
    ask_min = int(sp.min())
    if bid_max < ask_min:
        return _no_trade(bp.size, sp.size, total_buy, total_sell)

    # Only prices in [ask_min, bid_max] can matter: a bid below every ask never trades
    # and, as b_{V+1}, never beats s_V in max(s_V, b_{V+1}); symmetrically for asks.
    span = bid_max - ask_min + 1
    n_orders = bp.size + sp.size
    if method == "counting" or (method == "auto" and span <= 4 * n_orders + _COUNTING_SLACK):
        curves: _Curves = _PriceCurves(bp, bq, sp, sq, ask_min, span)
    else:
        limit = max_buckets if max_buckets is not None else (n_orders >> 3) + _BUCKET_SLACK
        curves = _BucketCurves(bp, bq, sp, sq, ask_min, bid_max, limit)

    volume = curves.volume()
    if volume == 0:  # cannot happen once bid_max >= ask_min, kept as a guard
        return _no_trade(bp.size, sp.size, total_buy, total_sell)
    b_v = curves.bid_unit(volume)
    s_v = curves.ask_unit(volume)
    b_next = curves.bid_unit(volume + 1)
    s_next = curves.ask_unit(volume + 1)
    assert b_v is not None and s_v is not None
    low = s_v if b_next is None else max(s_v, b_next)
    high = b_v if s_next is None else min(b_v, s_next)
    # Exact half-up rounding of k * width (k read as the decimal it prints as).
    price = low + math.floor(k_exact * (high - low) + Fraction(1, 2))

    buy_fills, demand_at_p = _fills(bq, bp > price, bp == price, volume)
    sell_fills, supply_at_p = _fills(sq, sp < price, sp == price, volume)
    return ClearingResult(
        price=price,
        volume=volume,
        price_low=low,
        price_high=high,
        buy_fills=buy_fills,
        sell_fills=sell_fills,
        excess_demand=demand_at_p - volume,
        excess_supply=supply_at_p - volume,
    )


def pair_fills(
    buy_fills: np.ndarray, sell_fills: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair filled buys with filled sells into bilateral trades, deterministically.

    Both sides are walked in input (arrival) order, like two queues of units laid side by
    side: a trade is a maximal run of units with the same buy and the same sell. Returns
    (buy_index, sell_index, quantity) int64 arrays; per buy the quantities sum to its fill,
    per sell likewise.
    """
    bf = np.asarray(buy_fills, dtype=np.int64)
    sf = np.asarray(sell_fills, dtype=np.int64)
    if bf.ndim != 1 or sf.ndim != 1:
        raise ValueError("fills must be one-dimensional")
    if (bf.size and int(bf.min()) < 0) or (sf.size and int(sf.min()) < 0):
        raise ValueError("fills must be non-negative")
    buy_idx = np.flatnonzero(bf)
    sell_idx = np.flatnonzero(sf)
    buy_ends = bf[buy_idx].cumsum()
    sell_ends = sf[sell_idx].cumsum()
    buy_total = int(buy_ends[-1]) if buy_ends.size else 0
    sell_total = int(sell_ends[-1]) if sell_ends.size else 0
    if buy_total != sell_total:
        raise ValueError(f"buy fills total {buy_total} but sell fills total {sell_total}")
    if buy_total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()

    # Merge the two sorted arrays of cumulative ends with one searchsorted (each buy end's
    # slot is its rank plus the sell ends before it; a buy end goes before an equal sell
    # end). Each distinct end closes one trade; the trade's buy is the number of buy ends
    # before the first copy of that end, and likewise for its sell.
    n_merged = buy_ends.size + sell_ends.size
    buy_slots = np.arange(buy_ends.size) + np.searchsorted(sell_ends, buy_ends, "left")
    is_buy = np.zeros(n_merged, dtype=bool)
    is_buy[buy_slots] = True
    merged = np.empty(n_merged, dtype=np.int64)
    merged[buy_slots] = buy_ends
    merged[~is_buy] = sell_ends
    first = np.empty(n_merged, dtype=bool)
    first[0] = True
    np.not_equal(merged[1:], merged[:-1], out=first[1:])
    buys_before = np.cumsum(is_buy, dtype=np.int64)
    buys_before -= is_buy
    sells_before = np.arange(n_merged, dtype=np.int64) - buys_before
    ends = merged[first]
    quantity = np.diff(ends, prepend=0)
    return buy_idx[buys_before[first]], sell_idx[sells_before[first]], quantity


# -- internals ------------------------------------------------------------------------


def _k_fraction(k: float) -> Fraction:
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise TypeError(f"k must be a number in [0, 1], got {k!r}")
    kf = float(k)
    if not 0.0 <= kf <= 1.0:  # also rejects nan
        raise ValueError(f"k must be in [0, 1], got {k!r}")
    # Read k as the decimal it prints as, so k=0.3 splits a range of 5 at 1.5 -> 2.
    return Fraction(repr(kf))


def _side_arrays(
    prices: np.ndarray, quantities: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    p = _as_int64(prices, f"{name} prices")
    q = _as_int64(quantities, f"{name} quantities")
    if p.shape != q.shape:
        raise ValueError(f"{name} prices and quantities differ in length: {p.size} != {q.size}")
    if q.size and int(q.min()) <= 0:
        raise ValueError(f"{name} quantities must be positive integers")
    return p, q


def _as_int64(values: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers (ticks / units), got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.dtype.itemsize >= 8 and int(a.max()) > _INT64_MAX:
        raise OverflowError(f"{name} exceed the int64 range")
    return a.astype(np.int64, copy=False)


def _total_quantity(q: np.ndarray, name: str) -> int:
    if q.size == 0:
        return 0
    # int64 sums wrap silently; only pay for a float check when wrapping is possible.
    if int(q.max()) > _INT64_MAX // q.size and float(q.sum(dtype=np.float64)) >= 2.0**62:
        raise OverflowError(f"total {name} quantity exceeds the int64 range")
    return int(q.sum())


def _no_trade(n_buys: int, n_sells: int, total_buy: int, total_sell: int) -> ClearingResult:
    return ClearingResult(
        price=None,
        volume=0,
        price_low=None,
        price_high=None,
        buy_fills=np.zeros(n_buys, dtype=np.int64),
        sell_fills=np.zeros(n_sells, dtype=np.int64),
        excess_demand=total_buy,
        excess_supply=total_sell,
    )


class _Curves(Protocol):
    """Demand D(p) (quantity bid at >= p) and supply S(p) (offered at <= p) of one book."""

    def volume(self) -> int:
        """V = max over p of min(D(p), S(p)), the volume-maximising quantity."""
        ...

    def bid_unit(self, j: int) -> int | None:
        """b_j, the j-th best bid unit (highest p with D(p) >= j); None if fewer units."""
        ...

    def ask_unit(self, j: int) -> int | None:
        """s_j, the j-th best ask unit (lowest p with S(p) >= j); None if fewer units."""
        ...


class _PriceCurves:
    """Curves from a histogram with one bin per tick of [ask_min, ask_min + span)."""

    def __init__(
        self,
        bp: np.ndarray,
        bq: np.ndarray,
        sp: np.ndarray,
        sq: np.ndarray,
        ask_min: int,
        span: int,
    ) -> None:
        # Bin i + 1 is price ask_min + i; bids below ask_min land in bin 0 and asks above
        # the range in bin span + 1, both dropped (cheaper than compressing the arrays;
        # clipping before subtracting keeps far-out prices from wrapping around int64).
        # np.add.at on int64 is exact for any quantities, unlike bincount's float weights.
        base = ask_min - 1
        bins = np.maximum(bp, base)
        bins -= base
        demand = np.zeros(span + 2, dtype=np.int64)
        np.add.at(demand, bins, bq)
        bins = np.minimum(sp, ask_min + span)
        bins -= base
        supply = np.zeros(span + 2, dtype=np.int64)
        np.add.at(supply, bins, sq)
        # Forward cumsums only (a cumsum over a reversed view is ~5x slower):
        # D(i) = total - cum_demand[i - 1], S(i) = cum_supply[i].
        self._ask_min = ask_min
        self._cum_demand = demand[1 : span + 1].cumsum()
        self._cum_supply = supply[1 : span + 1].cumsum()
        self._total_demand = int(self._cum_demand[-1])
        self._total_supply = int(self._cum_supply[-1])

    def _demand_at(self, i: int) -> int:
        if i >= self._cum_demand.size:
            return 0
        return self._total_demand - (int(self._cum_demand[i - 1]) if i > 0 else 0)

    def volume(self) -> int:
        # D - S is non-increasing; p1 = last level with D >= S, i.e. with
        # cum_demand[i - 1] + cum_supply[i] <= total demand. max min(D, S) is at p1 or p1 + 1.
        h = self._cum_supply.copy()
        h[1:] += self._cum_demand[:-1]
        p1 = int(np.searchsorted(h, self._total_demand, "right")) - 1
        at_p1 = int(self._cum_supply[p1]) if p1 >= 0 else 0
        return max(at_p1, self._demand_at(p1 + 1))

    def bid_unit(self, j: int) -> int | None:
        if j > self._total_demand:
            return None
        # Highest level i with D(i) >= j, i.e. cum_demand[i - 1] <= total - j.
        return self._ask_min + int(
            np.searchsorted(self._cum_demand, self._total_demand - j, "right")
        )

    def ask_unit(self, j: int) -> int | None:
        if j > self._total_supply:
            return None
        return self._ask_min + int(np.searchsorted(self._cum_supply, j))


class _BucketCurves:
    """Curves for a wide price span: a coarse histogram, refined only where it matters.

    Prices are grouped into at most ``max_buckets`` buckets of 2**shift ticks. The
    coarse cumulative sums locate the bucket of every quantity the auction needs (the
    crossing, b_V, b_{V+1}, s_V, s_{V+1}); only the orders in those few buckets are then
    sorted. This is a radix-select: a few O(n) passes instead of an O(n log n) sort.
    """

    def __init__(
        self,
        bp: np.ndarray,
        bq: np.ndarray,
        sp: np.ndarray,
        sq: np.ndarray,
        ask_min: int,
        bid_max: int,
        max_buckets: int,
    ) -> None:
        self._bp, self._bq, self._sp, self._sq = bp, bq, sp, sq
        self._ask_min = ask_min
        self._bid_max = bid_max
        width = bid_max - ask_min  # up to 2**64 - 1
        shift = max(0, (width // max(1, max_buckets)).bit_length())
        while shift > 0 and (width >> (shift - 1)) + 1 <= max_buckets:
            shift -= 1
        self._shift = shift
        nb = (width >> shift) + 1
        self._n_buckets = nb
        # Bucket ids are bucket + 1; 0 marks bids below ask_min, nb + 1 asks far above
        # bid_max (an ask above bid_max inside the last bucket is kept: it can never
        # trade, and coarse counts and refinement both see it, so they stay consistent).
        self._buy_ids = self._ids(bp)
        self._sell_ids = self._ids(sp)
        demand = np.zeros(nb + 2, dtype=np.int64)
        np.add.at(demand, self._buy_ids, bq)
        supply = np.zeros(nb + 2, dtype=np.int64)
        np.add.at(supply, self._sell_ids, sq)
        # Per bucket c: demand from c up = total - cum_demand[c - 1]; supply below c =
        # cum_supply[c - 1].
        self._cum_demand = demand[1 : nb + 1].cumsum()
        self._cum_supply = supply[1 : nb + 1].cumsum()
        self._total_demand = int(self._cum_demand[-1])
        self._total_supply = int(self._cum_supply[-1])
        self._local: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _ids(self, prices: np.ndarray) -> np.ndarray:
        ask_min, shift, nb = self._ask_min, self._shift, self._n_buckets
        low, high = int(prices.min()), int(prices.max())
        if low - ask_min >= -(2**63) and high - ask_min < 2**63:
            # Usual case: in-place int64 arithmetic, one allocation (page faults of fresh
            # arrays are a large share of the cost at 1e6 orders).
            ids = prices - ask_min
            np.maximum(ids, -1, out=ids)
            ids >>= shift  # -1 stays -1 (arithmetic shift)
            ids += 1
            np.minimum(ids, nb + 1, out=ids)
            return ids
        # Prices spanning more than int64: offsets from ask_min are taken as uint64.
        clipped = np.clip(prices, ask_min, self._bid_max)
        offsets = (clipped - np.int64(ask_min)).view(np.uint64) >> np.uint64(shift)
        ids = offsets.astype(np.int64) + 1
        ids[prices < ask_min] = 0
        ids[prices > self._bid_max] = nb + 1
        return ids

    def _demand_from(self, c: int) -> int:
        """Quantity bid in buckets >= c."""
        if c >= self._n_buckets:
            return 0
        return self._total_demand - (int(self._cum_demand[c - 1]) if c > 0 else 0)

    def _supply_before(self, c: int) -> int:
        """Quantity offered in buckets < c."""
        return int(self._cum_supply[c - 1]) if c > 0 else 0

    def _bucket_start(self, c: int) -> int:
        return self._ask_min + (c << self._shift)

    def _bucket_end(self, c: int) -> int:
        return min(self._bid_max, self._ask_min + ((c + 1) << self._shift) - 1)

    def _sorted_bucket(self, side: int, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Prices of one side's orders in bucket c, best first, with cumulative quantities."""
        key = (side, c)
        cached = self._local.get(key)
        if cached is not None:
            return cached
        if side > 0:
            idx = np.flatnonzero(self._buy_ids == c + 1)
            prices, qty = self._bp[idx], self._bq[idx]
            order = np.argsort(-prices, kind="stable")
        else:
            idx = np.flatnonzero(self._sell_ids == c + 1)
            prices, qty = self._sp[idx], self._sq[idx]
            order = np.argsort(prices, kind="stable")
        result = (prices[order], qty[order].cumsum())
        self._local[key] = result
        return result

    def volume(self) -> int:
        nb = self._n_buckets
        # U(c) = demand_from(c) - supply_before(c) bounds D - S from above on bucket c and
        # is non-increasing. The crossing p1 = max{p : D(p) >= S(p)} lies in the last
        # bucket with U >= 0 or at the end of the one before, so max min(D, S), reached at
        # p1 or p1 + 1, is found among the breakpoints of three buckets.
        # U(c) >= 0  <=>  cum_demand[c - 1] + cum_supply[c - 1] <= total demand.
        h = self._cum_demand + self._cum_supply
        n_nonneg = 1 + min(int(np.searchsorted(h, self._total_demand, "right")), nb - 1)
        crossing = n_nonneg - 1
        first, last = max(crossing - 1, 0), min(crossing + 1, nb - 1)
        buy_ids, sell_ids = self._buy_ids, self._sell_ids
        in_buys = np.flatnonzero((buy_ids > first) & (buy_ids <= last + 1))
        in_sells = np.flatnonzero((sell_ids > first) & (sell_ids <= last + 1))
        bids, bid_qty = self._bp[in_buys], self._bq[in_buys]
        asks, ask_qty = self._sp[in_sells], self._sq[in_sells]
        bid_order = np.argsort(bids, kind="stable")
        ask_order = np.argsort(asks, kind="stable")
        bids = bids[bid_order]
        asks = asks[ask_order]
        bid_cum = np.concatenate(([0], bid_qty[bid_order].cumsum()))
        ask_cum = np.concatenate(([0], ask_qty[ask_order].cumsum()))
        window_start = self._bucket_start(first)
        window_end = self._bucket_end(last)
        # min(D, S) is constant between breakpoints; each piece starts at the window
        # start, at a bid price + 1 (D drops) or at an ask price (S rises).
        candidates = np.concatenate(
            (np.array([window_start], dtype=np.int64), bids[bids < window_end] + 1, asks)
        )
        above = self._demand_from(last + 1)
        below = self._supply_before(first)
        d = above + bid_cum[-1] - bid_cum[np.searchsorted(bids, candidates, "left")]
        s = below + ask_cum[np.searchsorted(asks, candidates, "right")]
        return int(np.minimum(d, s).max())

    def bid_unit(self, j: int) -> int | None:
        if j > self._total_demand:
            return None
        # Highest bucket c with demand_from(c) >= j, then the exact price inside it.
        c = int(np.searchsorted(self._cum_demand, self._total_demand - j, "right"))
        prices, cum = self._sorted_bucket(1, c)
        return int(prices[np.searchsorted(cum, j - self._demand_from(c + 1))])

    def ask_unit(self, j: int) -> int | None:
        if j > self._total_supply:
            return None
        c = int(np.searchsorted(self._cum_supply, j))
        prices, cum = self._sorted_bucket(-1, c)
        return int(prices[np.searchsorted(cum, j - self._supply_before(c))])


def _fills(
    quantities: np.ndarray, better: np.ndarray, at_price: np.ndarray, volume: int
) -> tuple[np.ndarray, int]:
    """Fill orders better than the price fully, then those at the price by arrival order.

    Returns the fills and the side's total quantity at or better than the price.
    """
    fills = quantities * better
    full = int(fills.sum())
    marginal = np.flatnonzero(at_price)
    marginal_qty = quantities[marginal]
    ends = marginal_qty.cumsum()
    # Each marginal order gets what is left of the volume after earlier arrivals, capped
    # at its quantity: min(q, max(0, left - already_taken_before_it)).
    left = volume - full
    fills[marginal] = np.minimum(marginal_qty, np.maximum(left - (ends - marginal_qty), 0))
    at_or_better = full + (int(ends[-1]) if ends.size else 0)
    return fills, at_or_better
