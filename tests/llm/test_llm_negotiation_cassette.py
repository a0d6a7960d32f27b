"""LLM agents haggling over a car through litellm's HTTP path, replayed from a cassette.

The fake server plays a simple negotiator from the prompt text (so the whole prompt -> tool call
-> validation -> protocol -> contract -> ledger path runs); re-record with
``MESA_LLM_RECORD_CASSETTES=1``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mesa_llm.model import MarketModel
from mesa_llm.scenario import load_scenario
from tests.llm_cassettes import DUMMY_API_KEY, use_cassette

pytestmark = pytest.mark.usefixtures("no_network")  # replays and cassettes must not connect

ME = re.compile(r"You are agent (\d+)")
SESSION = re.compile(r"- (N\d+): alternating offers for car; you are the (buyer|seller), with agent \d+; round (\d+) of")
MY_TURN = "; your turn."
OFFER = re.compile(r"offer #(\d+) by agent (\d+) \(round \d+\): (\{[^\n]*\})")


def haggler(request: dict[str, Any]) -> dict[str, Any]:
    """Sellers start at 12000 and come down 500 a round, buyers start at 6000 and go up 500;
    each accepts the other's offer once it is within its limit (buyer 9000, seller 8500)."""
    text = "\n".join(m.get("content") or "" for m in request["messages"] if m["role"] == "user")
    me, session = ME.search(text), SESSION.search(text)
    if not request.get("tools") or me is None or session is None or MY_TURN not in text:
        return {"content": None, "tool_calls": [{"name": "wait", "arguments": "{}"}]}
    session_id, role, round_ = session.group(1), session.group(2), int(session.group(3)) - 1  # shown from 1
    theirs = [(int(i), int(a), json.loads(t)) for i, a, t in OFFER.findall(text) if a != me.group(1)]
    if theirs:
        offer_id, other, terms = theirs[-1]
        good_enough = terms["price"] <= 9000 if role == "buyer" else terms["price"] >= 8500
        if good_enough:
            return {"content": None, "tool_calls": [{"name": "accept_offer", "arguments": json.dumps({"session_id": session_id, "offer_id": offer_id})}]}
    price = 6000 + 500 * round_ if role == "buyer" else 12000 - 500 * round_
    calls = [{"name": "make_offer", "arguments": json.dumps({"session_id": session_id, "terms": {"price": price}})}]
    if theirs:
        note = "That is too much for this car." if role == "buyer" else "This car is worth more than that."
        calls.append({"name": "send_message", "arguments": json.dumps({"recipient_id": theirs[-1][1], "text": note})})
    return {"content": None, "tool_calls": calls}


def test_llm_bilateral_haggle_records_offers_messages_and_agreement(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_API_KEY)
    spec = load_scenario("bilateral_haggle", overrides=["steps=8", "populations.0.count=1", "populations.1.count=1"])
    with use_cassette("bilateral_haggle_llm", responder=haggler) as session:
        spec.llm = spec.llm.model_copy(update={"api_base": session.api_base, "max_attempts": 1})
        model = MarketModel(spec, output_dir=tmp_path, llm_model="openai/fake-model")
        cash0 = model.exchange.ledger.total_cash()
        model.run()
    assert DUMMY_API_KEY not in model.recording_path.read_text()
    events = [json.loads(line) for line in model.recording_path.read_text().splitlines()]
    assert not [e for e in events if e["event_type"] in ("agent_error", "action_rejected")]
    calls = [e["content"] for e in events if e["event_type"] == "llm_call"]
    assert calls and all(c["error"] is None for c in calls)
    offers = [e for e in events if e["event_type"] == "offer"]
    assert len(offers) >= 3 and {e["agent_id"] for e in offers} == {a.unique_id for a in model.llm_agents}
    assert all(set(e["content"]) >= {"session_id", "parties", "terms", "offer_id"} for e in offers)
    messages = [e["content"] for e in events if e["event_type"] == "message"]
    assert messages and all(m["channel"] == "direct" and len(m["recipient_ids"]) == 1 for m in messages)
    agreement = [e["content"] for e in events if e["event_type"] == "agreement"]
    assert len(agreement) == 1 and 8500 <= agreement[0]["terms"]["price"] <= 9000
    contract = [e["content"] for e in events if e["event_type"] == "contract" and e["content"]["stage"] == "settled"]
    assert contract and contract[0]["status"] == "fulfilled"
    buyer = model.populations["buyers"][0]
    assert model.exchange.ledger.account(buyer.unique_id).holdings["car"] == 1
    assert model.exchange.ledger.total_cash() == cash0
    model.exchange.ledger.check_invariants()
