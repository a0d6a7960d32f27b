"""A ZI population observed in one pass keeps its agents' draws from step to step
(`_ZeroIntelligence.decide_columns` with `_KeptDraws`) and makes them again only for the agents whose
observation changed: the recording must be exactly the one made when every agent's draws are made
at every step (`_each_draws`, the reference), whatever changed between steps (a policy's
parameters or the policy itself, the market's price range, an observation read before deciding,
cash moved, a schedule shock), and the kept draws must actually serve agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesa_llm.agents.policies import zero_intelligence
from mesa_llm.agents.policies.zero_intelligence import (
    ZeroIntelligenceConstrained,
    ZIParams,
    _KeptDraws,
)
from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.support.recordings import untimed_lines


def _vary(model: MarketModel) -> None:
    """One change per step that the kept draws must notice (in both runs alike), before the step."""
    step, traders = model.steps, model.traders
    buyer, seller = traders[0], traders[-1]
    if step == 2:  # new parameters: a buyer's order of 3 units bids at its third unit's value
        buyer.policy.params = ZIParams(quantity=3)
    if step == 3:  # a new policy of the same class (still one population)
        seller.policy = ZeroIntelligenceConstrained(ZIParams(quantity=2))
    if step == 4:  # the market's range narrowed: every draw's high (or top) moves
        model.exchange.rules.price_caps["widget"] = model.exchange.money.to_ticks(150.0)
    if step == 6:  # an observation read before deciding (its agent's schedule new): decided from its parts
        pv = traders[3].private["widget"]
        if pv.values:
            pv.values = [v - 7 for v in pv.values]
        else:
            pv.costs = [c + 7 for c in pv.costs]
        observed = model.prepare_step()
        assert observed[3][1].account is not None
    if step == 7:  # cash moved through the ledger (no fill): that agent's observation changes
        model.exchange.ledger.transfer_cash(traders[1].unique_id, traders[2].unique_id, 1000)
    if step == 8:  # a private schedule set: every agent compared in full
        pv = seller.private["widget"]
        pv.costs = [c + 3 for c in pv.costs]
    if step == 9:
        del model.exchange.rules.price_caps["widget"]


def _recording(overrides: list[str], seed: int, out: Path, monkeypatch: pytest.MonkeyPatch, *, kept: bool) -> tuple[list[str], int]:
    """The untimed recording of 12 steps (`_vary` before each) and how many agent-steps were served
    from kept draws (0 for the reference, whose draws are all made anew)."""
    made, decided = [0], [0]
    draws, of = zero_intelligence._agent_draws, _KeptDraws.of.__func__  # type: ignore[attr-defined]

    def counted(*args: Any) -> Any:
        made[0] += 1
        return draws(*args)

    def kept_of(cls: type[_KeptDraws], policies: Any, observations: Any, constrained: bool) -> Any:
        decided[0] += len(policies)
        return of(cls, policies, observations, constrained) if kept else None

    monkeypatch.setattr(zero_intelligence, "_agent_draws", counted)
    monkeypatch.setattr(_KeptDraws, "of", classmethod(kept_of))
    model = MarketModel(load_scenario("double_auction", overrides=overrides), seed=seed, steps=12, output_dir=out,
                        run_name="r")  # fmt: skip
    while model.running:
        _vary(model)
        model.step()
    model.finish()
    monkeypatch.undo()
    assert model.recording_path is not None
    lines = [line for line in untimed_lines(Path(model.recording_path)) if '"simulation_start"' not in line]
    return lines, decided[0] - made[0]


@pytest.mark.parametrize(
    ("overrides", "seed"),
    [
        ([], 1),
        (["populations.1.policy=zi_u"], 3),  # two populations in a step, each keeping its own
        (["populations.0.private.widget.units=30", "populations.0.endowment.cash=100000",
          "populations.1.endowment.holdings.widget=30", "populations.1.private.widget.units=30"], 2),
        (["populations.0.endowment.cash=40"], 5),  # cash short of bids: the cash check bites
    ],
)  # fmt: skip
def test_kept_draws_record_what_draws_made_every_step_record(
    overrides: list[str], seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, none_kept = _recording(overrides, seed, tmp_path / "ref", monkeypatch, kept=False)
    fast, served = _recording(overrides, seed, tmp_path / "fast", monkeypatch, kept=True)
    assert none_kept <= 0 < served  # the reference made every draw; the kept ones served agents
    assert fast == reference
