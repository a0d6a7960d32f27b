"""Mailbox owns messages between agents: queued when sent, delivered at the next step, forwardable.

Moves are simultaneous (see docs/architecture/step.md), so a message sent during step ``t`` is only seen at
step ``t + 1``: :meth:`Mailbox.deliver` is called once at the start of each step. Each agent's
received history is bounded so memory and prompt size do not grow with the number of steps;
that history is also what an agent may forward (gossip).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BROADCAST", "DIRECT", "Mailbox", "Message"]

DIRECT = "direct"
BROADCAST = "broadcast"


@dataclass(slots=True)
class Message:
    """One message as sent; a forward (gossip) names the message it quotes and that one's author."""

    message_id: int
    sender_id: int
    sender: str  # the sender's name
    text: str
    # "direct" | "broadcast" | "alliance:<name>" | "negotiation:<session_id>"
    channel: str
    step: int  # the step it was sent in (it is delivered at the next)
    recipient_ids: list[int]  # empty for a broadcast
    forwarded_from: int | None = None  # id of the message this one forwards
    original_sender: str | None = None  # name of the author of that message

    @property
    def is_forward(self) -> bool:
        """True when this message forwards another one."""
        return self.forwarded_from is not None

    def view(self) -> dict[str, Any]:
        """What a recipient sees (JSON-ready); forwards are marked as such."""
        seen: dict[str, Any] = {
            "message_id": self.message_id,
            "sender_id": self.sender_id,
            "sender": self.sender,
            "text": self.text,
            "channel": self.channel,
            "step": self.step,
        }
        if self.forwarded_from is not None:
            seen["forwarded"] = {
                "message_id": self.forwarded_from,
                "original_sender": self.original_sender,
            }
        return seen

    def record(self) -> dict[str, Any]:
        """Content of the recording's ``message`` event (empty ``recipient_ids`` = broadcast)."""
        return {
            "message_id": self.message_id,
            "sender": self.sender,
            "recipient_ids": list(self.recipient_ids),
            "text": self.text,
            "channel": self.channel,
            "forwarded_from": self.forwarded_from,
            "original_sender": self.original_sender,
        }


