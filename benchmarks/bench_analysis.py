"""Benchmark of loading a large recording into DataFrames and computing its metrics.

Run ``python benchmarks/bench_analysis.py [N_EVENTS]`` (default 1,000,000). It writes a synthetic
recording of about N events with the real `SimulationRecorder` (so the lines are exactly the
recorder's) into a temporary folder, then times, in the same process:

* load: `load_recording` plus the events table and every table a report needs (trades,
  clearings, llm_calls, contracts, agent_states, messages, actions, rejections) -- budget 5 s for
  a million events;
* metrics: `summary_metrics` on the loaded recording.

The recording is a market like the shipped double auction, step after step: 20 buyers with
induced values and 20 sellers with costs; each step every agent observes (an observation like the
model's, about 1 kB), acts and places an order; the call auction clears once (a clearing event)
and a few units trade; a couple of messages, an LLM call and a rejected action; agent states every
tenth step. Observations, actions and orders are most of the events, as in real runs.
``run(n_events)`` returns the numbers as a dict (used by the tests with a small n).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    from mesa_llm.analysis import load_recording, summary_metrics
    from mesa_llm.recording import SimulationRecorder
except ModuleNotFoundError:  # run from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mesa_llm.analysis import load_recording, summary_metrics
    from mesa_llm.recording import SimulationRecorder

BUYERS = 20
SELLERS = 20
UNITS = 10
GOOD = "widget"
LOAD_BUDGET_S = 5.0
REPORT_TABLES = (
    "trades",
    "clearings",
    "llm_calls",
    "contracts",
    "agent_states",
    "messages",
    "actions",
    "rejections",
)


class _Clock:
    """What the recorder reads of a model: the current step, the horizon, the agents."""

    def __init__(self, steps: int, agents: int) -> None:
        self.steps = 0
        self.max_steps = steps
        self.agents = list(range(agents))


def _header(rng: random.Random, steps: int) -> tuple[dict[str, Any], dict[int, list[float]]]:
    agents = []
    schedules: dict[int, list[float]] = {}
    for i in range(BUYERS + SELLERS):
        agent_id = i + 1
        buyer = i < BUYERS
        units = sorted((round(rng.uniform(60, 160), 2) for _ in range(UNITS)), reverse=buyer)
        schedules[agent_id] = units
        agents.append(
            {
                "agent_id": agent_id,
                "name": f"{'buyers' if buyer else 'sellers'}_{i % BUYERS}",
                "role": "buyer" if buyer else "seller",
                "population": "buyers" if buyer else "sellers",
                "policy": "zi_c",
                "policy_params": {"quantity": 1},
                "model": None,
                "private": {
                    GOOD: {
                        "values": units if buyer else [],
                        "costs": [] if buyer else units,
                        "fundamental": None,
                    }
                },
                "endowment": {
                    "cash": 1000.0 if buyer else 0.0,
                    "holdings": {GOOD: 0 if buyer else UNITS},
                },
                "utilities": {},
            }
        )
    header = {
        "scenario": {"name": "bench_market", "spec": {"name": "bench_market", "steps": steps}},
        "seed": 1,
        "steps": steps,
        "tick_size": 0.01,
        "versions": {"mesa_llm": "bench"},
        "goods": {GOOD: {"reference_price": 100.0, "min_price": 1.0, "max_price": 200.0}},
        "competitive_equilibrium": {},
        "agents": agents,
        "llm": {"settings": {}, "models": {}, "prompts": {}},
        "negotiation": {"spaces": {}},
        "rules": {},
    }
    return header, schedules


def _observation(
    agent_id: int, step: int, steps: int, units: list[float], history: list[float]
) -> dict[str, Any]:
    buyer = agent_id <= BUYERS
    last = history[-1] if history else None
    return {
        "step": step,
        "horizon": steps,
        "agent_id": agent_id,
        "name": f"agent_{agent_id}",
        "role": "buyer" if buyer else "seller",
        "tick_size": 0.01,
        "account": {
            "cash": 1000.0,
            "holdings": {GOOD: 3},
            "reserved_cash": 0.0,
            "reserved_goods": {},
            "available_cash": 1000.0,
            "available_goods": {GOOD: 3},
        },
        "private": {
            GOOD: {
                "values": units[:4] if buyer else [],
                "values_left": len(units) if buyer else 0,
                "costs": [] if buyer else units[:4],
                "costs_left": 0 if buyer else len(units),
                "fundamental": None,
            }
        },
        "market": {
            GOOD: {
                "good": GOOD,
                "reference_price": 100.0,
                "min_price": 1.0,
                "max_price": 200.0,
                "last_price": last,
                "last_volume": 2,
                "price_low": last,
                "price_high": last,
                "excess_demand": 0,
                "excess_supply": 1,
                "price_history": history[-10:],
            }
        },
        "open_orders": [],
        "recent_trades": [
            {"step": step - 1, "good": GOOD, "side": "buy", "price": last, "quantity": 1}
        ]
        if last
        else [],
        "messages": [],
        "rejections": [],
        "available_actions": ["place_order", "send_message", "broadcast", "wait"],
        "negotiations": [],
        "contracts": [],
        "reputation": {},
        "alliances": {},
        "surveillance": None,
        "suspended_until": None,
    }


def write_recording(folder: Path, n_events: int, seed: int = 7) -> Path:
    """Write a synthetic market recording of about `n_events` events; return its path."""
    rng = random.Random(seed)
    per_step = 3.3 * (BUYERS + SELLERS) + 8  # observations, actions, orders, and the rest
    steps = max(round(n_events / per_step), 1)
    clock = _Clock(steps, BUYERS + SELLERS)
    recorder = SimulationRecorder(
        clock,
        output_dir=folder,
        simulation_id="bench",
        run_name="bench_market",
        keep_in_memory=False,
    )
    written = 0

    def record(event_type: str, content: dict[str, Any], agent_id: int | None = None) -> None:
        nonlocal written
        recorder.record_event(event_type, content, agent_id, as_given=True)
        written += 1

    header, schedules = _header(rng, steps)
    recorder.record_model_event("simulation_start", header)
    history: list[float] = []
    order_id = 0
    message_id = 0
    agent_ids = list(range(1, BUYERS + SELLERS + 1))
    while written < n_events - 2:
        clock.steps += 1
        step = clock.steps
        record("step_start", {"step": step})
        for agent_id in agent_ids:
            record(
                "observation",
                _observation(agent_id, step, steps, schedules[agent_id], history),
                agent_id,
            )
        orders = []
        for agent_id in agent_ids:
            buyer = agent_id <= BUYERS
            side = "buy" if buyer else "sell"
            price = round(rng.uniform(80, 110) if buyer else rng.uniform(95, 125), 2)
            arguments = {
                "good": GOOD,
                "side": side,
                "price": price,
                "quantity": 1,
                "lifetime": "step",
            }
            record("action", {"type": "place_order", "arguments": arguments}, agent_id)
            order_id += 1
            record(
                "order",
                {
                    "order_id": order_id,
                    "side": side,
                    "good": GOOD,
                    "price": price,
                    "quantity": 1,
                    "lifetime": "step",
                },
                agent_id,
            )
            orders.append((agent_id, order_id, price))
        if step % 3 == 0:
            agent_id = rng.choice(agent_ids)
            record(
                "llm_call",
                {
                    "model": "openai/gpt-4o-mini",
                    "purpose": "act",
                    "request_hash": f"{step:064x}",
                    "request": {
                        "messages": [{"role": "user", "content": f"Step {step}: decide."}],
                        "tools": [],
                    },
                    "response": {
                        "content": None,
                        "tool_calls": [{"id": "call_0", "name": "wait", "arguments": "{}"}],
                    },
                    "parsed_tool_calls": [{"id": "call_0", "name": "wait", "valid": True}],
                    "usage": {"prompt_tokens": 900, "completion_tokens": 40},
                    "cost_usd": 0.00016,
                    "latency_s": 0.8,
                    "attempts": 1,
                    "cached": False,
                    "error": None,
                    "error_kind": None,
                },
                agent_id,
            )
            record(
                "action_rejected",
                {"type": "place_order", "arguments": {"good": GOOD, "side": "buy", "price": 999.0, "quantity": 1},
                 "reason": "price 999.0 outside the admissible range [1.0, 200.0]"},
                agent_id,
            )  # fmt: skip
        for _ in range(2):
            message_id += 1
            sender, recipient = rng.sample(agent_ids, 2)
            record(
                "message",
                {"message_id": message_id, "sender": f"agent_{sender}", "recipient_ids": [] if message_id % 4 == 0 else [recipient],
                 "text": "I can sell at 104", "channel": "broadcast" if message_id % 4 == 0 else "direct",
                 "forwarded_from": None, "original_sender": None},
                sender,
            )  # fmt: skip
        volume = rng.randint(1, 6)
        price = round(rng.uniform(95, 110), 2)
        history.append(price)
        record(
            "clearing",
            {"good": GOOD, "price": price, "volume": volume, "price_range": [price - 0.5, price + 0.5],
             "excess_demand": 0, "excess_supply": 1, "buy_orders": BUYERS, "sell_orders": SELLERS},
        )  # fmt: skip
        for _ in range(volume):
            buyer_id = rng.randint(1, BUYERS)
            seller_id = rng.randint(BUYERS + 1, BUYERS + SELLERS)
            record(
                "trade",
                {"good": GOOD, "price": price, "quantity": 1, "buyer_id": buyer_id, "seller_id": seller_id,
                 "buy_order_id": orders[buyer_id - 1][1], "sell_order_id": orders[seller_id - 1][1]},
            )  # fmt: skip
        if step % 10 == 0 or step == steps:
            for agent_id in agent_ids:
                record(
                    "agent_state",
                    {"cash": 1000.0, "holdings": {GOOD: 3}, "reserved_cash": 0.0, "units_bought": {GOOD: 2},
                     "units_sold": {}, "surplus": round(rng.uniform(-20, 80), 2), "wealth": round(rng.uniform(900, 1300), 2)},
                    agent_id,
                )  # fmt: skip
        record("step_end", {"step": step, "trades": volume, "volume": volume})
        recorder.flush()
    recorder.record_simulation_end("completed")
    recorder.close()
    assert recorder.jsonl_path is not None
    return recorder.jsonl_path


def run(n_events: int = 1_000_000, folder: str | Path | None = None) -> dict[str, Any]:
    """Write a recording of about `n_events` events and time loading it and its metrics.

    Returns events, file_mb, write_s, load_s (load_recording + events + the report's tables),
    load_recording_s, table_s (seconds per table), metrics_s, allocative_efficiency and rows
    (the row count of each table).
    """
    with tempfile.TemporaryDirectory(prefix="bench_analysis_") as tmp:
        root = Path(folder) if folder is not None else Path(tmp)
        start = time.perf_counter()
        path = write_recording(root, n_events)
        with open(path, "rb") as f:  # let the OS write the file out before the clock starts
            os.fsync(f.fileno())
        write_s = time.perf_counter() - start
        gc.collect()
        start = time.perf_counter()
        rec = load_recording(path)
        load_recording_s = time.perf_counter() - start
        rows: dict[str, int] = {}
        table_s: dict[str, float] = {}
        for name in ("events", *REPORT_TABLES):
            begin = time.perf_counter()
            rows[name] = len(getattr(rec, name))
            table_s[name] = time.perf_counter() - begin
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        metrics = summary_metrics(rec)
        metrics_s = time.perf_counter() - start
        return {
            "events": len(rec),
            "file_mb": path.stat().st_size / 1e6,
            "write_s": write_s,
            "load_recording_s": load_recording_s,
            "load_s": load_s,
            "metrics_s": metrics_s,
            "table_s": table_s,
            "allocative_efficiency": metrics["allocative_efficiency"],
            "rows": rows,
        }


def main(argv: list[str]) -> None:
    """Print the timings for the size given on the command line (default 1,000,000 events)."""
    n = int(argv[1].replace("_", "")) if len(argv) > 1 else 1_000_000
    result = run(n)
    print(
        f"recording: {result['events']:,} events, {result['file_mb']:.0f} MB (written in {result['write_s']:.1f} s)"
    )
    print(f"load_recording: {result['load_recording_s']:.2f} s")
    verdict = "within" if result["load_s"] <= LOAD_BUDGET_S else "OVER"
    print(
        f"load + events + report tables: {result['load_s']:.2f} s ({verdict} the {LOAD_BUDGET_S:.0f} s budget)"
    )
    print("  of which " + ", ".join(f"{k} {v:.2f} s" for k, v in result["table_s"].items()))
    print(f"summary_metrics: {result['metrics_s']:.2f} s")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in result["rows"].items()))


if __name__ == "__main__":
    main(sys.argv)
