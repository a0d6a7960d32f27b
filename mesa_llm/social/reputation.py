"""Reputation owns each agent's public score in [0, 1] and how contracts, fines and flags move it.

Updates are proportional so the score can never leave [0, 1]: a gain moves it towards 1
(``s += gain * (1 - s)``), a loss towards 0 (``s -= loss * s``). Every update returns a
JSON-ready change record for the recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Reputation"]


class Reputation:
    """Public score per agent in [0, 1], start 0.5 (configurable), updated from fulfilled and breached contracts and fines; shown in observations."""

    def __init__(
        self,
        initial: float = 0.5,
        fulfilled_gain: float = 0.05,
        breach_loss: float = 0.2,
        fine_loss: float = 0.1,
        flag_loss: float = 0.05,
    ) -> None:
        for label, value in (
            ("initial", initial),
            ("fulfilled_gain", fulfilled_gain),
            ("breach_loss", breach_loss),
            ("fine_loss", fine_loss),
            ("flag_loss", flag_loss),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        self.initial = float(initial)
        self.fulfilled_gain = float(fulfilled_gain)
        self.breach_loss = float(breach_loss)
        self.fine_loss = float(fine_loss)
        self.flag_loss = float(flag_loss)
        self._scores: dict[int, float] = {}

    def register(self, agent_id: int) -> None:
        """Give ``agent_id`` the initial score (no change if it already has one)."""
        self._scores.setdefault(agent_id, self.initial)

    # -- updates -----------------------------------------------------------------------------

    def contract_fulfilled(self, agent_id: int, step: int) -> dict[str, Any]:
        """Raise the score of an agent that fulfilled a contract."""
        return self._update(agent_id, "contract_fulfilled", self.fulfilled_gain, step)

    def contract_breached(self, agent_id: int, step: int) -> dict[str, Any]:
        """Lower the score of an agent that breached a contract."""
        return self._update(agent_id, "contract_breached", -self.breach_loss, step)

    def fined(self, agent_id: int, step: int) -> dict[str, Any]:
        """Lower the score of an agent the regulator fined."""
        return self._update(agent_id, "fined", -self.fine_loss, step)

    def flagged(self, agent_id: int, step: int) -> dict[str, Any]:
        """Lower the score of an agent the regulator flagged (a warning, milder than a fine)."""
        return self._update(agent_id, "flagged", -self.flag_loss, step)

    # -- queries -----------------------------------------------------------------------------

    def score(self, agent_id: int) -> float:
        """The score of ``agent_id``; an agent with no history has the initial score."""
        return self._scores.get(agent_id, self.initial)

    def scores(self) -> dict[int, float]:
        """Every registered agent's score, in registration order (a copy)."""
        return dict(self._scores)

    def table(
        self, agent_ids: Sequence[int] | None = None, limit: int | None = None
    ) -> dict[int, float]:
        """Scores rounded to 3 decimals, for an observation.

        Without ``limit``: every agent of ``agent_ids`` (default: all registered) in that order.
        With ``limit``: at most ``limit`` agents, the lowest and highest scores (half each, the
        extra one to the lowest), ordered from lowest to highest score — what an observation
        shows for a large market.
        """
        ids = list(self._scores) if agent_ids is None else list(dict.fromkeys(agent_ids))
        if limit is None:
            return {a: round(self.score(a), 3) for a in ids}
        if limit < 0:
            raise ValueError(f"limit must be non-negative, got {limit}")
        ranked = sorted(ids, key=lambda a: (self.score(a), a))
        if len(ranked) > limit:
            low = (limit + 1) // 2
            high = limit - low
            ranked = ranked[:low] + (ranked[len(ranked) - high :] if high else [])
        return {a: round(self.score(a), 3) for a in ranked}

    # -- internals ---------------------------------------------------------------------------

    def _update(self, agent_id: int, reason: str, rate: float, step: int) -> dict[str, Any]:
        before = self.score(agent_id)
        after = before + rate * (1.0 - before) if rate >= 0 else before + rate * before
        after = min(1.0, max(0.0, after))  # guards against float rounding only
        self._scores[agent_id] = after
        return {
            "agent_id": agent_id,
            "reason": reason,
            "before": round(before, 6),
            "after": round(after, 6),
            "step": step,
        }
