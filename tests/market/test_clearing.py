"""Tests of the numpy call auction against a pure-Python reference of the same rule."""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_llm.market import ClearingResult, clear_call_auction, pair_fills
from mesa_llm.market.clearing import _clear

Book = list[tuple[int, int]]  # (price, quantity) in arrival order


def arrays(book: Book) -> tuple[np.ndarray, np.ndarray]:
    prices = np.array([p for p, _ in book], dtype=np.int64)
    quantities = np.array([q for _, q in book], dtype=np.int64)
    return prices, quantities


def clear(buys: Book, sells: Book, k: float = 0.5, **kw: Any) -> ClearingResult:
    return _clear(*arrays(buys), *arrays(sells), k, **kw)


def reference(buys: Book, sells: Book, k: float) -> dict[str, Any]:
    """The rule in plain Python: unit expansion, V, range, k-price, price-time priority."""
    bids = sorted((p for p, q in buys for _ in range(q)), reverse=True)
    asks = sorted(p for p, q in sells for _ in range(q))
    volume = 0
    while volume < min(len(bids), len(asks)) and bids[volume] >= asks[volume]:
        volume += 1
    if volume == 0:
        return {
            "price": None,
            "volume": 0,
            "range": (None, None),
            "buy_fills": [0] * len(buys),
            "sell_fills": [0] * len(sells),
            "excess_demand": sum(q for _, q in buys),
            "excess_supply": sum(q for _, q in sells),
        }
    lo = asks[volume - 1] if volume == len(bids) else max(asks[volume - 1], bids[volume])
    hi = bids[volume - 1] if volume == len(asks) else min(bids[volume - 1], asks[volume])
    price = lo + math.floor(Fraction(repr(float(k))) * (hi - lo) + Fraction(1, 2))

    def allocate(book: Book, key: Any) -> list[int]:
        fills = [0] * len(book)
        left = volume
        for i in sorted(range(len(book)), key=key):
            fills[i] = min(book[i][1], left)
            left -= fills[i]
        return fills

    return {
        "price": price,
        "volume": volume,
        "range": (lo, hi),
        "buy_fills": allocate(buys, lambda i: (-buys[i][0], i)),
        "sell_fills": allocate(sells, lambda i: (sells[i][0], i)),
        "excess_demand": sum(q for p, q in buys if p >= price) - volume,
        "excess_supply": sum(q for p, q in sells if p <= price) - volume,
    }


def as_dict(r: ClearingResult) -> dict[str, Any]:
    return {
        "price": r.price,
        "volume": r.volume,
        "range": (r.price_low, r.price_high),
        "buy_fills": r.buy_fills.tolist(),
        "sell_fills": r.sell_fills.tolist(),
        "excess_demand": r.excess_demand,
        "excess_supply": r.excess_supply,
    }


# -- examples ------------------------------------------------------------------------


def test_range_rule_not_naive_midpoint() -> None:
    r = clear([(10, 10)], [(5, 1), (20, 10)])
    assert (r.price, r.volume, r.price_low, r.price_high) == (10, 1, 10, 10)
    assert r.buy_fills.tolist() == [1] and r.sell_fills.tolist() == [1, 0]
    assert (r.excess_demand, r.excess_supply) == (9, 0)


def test_k_picks_the_end_of_the_range() -> None:
    buys, sells = [(12, 1)], [(8, 1)]
    assert clear(buys, sells, k=0).price == 8
    assert clear(buys, sells, k=1).price == 12
    assert clear(buys, sells, k=0.5).price == 10
    assert clear(buys, sells, k=0.3).price == 9  # 8 + round_half_up(1.2)
    odd = clear([(11, 1)], [(8, 1)], k=0.5)  # 8 + round_half_up(1.5)
    assert (odd.price_low, odd.price_high, odd.price) == (8, 11, 10)


def test_time_priority_at_the_margin() -> None:
    # The better bid (11) fills first; the 4 units left go to the bids at exactly 10 in
    # arrival order: the first fully, the second partially, the third not at all.
    r = clear([(10, 3), (11, 1), (10, 2), (10, 5)], [(9, 5)], k=1)
    assert r.price == 10 and r.volume == 5
    assert r.buy_fills.tolist() == [3, 1, 1, 0]
    assert r.sell_fills.tolist() == [5]
    assert r.excess_demand == 6 and r.excess_supply == 0


