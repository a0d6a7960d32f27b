"""Messages the world refuses: to oneself, to nobody, with no text. Each is the sender's rejected
action with a reason (seen at its next step); none crashes the step or reaches the mailbox."""

from __future__ import annotations

from typing import Any

import pytest

from mesa_llm.actions import (
    Broadcast,
    ForwardMessage,
    MessageAlliance,
    ProposeAlliance,
    SendMessage,
)
from mesa_llm.model import MarketModel
from tests.support.scripted import Scripted, scripted_model
from tests.support.scripted import events as _events


def _social_model(small_auction: dict[str, Any], tmp_path: Any) -> MarketModel:
    small_auction["social"] = {"alliances": True, "gossip": True}
    return scripted_model(small_auction, tmp_path, {})


def _rejections(model: MarketModel, agent_id: int) -> list[dict[str, Any]]:
    return [e["content"] for e in _events(model) if e["event_type"] == "action_rejected" and e["agent_id"] == agent_id]


def _messages(model: MarketModel, agent_id: int) -> list[dict[str, Any]]:
    return [e["content"] for e in _events(model) if e["event_type"] == "message" and e["agent_id"] == agent_id]


def test_a_message_to_oneself_is_rejected_with_a_reason_the_agent_sees(small_auction, tmp_path):
    model = _social_model(small_auction, tmp_path)
    me = model.populations["scripted"][0].unique_id
    Scripted.script = {1: [SendMessage(recipient_id=me, text="note to self")]}
    model.step()
    model.step()  # the step went through; the agent sees why at the next one
    rejected = _rejections(model, me)
    assert [r["type"] for r in rejected] == ["send_message"]
    assert "yourself" in rejected[0]["reason"]
    assert _messages(model, me) == []
    assert not any(e["event_type"] == "action" and e["agent_id"] == me for e in _events(model))
    step2 = [o for o in Scripted.seen if o.step == 2][0]
    assert [r["reason"] for r in step2.rejections] == [rejected[0]["reason"]]
    assert model.mailbox.deliver() == {}


def test_forwarding_to_oneself_is_rejected_as_a_message_to_oneself(small_auction, tmp_path):
    model = _social_model(small_auction, tmp_path)
    me = model.populations["scripted"][0].unique_id
    other = next(a.unique_id for a in model.traders if a.unique_id != me)
    Scripted.script = {
        1: [SendMessage(recipient_id=other, text="hello")],
        2: [ForwardMessage(message_id=1, recipient_ids=[me])],
    }
    model.step()
    model.step()
    rejected = _rejections(model, me)
    assert [r["type"] for r in rejected] == ["forward_message"] and "yourself" in rejected[0]["reason"]
    assert len(_messages(model, me)) == 1  # only the original


def test_messaging_an_alliance_with_no_other_member_is_rejected(small_auction, tmp_path):
    model = _social_model(small_auction, tmp_path)
    me = model.populations["scripted"][0].unique_id
    other = next(a.unique_id for a in model.traders if a.unique_id != me)
    # the invitee never joins: the proposer is the alliance's only member
    Scripted.script = {
        1: [ProposeAlliance(name="solo", invitee_ids=[other])],
        2: [MessageAlliance(name="solo", text="anyone?")],
    }
    model.step()
    model.step()
    assert me in model.alliances.members("solo") and len(model.alliances.members("solo")) == 1
    rejected = _rejections(model, me)
    assert [r["type"] for r in rejected] == ["message_alliance"]
    assert "only member" in rejected[0]["reason"] and "yourself" in rejected[0]["reason"]
    assert _messages(model, me) == []
    assert not any(
        e["event_type"] == "action" and e["content"]["type"] == "message_alliance" for e in _events(model)
    )


@pytest.mark.parametrize(
    "make",
    [lambda other: Broadcast(text="   "), lambda other: SendMessage(recipient_id=other, text=" \n ")],
    ids=["broadcast", "send_message"],
)
def test_a_blank_message_is_rejected_not_a_crash(small_auction, tmp_path, make):
    model = _social_model(small_auction, tmp_path)
    me = model.populations["scripted"][0].unique_id
    other = next(a.unique_id for a in model.traders if a.unique_id != me)
    action = make(other)
    Scripted.script = {1: [action]}
    model.step()  # the mailbox refuses the text: before, its ValueError escaped the step
    rejected = _rejections(model, me)
    assert [r["type"] for r in rejected] == [action.tool_name]
    assert "non-empty text" in rejected[0]["reason"]
    assert _messages(model, me) == []
    assert model.steps == 1 and model.running
