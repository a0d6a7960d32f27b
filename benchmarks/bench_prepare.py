"""The prepare phase alone: CPU time per agent-step of building and recording every observation.

Run: ``python benchmarks/bench_prepare.py [--agents 1000] [--steps 30] [--repeat 3] [--baseline CHECKOUT]``.
The bench_agents market (ZI-C buyers and sellers, an order each every step): the run's CPU time
spent in ``model.observer.observe`` (observations built, recorded when recording is on) and in the
whole step, per agent-step, each code in a fresh process, modes interleaved, the run with the least
total CPU time kept. ``--baseline CHECKOUT`` measures another revision's checkout in the same run.

It also times the recorder's batch entry against its one-event path in this code: 2,000 events of
the resolve stage's shapes (``action`` and ``order``) through ``MarketModel._record`` one by one,
and through ``_record_many`` as one batch (the same lines), per event.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from busy_market import busy_market, in_checkout

from mesa_llm.model import MarketModel


def run(agents: int, steps: int, record: bool) -> dict[str, float]:
    """CPU seconds of one run: in the observer, and in all; per agent-step in microseconds too."""
    with tempfile.TemporaryDirectory() as out:
        model = MarketModel(busy_market(agents, steps), seed=1, output_dir=out, record=record)
        observe = model.observer.observe
        spent = [0.0]

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return observe(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - start

        model.observer.observe = timed  # type: ignore[method-assign]
        start = time.process_time()
        model.run()
        total = time.process_time() - start
    n = agents * steps
    return {"observe_us": spent[0] / n * 1e6, "total_us": total / n * 1e6, "total_s": total}


def batch_entry(events: int = 2000, repeat: int = 7) -> dict[str, float]:
    """Microseconds per event through `_record` one by one and through `_record_many` (best of ``repeat``)."""
    with tempfile.TemporaryDirectory() as out:
        model = MarketModel(busy_market(1000, 10), seed=1, output_dir=out, record=True)
        items: list[Any] = []
        for i in range(events // 2):
            arguments = {"good": "widget", "side": "buy", "price": 101.25, "quantity": 1, "lifetime": "day"}
            items.append(("action", {"type": "place_order", "arguments": arguments}, i + 1, None))
            items.append(("order", {"order_id": i, "side": "buy", "good": "widget", "price": 101.25,
                                    "quantity": 1, "lifetime": "day"}, i + 1, None))  # fmt: skip

        def each() -> None:
            for item in items:
                model._record(*item)

        best = {"one_us": float("inf"), "many_us": float("inf")}
        for _ in range(repeat):
            for key, work in (("one_us", each), ("many_us", lambda: model._record_many(items))):
                start = time.process_time()
                work()
                model.recorder.flush()  # type: ignore[union-attr]
                best[key] = min(best[key], (time.process_time() - start) / len(items) * 1e6)
        model.finish()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode and code; the least CPU is kept")
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another revision's checkout, measured side by side")
    args = parser.parse_args()
    if args.baseline is not None and not (Path(args.baseline) / "mesa_llm" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of mesa_llm")
    codes = [("baseline", args.baseline)] if args.baseline else []
    codes.append(("this code", None))
    best: dict[tuple[str, bool], dict[str, float]] = {}
    for _ in range(max(args.repeat, 1)):
        for record in (True, False):
            for label, code in codes:
                row = in_checkout(code, "bench_prepare", "run", args.agents, args.steps, record)
                old = best.get((label, record))
                if old is None or row["total_s"] < old["total_s"]:
                    best[label, record] = row
    for record in (True, False):
        for label, _ in codes:
            row = best[label, record]
            print(f"{label:>9} recording {'on' if record else 'off':>3}: observe {row['observe_us']:6.1f} us, "
                  f"step {row['total_us']:6.1f} us per agent-step (CPU)")  # fmt: skip
        if args.baseline:
            base, this = best["baseline", record], best["this code", record]
            print(f"{'':>9} ratio: observe {base['observe_us'] / this['observe_us']:.2f}x faster, "
                  f"step {base['total_us'] / this['total_us']:.2f}x faster")  # fmt: skip
    entry = batch_entry()
    print(f"this code, action/order events: _record {entry['one_us']:.2f} us each, "
          f"_record_many {entry['many_us']:.2f} us each ({entry['one_us'] / entry['many_us']:.2f}x)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
