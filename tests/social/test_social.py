"""Tests of the social layer: mailbox delivery and gossip, alliances, reputation, surveillance."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesa_llm.social import (
    COLLUSION_PATTERNS,
    AllianceError,
    AllianceRegistry,
    Mailbox,
    Message,
    Reputation,
    repeated_pair_share,
    suspicious_messages,
    wash_trades,
)

EVERYONE = [1, 2, 3, 4]

# -- mailbox ---------------------------------------------------------------------------------


def test_direct_message_is_delivered_next_step_to_recipients_only() -> None:
    box = Mailbox()
    sent = box.send(1, "alice", [2, 3], "hello", "direct", step=0)
    assert box.sent_this_step() == [sent]
    assert box.received(2) == []  # nothing seen during the step it was sent

    inbox = box.deliver()
    assert set(inbox) == {2, 3}
    assert inbox[2] == [sent] and inbox[3] == [sent]
    assert box.received(2) == [sent] and box.received(1) == [] and box.received(4) == []
    assert box.sent_this_step() == []
    assert box.deliver() == {}  # delivered once only


def test_delivery_keeps_send_order_and_drops_sender_and_duplicates() -> None:
    box = Mailbox()
    first = box.send(1, "alice", [2, 2, 1], "one", "direct", step=0)
    second = box.send(3, "carol", [2], "two", "direct", step=0)
    assert first.recipient_ids == [2]
    assert box.deliver()[2] == [first, second]
    with pytest.raises(ValueError, match="no recipient"):
        box.send(1, "alice", [1], "to myself", "direct", step=1)
    with pytest.raises(ValueError, match="non-empty"):
        box.send(1, "alice", [2], "   ", "direct", step=1)


def test_message_ids_are_unique_and_increasing() -> None:
    box = Mailbox()
    ids = [box.send(1, "a", [2], f"m{i}", "direct", step=0).message_id for i in range(5)]
    assert ids == sorted(set(ids))


def test_broadcast_reaches_everyone_but_the_sender_and_records_no_recipients() -> None:
    box = Mailbox()
    message = box.broadcast(2, "bob", EVERYONE, "market opens", step=3)
    inbox = box.deliver()
    assert set(inbox) == {1, 3, 4}
    assert message.channel == "broadcast"
    record = message.record()
    assert record["recipient_ids"] == [] and record["text"] == "market opens"
    assert record["channel"] == "broadcast" and record["forwarded_from"] is None
    json.dumps(record)


def test_view_shows_what_a_recipient_needs() -> None:
    box = Mailbox()
    message = box.send(1, "alice", [2], "hi", "direct", step=4)
    view = message.view()
    assert view == {
        "message_id": message.message_id,
        "sender_id": 1,
        "sender": "alice",
        "text": "hi",
        "channel": "direct",
        "step": 4,
    }


def test_forward_only_what_was_received_or_sent() -> None:
    box = Mailbox()
    original = box.send(1, "alice", [2], "seller 3 is out of stock", "direct", step=0)
    # bob has not received it yet (it is delivered at the next step)
    with pytest.raises(ValueError, match="received or sent"):
        box.forward(2, "bob", original.message_id, [3], step=0)
    box.deliver()
    # carol never received it
    with pytest.raises(ValueError, match="received or sent"):
        box.forward(3, "carol", original.message_id, [4], step=1)
    with pytest.raises(KeyError, match="no message"):
        box.forward(2, "bob", 999, [3], step=1)
    # the author may forward their own message
    own = box.forward(1, "alice", original.message_id, [4], step=1)
    assert own.forwarded_from == original.message_id


def test_forward_is_marked_and_quotes_the_original_intact() -> None:
    box = Mailbox()
    original = box.send(1, "alice", [2], "I can sell at 95.\nOnly today.", "direct", step=0)
    box.deliver()
    plain = box.forward(2, "bob", original.message_id, [3], step=1)
    commented = box.forward(2, "bob", original.message_id, [3, 4], step=1, comment="look at this")
    assert plain.text == original.text
    assert commented.text.startswith("look at this")
    assert original.text in commented.text
    for forward in (plain, commented):
        assert forward.forwarded_from == original.message_id
        assert forward.original_sender == "alice"
        assert forward.sender == "bob" and forward.sender_id == 2
    box.deliver()
    seen = box.received(3)[0].view()
    assert seen["sender"] == "bob"
    assert seen["forwarded"] == {"message_id": original.message_id, "original_sender": "alice"}
    record = commented.record()
    assert record["forwarded_from"] == original.message_id
    assert record["original_sender"] == "alice"
    assert record["recipient_ids"] == [3, 4]
    # and carol can pass the gossip on in turn
    again = box.forward(3, "carol", plain.message_id, [4], step=2)
    assert again.forwarded_from == plain.message_id and again.original_sender == "bob"
    assert original.text in again.text


def test_received_history_is_bounded() -> None:
    box = Mailbox(keep_per_agent=3)
    sent = [box.send(1, "alice", [2], f"m{i}", "direct", step=i) for i in range(5)]
    box.deliver()
    assert box.received(2) == sent[-3:]
    # what dropped out of the history can no longer be forwarded
    with pytest.raises(ValueError):
        box.forward(2, "bob", sent[0].message_id, [3], step=5)
    with pytest.raises(ValueError):
        Mailbox(keep_per_agent=0)


# -- alliances -------------------------------------------------------------------------------


def test_alliance_lifecycle_records_events_in_order() -> None:
    reg = AllianceRegistry()
    created = reg.propose(1, "north", [2, 3], step=0)
    assert [(e["action"], e["agent_id"]) for e in created] == [
        ("created", 1),
        ("invited", 2),
        ("invited", 3),
    ]
    assert reg.members("north") == {1}
    assert reg.invitations_of(2) == ["north"]
    assert reg.channel("north") == "alliance:north"

    assert reg.join(2, "north", step=1) == [
        {"alliance": "north", "action": "joined", "agent_id": 2, "step": 1}
    ]
    assert reg.members("north") == {1, 2}
    assert reg.alliances_of(2) == ["north"] and reg.invitations_of(2) == []
    assert reg.view(2) == {"member_of": [{"name": "north", "members": [1, 2]}], "invited_to": []}
    assert reg.view(3) == {"member_of": [], "invited_to": ["north"]}

    reg.leave(1, "north", step=2)
    last = reg.leave(2, "north", step=3)
    assert [e["action"] for e in last] == ["left", "dissolved"]
    assert reg.alliances_of(2) == [] and reg.invitations_of(3) == []
    with pytest.raises(AllianceError, match="no alliance named 'north'"):
        reg.members("north")
    assert reg.dissolved[0].dissolved_step == 3

    actions = [(e["action"], e["agent_id"], e["step"]) for e in reg.history]
    assert actions == [
        ("created", 1, 0),
        ("invited", 2, 0),
        ("invited", 3, 0),
        ("joined", 2, 1),
        ("left", 1, 2),
        ("left", 2, 3),
        ("dissolved", 2, 3),
    ]
    json.dumps(reg.history)
    # a dissolved name is free again
    reg.propose(4, "north", [], step=4)
    assert reg.members("north") == {4}


def test_alliance_rules_give_readable_reasons() -> None:
    reg = AllianceRegistry()
    reg.propose(1, "north", [2], step=0)
    with pytest.raises(AllianceError, match="already exists"):
        reg.propose(3, "north", [], step=0)
    with pytest.raises(AllianceError, match="not invited to 'north'"):
        reg.join(3, "north", step=1)
    with pytest.raises(AllianceError, match="already a member of 'north'"):
        reg.join(1, "north", step=1)
    with pytest.raises(AllianceError, match="no alliance named 'south'"):
        reg.join(2, "south", step=1)
    with pytest.raises(AllianceError, match="not a member"):
        reg.leave(2, "north", step=1)
    with pytest.raises(AllianceError, match="non-empty name"):
        reg.propose(1, "  ", [], step=1)
    # members may invite more; outsiders may not
    assert [e["agent_id"] for e in reg.invite(1, "north", [3, 2, 1], step=2)] == [3]
    with pytest.raises(AllianceError, match="not a member"):
        reg.invite(4, "north", [5], step=2)


def test_alliance_channel_reaches_members_only() -> None:
    reg = AllianceRegistry()
    reg.propose(1, "north", [2, 3], step=0)
    reg.join(2, "north", step=0)  # 3 is invited but not a member
    box = Mailbox()
    message = box.send(
        1, "alice", sorted(reg.members("north")), "hold at 110", reg.channel("north"), step=1
    )
    inbox = box.deliver()
    assert set(inbox) == {2}
    assert message.channel == "alliance:north"


# -- reputation ------------------------------------------------------------------------------


def test_reputation_moves_in_the_right_direction() -> None:
    rep = Reputation()
    for agent in (1, 2, 3, 4):
        rep.register(agent)
    assert rep.score(1) == 0.5
    up = rep.contract_fulfilled(1, step=1)
    assert up["after"] > up["before"] and up["reason"] == "contract_fulfilled"
    assert set(up) == {"agent_id", "reason", "before", "after", "step"}
    for update in (rep.contract_breached, rep.fined, rep.flagged):
        change = update(2, 1)
        assert change["after"] < change["before"]
    assert rep.score(2) < rep.score(3) < rep.score(1)
    json.dumps(up)
    rep.register(1)  # registering again keeps the score
    assert rep.score(1) > 0.5


@given(
    st.floats(0, 1),
    st.lists(st.sampled_from(["fulfilled", "breached", "fined", "flagged"]), max_size=200),
)
def test_reputation_stays_in_unit_interval(initial: float, updates: list[str]) -> None:
    rep = Reputation(initial=initial, fulfilled_gain=1.0, breach_loss=0.9)
    apply = {
        "fulfilled": rep.contract_fulfilled,
        "breached": rep.contract_breached,
        "fined": rep.fined,
        "flagged": rep.flagged,
    }
    for step, name in enumerate(updates):
        change = apply[name](7, step)
        assert 0.0 <= change["after"] <= 1.0
        assert 0.0 <= rep.score(7) <= 1.0


def test_reputation_table_limit_picks_extremes() -> None:
    rep = Reputation()
    for agent in range(10):
        rep.register(agent)
    for _ in range(3):
        rep.contract_breached(4, 0)
        rep.contract_fulfilled(8, 0)
    rep.fined(6, 0)
    rep.contract_fulfilled(2, 0)
    table = rep.table(limit=4)
    assert list(table) == [4, 6, 2, 8]  # two lowest, then two highest, low to high
    assert all(v == round(v, 3) for v in table.values())
    assert list(rep.table()) == list(range(10))
    assert rep.table([8, 4]) == {8: round(rep.score(8), 3), 4: round(rep.score(4), 3)}
    assert len(rep.table(limit=3)) == 3 and list(rep.table(limit=3))[:2] == [4, 6]
    assert rep.table(limit=0) == {}
    with pytest.raises(ValueError):
        Reputation(initial=1.5)


# -- surveillance ----------------------------------------------------------------------------


def _msg(text: str, message_id: int = 1) -> Message:
    return Message(message_id, 1, "alice", text, "direct", 0, [2])


@pytest.mark.parametrize(
    "text",
    [
        "Let's fix the price at 120 for everyone.",
        "We should keep prices high this week",
        "Don't sell below 110, ok?",
        "Join our cartel",
        "How about we split the market: you take energy, I take data",
        "All sellers should agree on a price of 130",
        "Let's agree on a common price.",
        "We won't undercut each other",
        "PLEASE DO NOT UNDERCUT ME",
    ],
)
def test_collusion_talk_is_flagged(text: str) -> None:
    assert len(suspicious_messages([_msg(text)])) == 1


@pytest.mark.parametrize(
    "text",
    [
        "I will buy at 101",
        "selling 3 units",
        "Can we agree on a price for 5 units? I offer 98.",
        "Prices went up yesterday, I sold at 104",
        "I accept your offer of 100",
        "I never sell below my cost",
        "I won't sell below 90",
    ],
)
def test_ordinary_trading_talk_is_not_flagged(text: str) -> None:
    assert suspicious_messages([_msg(text)]) == []


def test_suspicious_messages_names_pattern_and_catches_forwards() -> None:
    box = Mailbox()
    original = box.send(1, "alice", [2], "let's keep prices up", "direct", step=0)
    box.deliver()
    forward = box.forward(2, "bob", original.message_id, [3], step=1, comment="fyi")
    innocent = box.send(2, "bob", [3], "buying 2 at 99", "direct", step=1)
    found = suspicious_messages([original, forward, innocent])
    assert [m for m, _ in found] == [original, forward]
    assert all(pattern in COLLUSION_PATTERNS for _, pattern in found)


def test_wash_trades_are_found() -> None:
    trades = [
        {"good": "w", "price": 1.0, "quantity": 2, "buyer_id": 1, "seller_id": 2},
        {"good": "w", "price": 1.0, "quantity": 1, "buyer_id": 3, "seller_id": 3},
    ]
    assert wash_trades(trades) == [trades[1]]
    assert wash_trades([]) == []


def test_repeated_pair_is_found() -> None:
    ring = [{"buyer_id": 1, "seller_id": 2, "quantity": 1} for _ in range(3)]
    ring += [{"buyer_id": 2, "seller_id": 1, "quantity": 2} for _ in range(3)]
    others = [
        {"buyer_id": 3, "seller_id": 4, "quantity": 1},
        {"buyer_id": 5, "seller_id": 6, "quantity": 1},
    ]
    (pair,) = repeated_pair_share(ring + others)
    assert pair[:2] == (1, 2) and pair[2] == pytest.approx(9 / 11)
    # too few trades, or no dominant pair: nothing
    assert repeated_pair_share(ring[:2] + others) == []
    spread = [{"buyer_id": b, "seller_id": b + 10, "quantity": 1} for b in range(10)]
    assert repeated_pair_share(spread * 5) == []
    assert repeated_pair_share([]) == []
