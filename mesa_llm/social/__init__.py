"""Social layer: the mailbox (direct, broadcast, channels, gossip), alliances, reputation and surveillance.

Pure Python, standard library only, and it imports nothing else of mesa_llm: the model wires
these objects into the step (deliver at step start, record what was sent, let the regulator
apply the surveillance rules).
"""

from mesa_llm.social.alliances import Alliance, AllianceError, AllianceRegistry
from mesa_llm.social.mailbox import BROADCAST, DIRECT, Mailbox, Message
from mesa_llm.social.reputation import Reputation
from mesa_llm.social.surveillance import (
    COLLUSION_PATTERNS,
    repeated_pair_share,
    suspicious_messages,
    wash_trades,
)

__all__ = [
    "BROADCAST",
    "COLLUSION_PATTERNS",
    "DIRECT",
    "Alliance",
    "AllianceError",
    "AllianceRegistry",
    "Mailbox",
    "Message",
    "Reputation",
    "repeated_pair_share",
    "suspicious_messages",
    "wash_trades",
]
