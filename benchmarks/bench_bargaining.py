"""Bargaining with the built-in time-dependent negotiators: agreement rate and surplus split.

Runs the shipped ``bilateral_haggle`` (4 buyer-seller pairs, alternating offers over the price,
20 rounds) with rule-based negotiators and prints, for the scenario's own pairing (Linear buyers
vs Boulware sellers) and for every pairing of Boulware, Linear and Conceder (buyer strategy x
seller strategy):

- agreement rate: agreed sessions / sessions with a zone of possible agreement (ZOPA);
- buyer share: mean over agreements of the buyer's gain / the joint gain (1 = buyer takes all);
- surplus realised: sum of the joint gains agreed / sum of the joint gains available (the
  welfare-maximising individually rational outcome of each session, computed exactly).

Usage: ``python benchmarks/bench_bargaining.py [--seeds 12] [--first-seed 1]``
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

from mesa_llm.model import MarketModel
from mesa_llm.negotiation import LinearAdditiveUtility
from mesa_llm.negotiation.outcome_space import max_welfare_gain
from mesa_llm.scenario import load_scenario

STRATEGIES = ("boulware", "linear", "conceder")


@dataclass
class Tally:
    """Counts over sessions with a ZOPA."""

    sessions: int = 0
    agreed: int = 0
    shares: float = 0.0
    realised: float = 0.0
    available: float = 0.0

    def add(self, other: Tally) -> None:
        self.sessions += other.sessions
        self.agreed += other.agreed
        self.shares += other.shares
        self.realised += other.realised
        self.available += other.available

    def row(self) -> tuple[str, str, str]:
        rate = self.agreed / self.sessions if self.sessions else float("nan")
        share = self.shares / self.agreed if self.agreed else float("nan")
        surplus = self.realised / self.available if self.available else float("nan")
        return f"{rate:6.0%}", f"{share:5.2f}", f"{surplus:6.0%}"


def run(buyer: str, seller: str, seed: int) -> Tally:
    """One run of bilateral_haggle with the given built-in strategies; its tally."""
    spec = load_scenario(
        "bilateral_haggle",
        overrides=[
            "populations.0.policy=negotiator",
            f"populations.0.params={{strategy: {buyer}}}",
            "populations.1.policy=negotiator",
            f"populations.1.params={{strategy: {seller}}}",
        ],
    )
    model = MarketModel(spec, seed=seed, record=False)
    model.run()
    desk = model.desk
    assert desk is not None
    tally = Tally()
    for sid, session in desk.sessions.items():
        space = desk.session_space[sid]
        assert space is not None
        ub: LinearAdditiveUtility = desk.utilities[(session.buyer_id, space)]  # type: ignore[attr-defined]
        us: LinearAdditiveUtility = desk.utilities[(session.seller_id, space)]  # type: ignore[attr-defined]
        available = max_welfare_gain([ub, us], desk.spaces[space])
        if available is None or available <= 0:
            continue  # no zone of possible agreement
        tally.sessions += 1
        tally.available += available
        for agreement in session.agreements:
            gb = ub(agreement.terms) - ub.reservation
            gs = us(agreement.terms) - us.reservation
            tally.agreed += 1
            tally.realised += gb + gs
            tally.shares += gb / (gb + gs) if gb + gs > 1e-12 else 0.5
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="runs per pairing (default 12)")
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.pop("MESA_LLM_MODEL", None)  # built-in negotiators, never an LLM
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    start = time.perf_counter()
    table: dict[tuple[str, str], Tally] = {}
    for buyer in STRATEGIES:
        for seller in STRATEGIES:
            total = Tally()
            for seed in seeds:
                total.add(run(buyer, seller, seed))
            table[(buyer, seller)] = total
    shipped = table[("linear", "boulware")]
    print(f"bilateral_haggle, {args.seeds} seeds x 4 sessions per pairing ({time.perf_counter() - start:.1f} s)")
    rate, share, surplus = shipped.row()
    print(f"shipped pairing (linear buyers vs boulware sellers): agreement {rate.strip()}, "
          f"buyer share {share.strip()}, surplus realised {surplus.strip()} "
          f"({shipped.agreed}/{shipped.sessions} sessions with a ZOPA)")
    print()
    corner = "buyer \\ seller"
    print(f"{corner:<16}" + "".join(f"{s:>26}" for s in STRATEGIES))
    print(f"{'':<16}" + "".join(f"{'agree  share  surplus':>26}" for _ in STRATEGIES))
    for buyer in STRATEGIES:
        cells = ["  ".join(table[(buyer, seller)].row()) for seller in STRATEGIES]
        print(f"{buyer:<16}" + "".join(f"{c:>26}" for c in cells))


if __name__ == "__main__":
    main()
