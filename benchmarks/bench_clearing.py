"""Benchmark of the call-auction clearing against np.sort on the same prices.

Run ``python benchmarks/bench_clearing.py``. For each size n: n random orders, half buys
half sells, prices uniform over 1..100000 ticks (the two sides cross around the middle),
quantities 1..10, from a seeded generator. Prints the best-of-5 time of
``clear_call_auction``, of ``np.sort`` on the same n prices and their ratio, the time of
``pair_fills`` on the result, and one line for the wide-span fallback (prices spanning
1..2**40) so its cost is visible too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    from mesa_llm.market import clear_call_auction, pair_fills
except ModuleNotFoundError:  # run from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mesa_llm.market import clear_call_auction, pair_fills

SIZES = (10_000, 100_000, 1_000_000)


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Best wall-clock time of ``repeats`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def make_book(
    n: int, max_price: int, seed: int = 12345
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """n orders, half buys and half sells, prices uniform over 1..max_price ticks."""
    rng = np.random.default_rng(seed)
    half = n // 2
    buy_prices = rng.integers(1, max_price + 1, half, dtype=np.int64)
    sell_prices = rng.integers(1, max_price + 1, n - half, dtype=np.int64)
    buy_qty = rng.integers(1, 11, half, dtype=np.int64)
    sell_qty = rng.integers(1, 11, n - half, dtype=np.int64)
    return buy_prices, buy_qty, sell_prices, sell_qty


def measure(n: int, max_price: int, path: str, repeats: int) -> dict[str, Any]:
    """Time clearing, np.sort and pair_fills on one random book."""
    bp, bq, sp, sq = make_book(n, max_price)
    prices = np.concatenate((bp, sp))
    clear_s = best_of(lambda: clear_call_auction(bp, bq, sp, sq), repeats)
    sort_s = best_of(lambda: np.sort(prices), repeats)
    result = clear_call_auction(bp, bq, sp, sq)
    pair_s = best_of(lambda: pair_fills(result.buy_fills, result.sell_fills), repeats)
    return {
        "path": path,
        "n": n,
        "max_price": max_price,
        "clear_s": clear_s,
        "sort_s": sort_s,
        "ratio": clear_s / sort_s,
        "pair_s": pair_s,
        "volume": result.volume,
        "trades": int(pair_fills(result.buy_fills, result.sell_fills)[2].size),
    }


def run(
    sizes: Sequence[int] = SIZES, repeats: int = 5, fallback_size: int | None = 1_000_000
) -> list[dict[str, Any]]:
    """Measure every size on the counting path, then one wide-span book on the fallback."""
    rows = [measure(n, 100_000, "counting", repeats) for n in sizes]
    if fallback_size:
        rows.append(measure(fallback_size, 2**40, "fallback", repeats))
    return rows


def main() -> None:
    """Print the table."""
    print(
        f"{'path':<9} {'n':>9} {'clear ms':>9} {'sort ms':>9} {'ratio':>6} "
        f"{'pair ms':>8} {'volume':>9} {'trades':>8}"
    )
    for row in run():
        print(
            f"{row['path']:<9} {row['n']:>9} {row['clear_s'] * 1e3:>9.2f} "
            f"{row['sort_s'] * 1e3:>9.2f} {row['ratio']:>6.2f} {row['pair_s'] * 1e3:>8.2f} "
            f"{row['volume']:>9} {row['trades']:>8}"
        )


if __name__ == "__main__":
    main()
