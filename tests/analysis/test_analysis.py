"""Tests of mesa_llm.analysis: loading recordings into tables and every metric, on tiny hand-made
recordings (expected numbers derived in comments) and on real model runs."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from mesa_llm.analysis import (
    LazyContent,
    agreement_rate,
    allocative_efficiency,
    competitive_equilibrium_by_step,
    efficiency_report,
    gini,
    invalid_action_rate,
    llm_costs,
    load_recording,
    load_recordings,
    pareto_nash_distances,
    price_volatility,
    rounds_to_agreement,
    smiths_alpha,
    summary_metrics,
    surplus_split,
    wealth_gini,
)
from mesa_llm.analysis.loader import Recording
from mesa_llm.recording import RecordingError, SimulationRecorder

Event = tuple[int, str, dict[str, Any], int | None]  # (step, event_type, content, agent_id)

# ----------------------------------------------------------------------------- builders


def agent(
    agent_id: int,
    role: str,
    *,
    values: Iterable[float] = (),
    costs: Iterable[float] = (),
    utilities: dict[str, Any] | None = None,
    population: str | None = None,
) -> dict[str, Any]:
    """A header agent as the model writes it."""
    private = {"widget": {"values": list(values), "costs": list(costs), "fundamental": None}}
    return {
        "agent_id": agent_id,
        "name": f"{role}_{agent_id}",
        "role": role,
        "population": population or f"{role}s",
        "policy": "zi_c",
        "model": None,
        "private": private if (values or costs) else {},
        "endowment": {"cash": 100.0, "holdings": {"widget": 0}},
        "utilities": utilities or {},
    }


def header(agents: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "scenario": {"name": "tiny", "spec": {}},
        "seed": 1,
        "steps": 5,
        "tick_size": 0.01,
        "goods": {"widget": {"reference_price": 10.0, "min_price": 0.01, "max_price": 100.0}},
        "agents": agents,
        "negotiation": {"spaces": {}},
        **extra,
    }


def write_stream(
    folder: Path, head: dict[str, Any], events: list[Event], *, name: str = "run", end: bool = True
) -> Path:
    """A JSON-lines recording written by the real SimulationRecorder, with step markers."""
    clock = SimpleNamespace(steps=0, max_steps=None, agents=[])
    recorder = SimulationRecorder(clock, output_dir=folder, simulation_id="t", run_name=name)
    recorder.record_model_event("simulation_start", head)
    last = max((e[0] for e in events), default=0)
    for step in range(1, last + 1):
        clock.steps = step
        recorder.record_event("step_start", {"step": step})
        for s, event_type, content, agent_id in events:
            if s == step:
                recorder.record_event(event_type, content, agent_id, as_given=True)
        recorder.record_event("step_end", {"step": step})
    if end:
        recorder.record_simulation_end("completed")
    recorder.close()
    assert recorder.jsonl_path is not None
    return recorder.jsonl_path


def trade(step: int, buyer: int, seller: int, price: float, quantity: int = 1) -> Event:
    return (
        step,
        "trade",
        {
            "good": "widget",
            "price": price,
            "quantity": quantity,
            "buyer_id": buyer,
            "seller_id": seller,
        },
        None,
    )


def clearing(step: int, price: float | None, volume: int) -> Event:
    price_range = [price, price] if price is not None else None
    return (
        step,
        "clearing",
        {"good": "widget", "price": price, "volume": volume, "price_range": price_range},
        None,
    )


# Induced values and costs: buyer 1 values 10 and 8, buyer 2 values 6; seller 3 costs 2 and 5,
# seller 4 costs 7. Values high to low 10, 8, 6 against costs low to high 2, 5, 7: gains 8, 3, -1,
# so Q = 2 units, maximum surplus 8 + 3 = 11, and any price in [max(c2=5, v3=6), min(v2=8, c3=7)]
# = [6, 7] clears: P0 = 6.5.
MARKET_AGENTS = [
    agent(1, "buyer", values=[10.0, 8.0]),
    agent(2, "buyer", values=[6.0]),
    agent(3, "seller", costs=[2.0, 5.0]),
    agent(4, "seller", costs=[7.0]),
]
# Step 1: 1 buys from 3 at 6 (10 - 2 = +8); step 2: 2 buys from 4 at 7 (6 - 7 = -1); step 3: no
# trade; step 4: 1 buys from 3 at 6.3 (its second unit: 8 - 5 = +3). Realised 8 - 1 + 3 = 10.
MARKET_EVENTS: list[Event] = [
    clearing(1, 6.0, 1),
    trade(1, 1, 3, 6.0),
    clearing(2, 7.0, 1),
    trade(2, 2, 4, 7.0),
    clearing(3, None, 0),
    clearing(4, 6.3, 1),
    trade(4, 1, 3, 6.3),
]


@pytest.fixture
def market(tmp_path: Path) -> Recording:
    return load_recording(write_stream(tmp_path, header(MARKET_AGENTS), MARKET_EVENTS))


# ----------------------------------------------------------------------------- loading


def test_tables_of_a_tiny_recording(market: Recording) -> None:
    assert market.header["scenario"]["name"] == "tiny"
    assert market.run_id == "run" and not market.truncated and market.warning is None
    assert market.final_step == 4 and market.status == "completed" and market.complete_steps == 4
    trades = market.trades
    assert list(trades.columns[:7]) == [
        "step",
        "agent_id",
        "good",
        "price",
        "quantity",
        "buyer_id",
        "seller_id",
    ]
    assert trades[["step", "buyer_id", "seller_id", "price"]].values.tolist() == [
        [1, 1, 3, 6.0],
        [2, 2, 4, 7.0],
        [4, 1, 3, 6.3],
    ]
    assert trades["agent_id"].isna().all()
    clearings = market.clearings
    assert clearings["price"].isna().tolist() == [False, False, True, False]
    assert clearings["price_low"].tolist()[:2] == [6.0, 7.0]
    events = market.events
    assert list(events.columns) == [
        "event_id",
        "step",
        "agent_id",
        "event_type",
        "timestamp",
        "content",
    ]
    assert str(events["agent_id"].dtype) == "Int64"
    assert str(events["timestamp"].dtype) == "datetime64[us, UTC]"
    assert len(events) == len(market) == 1 + 4 * 2 + len(MARKET_EVENTS) + 1
    first_trade = events[events["event_type"] == "trade"].iloc[0]
    assert isinstance(first_trade["content"], LazyContent)
    assert dict(first_trade["content"]) == {
        "good": "widget",
        "price": 6.0,
        "quantity": 1,
        "buyer_id": 1,
        "seller_id": 3,
    }
    assert market.agents["role"].tolist() == ["buyer", "buyer", "seller", "seller"]
    assert market.event_types["trade"] == 3 and market.count("clearing") == 4


def test_empty_tables_have_their_columns(market: Recording) -> None:
    for name, columns in {
        "llm_calls": [
            "model",
            "purpose",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "latency_s",
            "attempts",
            "error",
        ],
        "messages": ["sender_id", "recipient_ids", "text", "channel"],
        "rejections": ["type", "arguments", "reason"],
        "contracts": [
            "contract_id",
            "created_step",
            "settled_step",
            "buyer_id",
            "seller_id",
            "price",
            "status",
        ],
        "offers": ["session_id", "terms", "proposer"],
        "agreements": ["session_id", "buyer_id", "seller_id", "terms"],
        "agent_states": ["cash", "holdings", "surplus", "wealth"],
        "observations": [],
        "negotiation_events": ["session_id", "kind"],
    }.items():
        table = getattr(market, name)
        assert table.empty, name
        assert set(["step", *columns]) <= set(table.columns), name
    assert market.table("no_such_type").columns.tolist()[:2] == ["step", "agent_id"]


def test_a_cut_last_line_loads_as_truncated(tmp_path: Path) -> None:
    path = write_stream(tmp_path, header(MARKET_AGENTS), MARKET_EVENTS, end=False)
    # a crash in step 5: its step_start made it, its next line only in part
    with open(path, "a", encoding="utf-8") as f:
        f.write(
            json.dumps(
                {
                    "event_id": "t_x",
                    "timestamp": "2026-01-01T00:00:00+00:00",
                    "step": 5,
                    "agent_id": None,
                    "event_type": "step_start",
                    "content": {"step": 5},
                    "metadata": {},
                }
            )
            + "\n"
        )
        f.write(
            '{"event_id":"t_y","timestamp":"2026-01-01T00:00:00+00:00","step":5,"agent_id":1,"event_ty'
        )
    rec = load_recording(path)
    assert rec.truncated is True
    assert rec.warning is not None and "incomplete" in rec.warning
    assert rec.complete_steps == 4 and rec.final_step == 4
    assert len(rec.trades) == 3  # every complete step kept, the cut one dropped


def test_corrupt_and_missing_files_raise_recording_error(tmp_path: Path) -> None:
    path = write_stream(tmp_path, header(MARKET_AGENTS), MARKET_EVENTS)
    lines = path.read_text().splitlines()
    lines[3] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match="line 4"):
        load_recording(path)
    with pytest.raises(RecordingError, match="no such"):
        load_recording(tmp_path / "missing.jsonl")


def test_plain_json_lines_load_like_the_recorders_own(tmp_path: Path, market: Recording) -> None:
    # Lines written by another tool (spaces after separators) take the reader's path.
    lines = [json.loads(line) for line in market.path.read_text().splitlines()]
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(e) + "\n" for e in lines))
    rec = load_recording(other)
    pd.testing.assert_frame_equal(rec.trades, market.trades)
    pd.testing.assert_frame_equal(rec.clearings, market.clearings)
    assert [dict(c) for c in rec.events["content"]] == [e["content"] for e in lines]
    assert (
        summary_metrics(rec)["allocative_efficiency"]
        == summary_metrics(market)["allocative_efficiency"]
    )


def test_the_single_file_json_export_loads_too(tmp_path: Path) -> None:
    clock = SimpleNamespace(steps=0, max_steps=2, agents=[])
    recorder = SimulationRecorder(clock, output_dir=tmp_path, simulation_id="x", run_name="stream")
    recorder.record_model_event("simulation_start", header(MARKET_AGENTS))
    for step, event_type, content, agent_id in MARKET_EVENTS[:4]:
        clock.steps = step
        recorder.record_event(event_type, content, agent_id)
    recorder.record_simulation_end("completed")
    export = recorder.save("export.json")
    recorder.close()
    rec = load_recording(export)
    assert rec.metadata is not None and rec.metadata["total_events"] == 5
    assert rec.trades["price"].tolist() == [6.0, 7.0]
    stream = load_recording(recorder.jsonl_path)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(rec.trades, stream.trades)


def test_load_recordings_stacks_runs_with_their_run_id(tmp_path: Path) -> None:
    write_stream(tmp_path, header(MARKET_AGENTS), MARKET_EVENTS, name="a")
    write_stream(tmp_path, header(MARKET_AGENTS), MARKET_EVENTS[:2], name="b")
    runs = load_recordings(tmp_path)
    assert [r.run_id for r in runs.runs] == ["a", "b"]
    trades = runs.trades
    assert trades.columns[0] == "run_id"
    assert trades["run_id"].tolist() == ["a", "a", "a", "b"]
    assert runs.events["run_id"].nunique() == 2
    summary = runs.summary()
    assert summary["run_id"].tolist() == ["a", "b"]
    assert summary["allocative_efficiency"].tolist() == pytest.approx([10 / 11, 8 / 11])
    assert runs["b"].run_id == "b"


def test_a_changed_file_is_not_read_as_if_it_were_the_same(tmp_path: Path) -> None:
    # LLM calls are large: their contents are read from the file on first use (others at load)
    call = (1, "llm_call", {"model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}, 1)
    path = write_stream(tmp_path, header(MARKET_AGENTS), [*MARKET_EVENTS, call])
    rec = load_recording(path)
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n")
    with pytest.raises(RecordingError, match="changed"):
        rec.llm_calls  # noqa: B018 - contents are read from the file on first use


# ----------------------------------------------------------------------------- market metrics


def test_allocative_efficiency(market: Recording) -> None:
    # realised 8 - 1 + 3 = 10 over the maximum surplus 11 (see MARKET_AGENTS / MARKET_EVENTS)
    assert allocative_efficiency(market) == pytest.approx(10 / 11)


def test_fulfilled_contracts_count_like_trades(tmp_path: Path) -> None:
    # The first unit traded in step 1 (+8); in step 2 a contract delivers buyer 1's second unit
    # (value 8) from seller 3's second unit (cost 5): +3. A breached contract moves nothing.
    contract = {"stage": "settled", "contract_id": 1, "session_id": "N1", "buyer_id": 1, "seller_id": 3,
                "good": "widget", "quantity": 1, "price": 6.5, "value": 6.5, "status": "fulfilled"}  # fmt: skip
    breached = {**contract, "contract_id": 2, "status": "breached", "buyer_id": 2, "seller_id": 4}
    events = [
        clearing(1, 6.0, 1),
        trade(1, 1, 3, 6.0),
        (2, "contract", contract, None),
        (2, "contract", breached, None),
    ]
    rec = load_recording(write_stream(tmp_path, header(MARKET_AGENTS), events))
    assert allocative_efficiency(rec) == pytest.approx((8 + 3) / 11)
    contracts = rec.contracts
    assert contracts["contract_id"].tolist() == [1, 2]
    assert contracts["settled_step"].tolist() == [2, 2]


def test_no_induced_values_no_efficiency(tmp_path: Path) -> None:
    rec = load_recording(
        write_stream(
            tmp_path, header([agent(1, "buyer"), agent(2, "seller")]), [trade(1, 1, 2, 5.0)]
        )
    )
    assert allocative_efficiency(rec) is None
    assert smiths_alpha(rec) == {"widget": None}


def test_smiths_alpha(market: Recording) -> None:
    # prices 6, 7, 6.3 against P0 = 6.5: deviations -0.5, 0.5, -0.2; mean square
    # (0.25 + 0.25 + 0.04) / 3 = 0.18; alpha = 100 * sqrt(0.18) / 6.5 = 6.527140...
    assert smiths_alpha(market) == {"widget": pytest.approx(6.5271397, rel=1e-6)}


def test_price_volatility(market: Recording) -> None:
    # clearing prices 6, 7, (none in step 3), 6.3: log returns ln(7/6) = 0.1541507 and
    # ln(6.3/7) = -0.1053605; the sample sd of two numbers is |r1 - r2| / sqrt(2) = 0.2595112 / 1.4142136 = 0.1835021
    assert price_volatility(market) == {"widget": pytest.approx(0.1835021, rel=1e-6)}


def test_competitive_equilibrium_by_step(market: Recording) -> None:
    ce = competitive_equilibrium_by_step(market)
    assert ce["step"].tolist() == [1, 2, 3, 4]
    # step 1: all units, Q = 2, range [6, 7], max 11
    # step 2: buyer 1 and seller 3 used one unit each: values 8, 6 / costs 5, 7: gains 3, -1;
    #         Q = 1, range [max(5, 6), min(8, 7)] = [6, 7], max 3
    # steps 3 and 4: buyer 2 and seller 4 traded their only unit: 8 against 5, range [5, 8]
    assert ce["ce_quantity"].tolist() == [2, 1, 1, 1]
    assert ce["max_surplus"].tolist() == [11.0, 3.0, 3.0, 3.0]
    assert ce["ce_price_low"].tolist() == [6.0, 6.0, 5.0, 5.0]
    assert ce["ce_price_high"].tolist() == [7.0, 7.0, 8.0, 8.0]
    assert ce["ce_price"].tolist() == [6.5, 6.5, 6.5, 6.5]


def test_a_value_shock_moves_the_equilibrium_and_rebases_efficiency(tmp_path: Path) -> None:
    # At step 3 the buyers' values double (scale 2): buyer 1's units become 20 and 16. At the
    # start of step 3 it has 16 left against seller 3's cost 5: Q = 1, range [5, 16], max 11.
    # The step-4 fill then realises 16 - 5 = 11: in all 8 - 1 + 11 = 18, i.e. 18/11 of the
    # initial maximum. Re-based as the model does: at the shock, realised so far (7) + the new
    # maximum (11) = 18, so efficiency 18/18 = 1.
    shock = {"index": 0, "event": {"type": "shift_private", "at_step": 3, "populations": ["buyers"],
                                   "good": "widget", "field": "values", "add": 0.0, "scale": 2.0}}  # fmt: skip
    events = [*MARKET_EVENTS[:5], (3, "scheduled_event", shock, None), *MARKET_EVENTS[5:]]
    rec = load_recording(write_stream(tmp_path, header(MARKET_AGENTS), events))
    ce = competitive_equilibrium_by_step(rec).set_index("step")
    assert ce.loc[3, "ce_quantity"] == 1 and ce.loc[3, "max_surplus"] == 11.0
    assert (ce.loc[3, "ce_price_low"], ce.loc[3, "ce_price_high"]) == (5.0, 16.0)
    # re-based as the run does (the default: analyze and the run give one number)
    assert allocative_efficiency(rec) == pytest.approx(1.0)
    assert summary_metrics(rec)["allocative_efficiency"] == pytest.approx(1.0)
    # against the initial maximum the shock's gains would give 18/11 > 1: undefined, with the reason
    assert allocative_efficiency(rec, rebase_on_shocks=False) is None
    assert "exceeds the benchmark" in (efficiency_report(rec, rebase_on_shocks=False).reason or "")


# ----------------------------------------------------------------------------- negotiations

SPACE = {
    "issues": [{"name": "price", "type": "continuous", "low": 0.0, "high": 100.0, "tick": 1.0}]
}


def price_utility(buyer: bool, reservation_price: float) -> dict[str, Any]:
    """A one-issue price utility: u = 1 - p/100 for the buyer, p/100 for the seller; the
    reservation value is the utility at the reservation price."""
    return {
        "type": "linear_additive",
        "weights": {"price": 1.0},
        "preferences": {"price": "decreasing" if buyer else "increasing"},
        "reservation": 1 - reservation_price / 100 if buyer else reservation_price / 100,
        "discount": 1.0,
    }


def negotiation(
    at: int,
    kind: str,
    session: str,
    parties: list[int],
    agent_id: int | None = None,
    protocol: str = "alternating_offers",
    **content: Any,
) -> Event:
    """A negotiation event of step `at` as the desk records it."""
    event_type = (
        "offer"
        if kind in ("offer", "bid")
        else "agreement"
        if kind == "agreement"
        else "negotiation"
    )
    body = {
        "kind": kind,
        "session_id": session,
        "protocol": protocol,
        "parties": parties,
        "good": "widget",
        **content,
    }
    return (at, event_type, body, agent_id)


@pytest.fixture
def talks(tmp_path: Path) -> Recording:
    # Buyers (1, 3) value the good at 80, sellers (2, 4) cost 20; auction seller 5, bidders 6, 7.
    agents = [
        agent(1, "buyer", utilities={"price_space": price_utility(True, 80)}),
        agent(2, "seller", utilities={"price_space": price_utility(False, 20)}),
        agent(3, "buyer", utilities={"price_space": price_utility(True, 80)}),
        agent(4, "seller", utilities={"price_space": price_utility(False, 20)}),
        agent(5, "seller"), agent(6, "buyer"), agent(7, "buyer"),
        agent(8, "regulator"),
    ]  # fmt: skip
    events: list[Event] = [
        # N1 agreed in its third round (round 2) at 70
        negotiation(1, "opened", "N1", [1, 2], space=SPACE, step=1),
        negotiation(1, "offer", "N1", [1, 2], 2, round=0, offer_id=1, proposer=2, terms={"price": 90.0}),
        negotiation(2, "offer", "N1", [1, 2], 1, round=1, offer_id=2, proposer=1, terms={"price": 50.0}),
        negotiation(3, "accept", "N1", [1, 2], 1, round=2, offer_id=3, terms={"price": 70.0}),
        negotiation(3, "agreement", "N1", [1, 2], round=2, buyer_id=1, seller_id=2, terms={"price": 70.0}, step=3),
        # N2 failed at its deadline
        negotiation(1, "opened", "N2", [3, 4], space=SPACE, step=1),
        negotiation(5, "disagreement", "N2", [3, 4], round=5, reason="deadline reached"),
        # N3 is still open at the end: not closed, not counted
        negotiation(4, "opened", "N3", [3, 2], space=SPACE, step=4),
        # A1: a bidder withdrawing does not close an auction; the sale does (in round 1)
        negotiation(2, "opened", "A1", [5, 6, 7], protocol="sealed_bid", step=2),
        negotiation(2, "end", "A1", [5, 6, 7], 6, protocol="sealed_bid", round=0, reason="bidder 6 withdrew"),
        negotiation(3, "agreement", "A1", [5, 6, 7], protocol="sealed_bid", round=1, buyer_id=7, seller_id=5, terms={"price": 30.0, "quantity": 1}),
        # LLM calls: two answered (100 + 20 and 200 + 30 tokens, $0.01 and $0.02), one failed
        (1, "llm_call", {"model": "m", "purpose": "act", "usage": {"prompt_tokens": 100, "completion_tokens": 20}, "cost_usd": 0.01, "latency_s": 1.0, "attempts": 1, "error": None}, 1),
        (2, "llm_call", {"model": "m", "purpose": "act", "usage": {"prompt_tokens": 200, "completion_tokens": 30}, "cost_usd": 0.02, "latency_s": 2.0, "attempts": 1, "error": None}, 2),
        (2, "llm_call", {"model": "m", "purpose": "act", "usage": {"prompt_tokens": 0, "completion_tokens": 0}, "cost_usd": 0.0, "latency_s": None, "attempts": 3, "error": "timeout"}, 3),
        # three actions applied, one rejected
        (1, "action", {"type": "make_offer", "arguments": {}}, 2),
        (2, "action", {"type": "make_offer", "arguments": {}}, 1),
        (3, "action", {"type": "accept_offer", "arguments": {}}, 1),
        (3, "action_rejected", {"type": "make_offer", "arguments": {"terms": {"price": 500}}, "reason": "price: 500.0 is above the maximum 100.0"}, 3),
        # agent states: the last one of each agent counts (the regulator holds nothing by design)
        (1, "agent_state", {"cash": 0.0, "wealth": 999.0, "surplus": 0.0}, 1),
        (5, "agent_state", {"cash": 100.0, "wealth": 100.0, "surplus": -70.0}, 1),
        (5, "agent_state", {"cash": 300.0, "wealth": 300.0, "surplus": 70.0}, 2),
        (5, "agent_state", {"cash": 0.0, "wealth": 0.0, "surplus": 0.0}, 8),
    ]  # fmt: skip
    head = header(agents, negotiation={"spaces": {"price_space": SPACE}})
    return load_recording(write_stream(tmp_path, head, events))


def test_agreement_rate(talks: Recording) -> None:
    # closed: N1 (agreed), N2 (disagreement), A1 (agreed; the withdrawal did not close it);
    # N3 is still open. 2 agreed / 3 closed.
    assert agreement_rate(talks) == pytest.approx(2 / 3)


def test_rounds_to_agreement(talks: Recording) -> None:
    # N1 agreed in round 2 (0-based): 3 rounds; A1 in round 1: 2 rounds
    assert rounds_to_agreement(talks).to_dict() == {"N1": 3, "A1": 2}


def test_surplus_split(talks: Recording) -> None:
    # At 70: buyer gain (1 - 0.70) - (1 - 0.80) = 0.10, seller gain 0.70 - 0.20 = 0.50, joint 0.60;
    # buyer's share 0.10 / 0.60 = 1/6 (= (value - price) / (value - cost) = 10 / 60). The auction
    # parties have no utilities: no row.
    split = surplus_split(talks)
    assert split["session_id"].tolist() == ["N1"]
    row = split.iloc[0]
    assert row["buyer_gain"] == pytest.approx(0.10) and row["seller_gain"] == pytest.approx(0.50)
    assert row["joint_gain"] == pytest.approx(0.60)
    assert row["buyer_share"] == pytest.approx(1 / 6) and row["seller_share"] == pytest.approx(
        5 / 6
    )


def test_pareto_and_nash_distances(talks: Recording) -> None:
    # One price issue with opposite preferences: every outcome is on the Pareto frontier, so the
    # distance is 0. The Nash point maximises (0.8 - p/100 ... ) i.e. (80 - p)(p - 20): p = 50, the
    # midpoint, utilities (0.5, 0.5). The agreement at 70 is at (0.3, 0.7):
    # sqrt(0.2^2 + 0.2^2) = 0.2828427 from it.
    distances = pareto_nash_distances(talks)
    assert distances["session_id"].tolist() == ["N1"]
    row = distances.iloc[0]
    assert row["distance_to_pareto"] == pytest.approx(0.0, abs=1e-12)
    assert row["distance_to_nash"] == pytest.approx(math.sqrt(0.08))
    assert row["nash_terms"] == {"price": 50.0}


def test_a_dominated_agreement_is_off_the_pareto_frontier(tmp_path: Path) -> None:
    # price 0..100 and warranty 0..2: the buyer wants a low price and a long warranty (weights
    # 0.5 each), the seller only a high price. Agreeing on no warranty leaves the buyer 0.25 and
    # the seller 0.5, while (same price, warranty 2) gives the buyer 0.5 at no cost to the seller.
    # The frontier is b = 1 - s/2 (warranty 2): the distance from (0.25, 0.5) is 0.5 / sqrt(1.25).
    space = {
        "issues": [
            {"name": "price", "type": "continuous", "low": 0.0, "high": 100.0, "tick": 1.0},
            {"name": "warranty", "type": "integer", "low": 0, "high": 2},
        ]
    }

    def utility(weights: dict[str, float], preferences: dict[str, str]) -> dict[str, Any]:
        return {"type": "linear_additive", "weights": weights, "preferences": preferences, "reservation": 0.0, "discount": 1.0}

    buyer = utility({"price": 0.5, "warranty": 0.5}, {"price": "decreasing", "warranty": "increasing"})
    seller = utility({"price": 1.0, "warranty": 0.0}, {"price": "increasing", "warranty": "decreasing"})
    agents = [agent(1, "buyer", utilities={"s2": buyer}), agent(2, "seller", utilities={"s2": seller})]
    terms = {"price": 50.0, "warranty": 0}
    events: list[Event] = [
        negotiation(1, "opened", "N1", [1, 2], space=space, step=1),
        negotiation(1, "agreement", "N1", [1, 2], round=0, buyer_id=1, seller_id=2, terms=terms, step=1),
    ]
    rec = load_recording(write_stream(tmp_path, header(agents, negotiation={"spaces": {"s2": space}}), events))
    row = pareto_nash_distances(rec).iloc[0]
    assert (row["buyer_utility"], row["seller_utility"]) == pytest.approx((0.25, 0.5))
    assert row["distance_to_pareto"] == pytest.approx(0.5 / math.sqrt(1.25))


def test_gini() -> None:
    # sum |x_i - x_j| over ordered pairs = 6 * 1 = 6; 2 n^2 mean = 2 * 16 * 0.25 = 8: 0.75
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([5, 5, 5]) == 0.0
    assert gini([1, 3]) == pytest.approx(0.25)  # |1 - 3| * 2 / (2 * 4 * 2)
    assert math.isnan(gini([]))


def test_wealth_gini_uses_the_last_state_and_leaves_out_the_regulator(talks: Recording) -> None:
    # agent 1 ends with 100, agent 2 with 300 (the regulator's 0 is left out): |100 - 300| * 2 /
    # (2 * 4 * 200) = 0.25
    assert wealth_gini(talks) == pytest.approx(0.25)


def test_invalid_action_rate(talks: Recording) -> None:
    # 1 rejected / (3 applied + 1 rejected)
    assert invalid_action_rate(talks) == pytest.approx(0.25)


def test_llm_costs_per_agreement(talks: Recording) -> None:
    # $0.01 + $0.02 + $0 = $0.03 and 120 + 230 + 0 = 350 tokens over 2 agreements
    costs = llm_costs(talks)
    assert costs["calls"] == 3 and costs["failed_calls"] == 1
    assert costs["total_tokens"] == 350 and costs["cost_usd"] == pytest.approx(0.03)
    assert costs["cost_per_agreement"] == pytest.approx(0.015)
    assert costs["tokens_per_agreement"] == pytest.approx(175)
    assert costs["cost_per_surplus"] is None  # no induced values: no surplus in money
    assert costs["models"] == ["m"]


def test_summary_metrics_are_json_ready(talks: Recording, market: Recording) -> None:
    for rec in (talks, market):
        metrics = summary_metrics(rec)
        assert json.loads(json.dumps(metrics)) == metrics
    metrics = summary_metrics(talks)
    assert metrics["agreement_rate"] == pytest.approx(2 / 3)
    assert metrics["sessions"] == 4 and metrics["closed_sessions"] == 3
    assert metrics["mean_buyer_share"] == pytest.approx(1 / 6)
    assert summary_metrics(market)["goods"]["widget"]["ce_price"] == 6.5


# ----------------------------------------------------------------------------- real runs


def _run(name: str, folder: Path, *overrides: str) -> Any:
    from mesa_llm.model import MarketModel
    from mesa_llm.scenario import load_scenario

    model = MarketModel(load_scenario(name, overrides=list(overrides)), output_dir=folder)
    summary = model.run()
    assert model.recording_path is not None
    return summary, load_recording(model.recording_path)


def test_a_real_double_auction_matches_the_models_own_numbers(tmp_path: Path) -> None:
    summary, rec = _run("double_auction", tmp_path, "steps=15")
    assert len(rec.trades) == summary.trades
    assert int(rec.trades["quantity"].sum()) == summary.volume
    assert summary.allocative_efficiency is not None
    assert allocative_efficiency(rec) == pytest.approx(summary.efficiency, abs=1e-12)
    good = summary.goods["widget"]
    assert smiths_alpha(rec)["widget"] == pytest.approx(good["smiths_alpha"])
    ce = competitive_equilibrium_by_step(rec)
    assert ce.iloc[0]["ce_price"] == pytest.approx(good["ce_price"])
    assert ce.iloc[0]["ce_quantity"] == good["ce_quantity"]
    metrics = summary_metrics(rec)
    assert metrics["trades"] == summary.trades and metrics["volume"] == summary.volume
    assert metrics["goods"]["widget"]["mean_price"] == pytest.approx(good["mean_price"])


def test_a_shocked_run_matches_the_models_rebased_efficiency(tmp_path: Path) -> None:
    # energy_trading: a heat wave multiplies the consumers' values at step 12
    summary, rec = _run("energy_trading", tmp_path, "steps=14")
    assert allocative_efficiency(rec, rebase_on_shocks=True) == pytest.approx(
        summary.allocative_efficiency, abs=1e-12
    )
    shock = rec.table("scheduled_event").iloc[0]
    ce = competitive_equilibrium_by_step(rec).set_index("step").loc[shock["step"]]
    reported = shock["competitive_equilibrium"]["energy"]
    assert ce["ce_quantity"] == reported["quantity"]
    assert (ce["ce_price_low"], ce["ce_price_high"]) == (
        reported["price_low"],
        reported["price_high"],
    )


def test_a_real_negotiation_run_matches_the_desk(tmp_path: Path) -> None:
    summary, rec = _run("bilateral_haggle", tmp_path)
    assert summary.negotiation is not None
    assert agreement_rate(rec) == pytest.approx(summary.negotiation["agreement_rate"])
    assert len(rec.contracts) == summary.negotiation["contracts"]
    assert len(rounds_to_agreement(rec)) == summary.negotiation["agreements"]
    assert (surplus_split(rec)["joint_gain"] > 0).all()
