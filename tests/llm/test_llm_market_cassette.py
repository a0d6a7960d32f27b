"""A whole market step with LLM agents through litellm's real HTTP path, replayed from a cassette.

The cassette was recorded against ``tests/fake_openai_server.py`` (re-record with
``MESA_LLM_RECORD_CASSETTES=1``); replay starts no server and blocks the network.
"""

from __future__ import annotations

import json

import pytest

from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.llm_cassettes import DUMMY_API_KEY, use_cassette
from tests.support.chat_scripts import trader

pytestmark = pytest.mark.usefixtures("no_network")  # replays and cassettes must not connect


def test_llm_market_replays_from_cassette(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_API_KEY)
    spec = load_scenario(
        "llm_double_auction",
        overrides=["steps=3", "populations.0.count=1", "populations.1.count=1", "populations.0.params.plan_every=2", "populations.1.params.plan_every=2"],
    )
    with use_cassette("llm_double_auction_market", responder=trader) as session:
        spec.llm = spec.llm.model_copy(update={"api_base": session.api_base, "max_attempts": 1})
        model = MarketModel(spec, output_dir=tmp_path, llm_model="openai/fake-model")
        model.run()
        # the tool-mode probe; 2 agents x (3 acts + plans at steps 1 and 3)
        assert session.recorded_requests == 1 + 10  # the tool-mode probe, then the agents
    text = model.recording_path.read_text()
    assert DUMMY_API_KEY not in text
    events = [json.loads(line) for line in text.splitlines()]
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert len(calls) == 10 and all(c["error"] is None for c in calls)
    assert {c["purpose"] for c in calls} == {"plan", "act"}
    assert all(c["usage"]["prompt_tokens"] > 0 for c in calls)
    llm_ids = {a.unique_id for a in model.llm_agents}
    orders = [e["content"] for e in events if e["event_type"] == "order" and e["agent_id"] in llm_ids]
    assert len(orders) >= 4 and {o["side"] for o in orders} == {"buy", "sell"}
    assert any(e["event_type"] == "plan" for e in events)
    model.exchange.ledger.check_invariants()