class Mailbox:
    """Queues messages sent this step and delivers them at the next; remembers what each agent received (bounded) so it can be forwarded."""

    def __init__(self, keep_per_agent: int = 50) -> None:
        if keep_per_agent < 1:
            raise ValueError(f"keep_per_agent must be at least 1, got {keep_per_agent}")
        self.keep_per_agent = keep_per_agent
        self._next_id = 1
        # (message, who actually gets it): a broadcast records no recipients but reaches everyone.
        self._outbox: list[tuple[Message, tuple[int, ...]]] = []
        self._received: dict[int, deque[Message]] = {}
        # What each agent sent, bounded like the received history: an agent may forward its own.
        self._sent: dict[int, deque[Message]] = {}

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        sender_id: int,
        sender: str,
        recipient_ids: Sequence[int],
        text: str,
        channel: str,
        step: int,
    ) -> Message:
        """Queue a message to ``recipient_ids`` (the sender and duplicates are dropped).

        Raises ``ValueError`` for an empty text, an empty channel, or no recipient other than
        the sender.
        """
        if not channel:
            raise ValueError("a message needs a channel")
        recipients = self._recipients(sender_id, recipient_ids)
        if not recipients:
            raise ValueError("the message has no recipient other than the sender")
        message = self._new(sender_id, sender, _checked_text(text), channel, step, list(recipients))
        self._queue(message, recipients)
        return message

    def broadcast(
        self, sender_id: int, sender: str, everyone: Sequence[int], text: str, step: int
    ) -> Message:
        """Queue a public message to everyone except the sender; it records no recipient ids."""
        recipients = self._recipients(sender_id, everyone)
        message = self._new(sender_id, sender, _checked_text(text), BROADCAST, step, [])
        self._queue(message, recipients)
        return message

    def forward(
        self,
        forwarder_id: int,
        forwarder: str,
        message_id: int,
        recipient_ids: Sequence[int],
        step: int,
        comment: str | None = None,
        channel: str = DIRECT,
    ) -> Message:
        """Gossip: pass on a message the forwarder received (or sent), quoting it intact.

        The new message's text is ``comment`` followed by the quoted original, or exactly the
        original text when there is no comment. Raises ``KeyError`` when no such message was
        ever sent and ``ValueError`` when the forwarder did not receive or send it (or it has
        dropped out of the bounded history).
        """
        source = self._find_known(forwarder_id, message_id)
        recipients = self._recipients(forwarder_id, recipient_ids)
        if not recipients:
            raise ValueError("the forward has no recipient other than the forwarder")
        note = (comment or "").strip()
        if note:
            text = (
                f"{note}\n--- forwarded message {source.message_id} from {source.sender} ---\n"
                f"{source.text}"
            )
        else:
            text = source.text
        message = self._new(forwarder_id, forwarder, text, channel, step, list(recipients))
        message.forwarded_from = source.message_id
        message.original_sender = source.sender
        self._queue(message, recipients)
        return message

    # -- delivering --------------------------------------------------------------------------

    def deliver(self) -> dict[int, list[Message]]:
        """Hand over everything queued since the last call, per recipient, in send order.

        Called at the start of a step. Delivered messages also enter each recipient's bounded
        received history.
        """
        inbox: dict[int, list[Message]] = {}
        for message, recipients in self._outbox:
            for agent_id in recipients:
                inbox.setdefault(agent_id, []).append(message)
                self._history(self._received, agent_id).append(message)
        self._outbox = []
        return inbox

    def received(self, agent_id: int) -> list[Message]:
        """Messages delivered to ``agent_id``, oldest first, at most ``keep_per_agent``."""
        return list(self._received.get(agent_id, ()))

    def anyone_received(self) -> bool:
        """Whether any agent's `received` is nonempty (an observer then asks agent by agent)."""
        return any(self._received.values())

    def sent_this_step(self) -> list[Message]:
        """Messages queued since the last :meth:`deliver`, in send order (for the recording)."""
        return [message for message, _ in self._outbox]

    # -- internals ---------------------------------------------------------------------------

    def _new(
        self, sender_id: int, sender: str, text: str, channel: str, step: int, recipients: list[int]
    ) -> Message:
        message = Message(
            message_id=self._next_id,
            sender_id=sender_id,
            sender=sender,
            text=text,
            channel=channel,
            step=step,
            recipient_ids=recipients,
        )
        self._next_id += 1
        return message

    def _queue(self, message: Message, recipients: tuple[int, ...]) -> None:
        self._outbox.append((message, recipients))
        self._history(self._sent, message.sender_id).append(message)

    def _history(self, store: dict[int, deque[Message]], agent_id: int) -> deque[Message]:
        history = store.get(agent_id)
        if history is None:
            history = store[agent_id] = deque(maxlen=self.keep_per_agent)
        return history

    @staticmethod
    def _recipients(sender_id: int, recipient_ids: Sequence[int]) -> tuple[int, ...]:
        # dict.fromkeys keeps the given order while dropping duplicates
        return tuple(r for r in dict.fromkeys(recipient_ids) if r != sender_id)

    def _find_known(self, agent_id: int, message_id: int) -> Message:
        if not 1 <= message_id < self._next_id:
            raise KeyError(f"there is no message {message_id}")
        for store in (self._received, self._sent):
            for message in store.get(agent_id, ()):
                if message.message_id == message_id:
                    return message
        raise ValueError(
            f"you cannot forward message {message_id}: only messages you received or sent "
            f"(the last {self.keep_per_agent}) can be forwarded"
        )


def _checked_text(text: str) -> str:
    if not text or not text.strip():
        raise ValueError("a message needs a non-empty text")
    return text
