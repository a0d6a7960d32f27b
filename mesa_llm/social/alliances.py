"""Alliances owns coalitions of agents: founding, invitations, membership, dissolution, and their events.

An alliance has a private message channel (``alliance:<name>``) that reaches its members only;
the mailbox does the delivering, this registry says who the members are. Every membership change
is returned as a JSON-ready event and kept in :attr:`AllianceRegistry.history` for the recording.
Errors are :class:`AllianceError` with a reason written for the agent that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Alliance", "AllianceError", "AllianceRegistry"]

CHANNEL_PREFIX = "alliance:"


class AllianceError(ValueError):
    """An alliance action that breaks the rules; the message is the reason the agent will read."""


@dataclass
class Alliance:
    """A coalition: its founder, current members and pending invitations."""

    name: str
    founder: int
    members: set[int]
    invited: set[int]
    created_step: int
    dissolved_step: int | None = None

    @property
    def active(self) -> bool:
        """True until the last member leaves."""
        return self.dissolved_step is None


class AllianceRegistry:
    """All alliances of a run; names are unique among active alliances (a dissolved name is free again)."""

    def __init__(self) -> None:
        self._active: dict[str, Alliance] = {}
        self._dissolved: list[Alliance] = []
        self._history: list[dict[str, Any]] = []

    # -- actions -----------------------------------------------------------------------------

    def propose(
        self, founder: int, name: str, invitees: Sequence[int], step: int
    ) -> list[dict[str, Any]]:
        """Found alliance ``name`` with ``founder`` as its first member and invite ``invitees``."""
        name = _checked_name(name)
        if name in self._active:
            raise AllianceError(f"an alliance named '{name}' already exists")
        alliance = Alliance(
            name=name, founder=founder, members={founder}, invited=set(), created_step=step
        )
        self._active[name] = alliance
        events = [self._event(name, "created", founder, step)]
        events += self._invite(alliance, invitees, step)
        return events

    def invite(
        self, agent_id: int, name: str, invitees: Sequence[int], step: int
    ) -> list[dict[str, Any]]:
        """A member invites more agents (members and already-invited agents are skipped)."""
        alliance = self._get(name)
        if agent_id not in alliance.members:
            raise AllianceError(f"you are not a member of '{alliance.name}'")
        return self._invite(alliance, invitees, step)

    def join(self, agent_id: int, name: str, step: int) -> list[dict[str, Any]]:
        """Accept an invitation to ``name``; only invited agents may join."""
        alliance = self._get(name)
        if agent_id in alliance.members:
            raise AllianceError(f"already a member of '{alliance.name}'")
        if agent_id not in alliance.invited:
            raise AllianceError(f"you are not invited to '{alliance.name}'")
        alliance.invited.discard(agent_id)
        alliance.members.add(agent_id)
        return [self._event(alliance.name, "joined", agent_id, step)]

    def leave(self, agent_id: int, name: str, step: int) -> list[dict[str, Any]]:
        """Leave ``name``; the last member leaving dissolves it (pending invitations lapse)."""
        alliance = self._get(name)
        if agent_id not in alliance.members:
            raise AllianceError(f"you are not a member of '{alliance.name}'")
        alliance.members.discard(agent_id)
        events = [self._event(alliance.name, "left", agent_id, step)]
        if not alliance.members:
            alliance.invited.clear()
            alliance.dissolved_step = step
            del self._active[alliance.name]
            self._dissolved.append(alliance)
            events.append(self._event(alliance.name, "dissolved", agent_id, step))
        return events

    # -- queries -----------------------------------------------------------------------------

    def get(self, name: str) -> Alliance:
        """The active alliance called ``name`` (AllianceError if there is none)."""
        return self._get(name)

    def exists(self, name: str) -> bool:
        """True when an active alliance is called ``name``."""
        return name.strip() in self._active

    def names(self) -> list[str]:
        """Names of the active alliances, sorted."""
        return sorted(self._active)

    def members(self, name: str) -> set[int]:
        """Current members of ``name`` (a copy)."""
        return set(self._get(name).members)

    def alliances_of(self, agent_id: int) -> list[str]:
        """Sorted names of the active alliances ``agent_id`` belongs to."""
        return sorted(n for n, a in self._active.items() if agent_id in a.members)

    def invitations_of(self, agent_id: int) -> list[str]:
        """Sorted names of the alliances ``agent_id`` is invited to and has not joined."""
        return sorted(n for n, a in self._active.items() if agent_id in a.invited)

    def channel(self, name: str) -> str:
        """The message channel of ``name``: ``alliance:<name>``."""
        return CHANNEL_PREFIX + self._get(name).name

    def view(self, agent_id: int) -> dict[str, Any]:
        """What ``agent_id`` sees of alliances (JSON-ready)."""
        return {
            "member_of": [
                {"name": n, "members": sorted(self._active[n].members)}
                for n in self.alliances_of(agent_id)
            ],
            "invited_to": self.invitations_of(agent_id),
        }

    @property
    def dissolved(self) -> list[Alliance]:
        """Alliances that have been dissolved, in order of dissolution."""
        return list(self._dissolved)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every membership event so far, in order."""
        return [dict(event) for event in self._history]

    # -- internals ---------------------------------------------------------------------------

    def _get(self, name: str) -> Alliance:
        key = name.strip() if isinstance(name, str) else name
        alliance = self._active.get(key)
        if alliance is None:
            raise AllianceError(f"no alliance named '{key}'")
        return alliance

    def _invite(
        self, alliance: Alliance, invitees: Sequence[int], step: int
    ) -> list[dict[str, Any]]:
        events = []
        for agent_id in dict.fromkeys(invitees):
            if agent_id in alliance.members or agent_id in alliance.invited:
                continue
            alliance.invited.add(agent_id)
            events.append(self._event(alliance.name, "invited", agent_id, step))
        return events

    def _event(self, name: str, action: str, agent_id: int, step: int) -> dict[str, Any]:
        event = {"alliance": name, "action": action, "agent_id": agent_id, "step": step}
        self._history.append(event)
        return dict(event)


def _checked_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise AllianceError("an alliance needs a non-empty name")
    return cleaned
