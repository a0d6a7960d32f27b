"""Calvano et al.'s Q-learning pricing experiment (AER 2020), vectorised across sessions: runs
Q-learning sessions to convergence in the baseline logit market and prints the mean profit gain
Delta with its 95% confidence interval next to the paper's (about 0.85), the periods to
convergence and the wall time.

The algorithm is the consumer-markets plugin's (`mesa_llm_consumer_markets.qlearning`: n firms,
m = 15 prices on [p_N - xi (p_M - p_N), p_M + xi (p_M - p_N)] with xi = 0.1, the state is last
period's prices, alpha = 0.15, epsilon_t = exp(-beta t) with beta = 4e-6, delta = 0.95, converged
when no greedy strategy changed for 100,000 periods); all sessions advance together, one numpy
pass per period.

    python benchmarks/bench_qlearning_pricing.py                 # 40 sessions, the baseline
    python benchmarks/bench_qlearning_pricing.py --sessions 20 --seed 3 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Calvano et al.'s reported average profit gain in the baseline (their Table/Fig.: about 0.85)
PAPER_PROFIT_GAIN = 0.85


def _import_plugin() -> None:
    """Make the plugin importable from this checkout when it is not installed."""
    try:
        import mesa_llm_consumer_markets  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT / "plugins" / "consumer_markets"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40, help="sessions (at least 20 for the CI)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--firms", type=int, default=2)
    parser.add_argument("--beta", type=float, default=4e-6)
    parser.add_argument("--convergence", type=int, default=100_000, help="periods without a greedy change")
    parser.add_argument("--max-periods", type=int, default=20_000_000)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    _import_plugin()
    from mesa_llm_consumer_markets.economics import LogitDemand
    from mesa_llm_consumer_markets.qlearning import run_sessions

    demand = LogitDemand.of([2.0] * args.firms, 0.0, 0.25, [1.0] * args.firms)
    started = time.perf_counter()
    last = [started]

    def progress(period: int, converged: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 and not args.json:
            print(f"  period {period:,}: {converged}/{args.sessions} sessions converged ({now - started:,.0f} s)", file=sys.stderr)
            last[0] = now

    result = run_sessions(
        demand, args.sessions, beta=args.beta, convergence=args.convergence, max_periods=args.max_periods,
        seed=args.seed, progress=progress,
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary = result.summary()
    load = os.getloadavg()
    out = {
        **summary,
        "paper_profit_gain": PAPER_PROFIT_GAIN,
        "nash_price": result.nash_price,
        "monopoly_price": result.monopoly_price,
        "periods": result.periods,
        "wall_s": wall,
        "us_per_period": 1e6 * wall / max(result.periods, 1),
        "load_average": list(load),
        "cpus": os.cpu_count(),
        "seed": args.seed,
        "beta": args.beta,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"Q-learning pricing, Calvano et al. baseline (n={args.firms}, m=15, xi=0.1, alpha=0.15, beta={args.beta:g}, delta=0.95)")
    print(f"  p_N = {result.nash_price:.4f}, p_M = {result.monopoly_price:.4f}; seed {args.seed}")
    print(f"  sessions: {summary['sessions']} ({summary['converged']} converged within {args.max_periods:,} periods)")
    print(
        f"  profit gain Delta: mean {summary['profit_gain_mean']:.3f}, 95% CI "
        f"[{summary['profit_gain_ci_low']:.3f}, {summary['profit_gain_ci_high']:.3f}]   (paper: about {PAPER_PROFIT_GAIN})"
    )
    print(f"  mean price in the limit cycles: {summary['mean_price']:.4f}")
    print(
        f"  periods to convergence: mean {summary['steps_mean']:,.0f}, median {summary['steps_median']:,.0f}, "
        f"min {summary['steps_min']:,.0f}, max {summary['steps_max']:,.0f}"
    )
    print(
        f"  wall time: {wall:,.1f} s for {result.periods:,} periods ({out['us_per_period']:.1f} us per period, all sessions), "
        f"{os.cpu_count()} cpus, load average {load[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