def test_time_priority_on_the_sell_side() -> None:
    r = clear([(10, 4)], [(10, 3), (9, 2), (10, 3)])
    assert r.price == 10
    assert r.sell_fills.tolist() == [2, 2, 0]


@pytest.mark.parametrize(
    ("buys", "sells"),
    [([], []), ([(10, 1)], []), ([], [(10, 1)]), ([(5, 3), (6, 1)], [(7, 2), (9, 1)])],
)
def test_no_trade(buys: Book, sells: Book) -> None:
    r = clear(buys, sells)
    assert r.price is None and r.volume == 0
    assert r.price_low is None and r.price_high is None
    assert r.buy_fills.tolist() == [0] * len(buys)
    assert r.sell_fills.tolist() == [0] * len(sells)
    assert r.excess_demand == sum(q for _, q in buys)
    assert r.excess_supply == sum(q for _, q in sells)
    bi, si, q = pair_fills(r.buy_fills, r.sell_fills)
    assert bi.size == si.size == q.size == 0


def test_single_orders_cross() -> None:
    r = clear([(7, 2)], [(7, 2)])
    assert (r.price, r.volume) == (7, 2)


def test_huge_quantities_stay_exact() -> None:
    big = 2**60 + 1
    r = clear([(10, big), (9, 3)], [(8, big + 1), (20, 1)])
    assert r.volume == big + 1
    assert r.buy_fills.tolist() == [big, 1]
    assert r.sell_fills.tolist() == [big + 1, 0]
    with pytest.raises(OverflowError):
        clear([(10, 2**62), (10, 2**62)], [(1, 1)])


def test_negative_and_extreme_prices() -> None:
    lo, hi = -(2**63), 2**63 - 1
    r = clear([(hi, 1)], [(lo, 1)])  # span 2**64: the bucketed path, uint64 offsets
    assert (r.price_low, r.price_high, r.price, r.volume) == (lo, hi, 0, 1)
    r = clear([(-5, 2)], [(-9, 1), (-3, 4)], k=0)
    assert as_dict(r) == reference([(-5, 2)], [(-9, 1), (-3, 4)], 0)


def test_input_validation() -> None:
    with pytest.raises(TypeError):
        clear_call_auction(np.array([1.5]), np.array([1]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError):
        clear_call_auction(np.array([1]), np.array([0]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError):
        clear_call_auction(np.array([1, 2]), np.array([1]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError):
        clear_call_auction(np.array([1]), np.array([1]), np.array([1]), np.array([1]), k=1.5)
    with pytest.raises(ValueError):
        pair_fills(np.array([2]), np.array([1]))


def test_pair_fills_walks_both_sides_in_arrival_order() -> None:
    bi, si, q = pair_fills(np.array([3, 0, 2]), np.array([1, 4]))
    assert bi.tolist() == [0, 0, 2]
    assert si.tolist() == [0, 1, 1]
    assert q.tolist() == [1, 2, 2]


# -- properties ----------------------------------------------------------------------

prices = st.integers(min_value=1, max_value=12)
books = st.lists(st.tuples(prices, st.integers(min_value=1, max_value=5)), max_size=12)
ks = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0))


@settings(max_examples=400, deadline=None)
@given(buys=books, sells=books, k=ks)
def test_matches_reference_and_invariants(buys: Book, sells: Book, k: float) -> None:
    r = clear(buys, sells, k)
    assert as_dict(r) == reference(buys, sells, k)  # (b)

    # (a) volume is the maximum over book prices of min(D(p), S(p))
    candidates = {p for p, _ in buys} | {p for p, _ in sells}
    best = max(
        (
            min(sum(q for b, q in buys if b >= p), sum(q for s, q in sells if s <= p))
            for p in candidates
        ),
        default=0,
    )
    assert r.volume == best

    bf, sf = r.buy_fills.tolist(), r.sell_fills.tolist()
    # (e) conservation and bounds
    assert sum(bf) == sum(sf) == r.volume
    assert all(0 <= f <= q for f, (_, q) in zip(bf, buys, strict=True))
    assert all(0 <= f <= q for f, (_, q) in zip(sf, sells, strict=True))
    if r.price is None:
        assert r.volume == 0
        return
    p = r.price
    assert r.price_low is not None and r.price_high is not None
    assert r.price_low <= p <= r.price_high
    for f, (price, q) in zip(bf, buys, strict=True):
        if price > p:  # (c)
            assert f == q
        if price < p:  # (c), (d): never above a buyer's limit
            assert f == 0
    for f, (price, q) in zip(sf, sells, strict=True):
        if price < p:
            assert f == q
        if price > p:
            assert f == 0

    # (f) pairing conserves every order's fill
    bi, si, tq = pair_fills(r.buy_fills, r.sell_fills)
    assert (tq > 0).all()
    assert np.bincount(bi, weights=tq, minlength=len(buys)).astype(int).tolist() == bf
    assert np.bincount(si, weights=tq, minlength=len(sells)).astype(int).tolist() == sf
    assert np.all(np.diff(bi) >= 0) and np.all(np.diff(si) >= 0)  # arrival order


@settings(max_examples=300, deadline=None)
@given(buys=books, sells=books, k=ks, max_buckets=st.integers(1, 6))
def test_bucketed_path_equals_counting_path(
    buys: Book, sells: Book, k: float, max_buckets: int
) -> None:
    counting = clear(buys, sells, k, method="counting")
    bucketed = clear(buys, sells, k, method="bucketed", max_buckets=max_buckets)
    assert as_dict(bucketed) == as_dict(counting)


@settings(max_examples=150, deadline=None)
@given(
    buys=books,
    sells=books,
    k=ks,
    base=st.integers(-(2**50), 2**50),
    scale=st.sampled_from([1, 3, 2**20, 2**37 + 5]),
)
def test_huge_price_span_uses_fallback_and_matches_reference(
    buys: Book, sells: Book, k: float, base: int, scale: int
) -> None:
    # Spread prices over a span far beyond 4n + 2**20 so `auto` takes the bucketed path.
    wide_buys = [(base + p * scale, q) for p, q in buys]
    wide_sells = [(base + p * scale, q) for p, q in sells]
    r = clear(wide_buys, wide_sells, k)
    assert as_dict(r) == reference(wide_buys, wide_sells, k)
    # Shifting every price shifts the outcome and nothing else.
    shifted = clear(
        [(p + 2**40, q) for p, q in wide_buys], [(p + 2**40, q) for p, q in wide_sells], k
    )
    d, ds = as_dict(r), as_dict(shifted)
    if r.price is not None:
        assert ds["price"] == d["price"] + 2**40
        assert ds["range"] == (d["range"][0] + 2**40, d["range"][1] + 2**40)
    assert (ds["buy_fills"], ds["sell_fills"]) == (d["buy_fills"], d["sell_fills"])
    # Scaling keeps the order of prices, hence V and the fills, of the narrow book.
    narrow = as_dict(clear(buys, sells, k))
    assert (d["volume"], d["buy_fills"], d["sell_fills"]) == (
        narrow["volume"],
        narrow["buy_fills"],
        narrow["sell_fills"],
    )


def test_large_random_book_paths_agree() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    bp, sp = rng.integers(1, 3_000, n), rng.integers(1, 3_000, n)
    bq, sq = rng.integers(1, 11, n), rng.integers(1, 11, n)
    a = _clear(bp, bq, sp, sq, method="counting")
    b = _clear(bp, bq, sp, sq, method="bucketed", max_buckets=97)
    assert as_dict(a) == as_dict(b)
    assert a.volume > 0 and a.buy_fills.sum() == a.sell_fills.sum() == a.volume
    # Orders with wide prices: counting would need a 2**40-bin histogram; auto goes bucketed.
    # Fills do not depend on where in the clearing range the price falls, so scaling all
    # prices keeps them.
    wide = _clear(bp * 2**28, bq, sp * 2**28, sq)
    assert wide.volume == a.volume
    assert wide.buy_fills.tolist() == a.buy_fills.tolist()
    assert wide.sell_fills.tolist() == a.sell_fills.tolist()


def test_benchmark_runs_with_tiny_sizes() -> None:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_clearing.py"
    spec = importlib.util.spec_from_file_location("bench_clearing", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(sizes=(1_000,), repeats=1, fallback_size=1_000)
    assert {row["path"] for row in rows} == {"counting", "fallback"}
    assert all(row["clear_s"] > 0 and row["sort_s"] > 0 for row in rows)
