"""``policy: external``: an agent whose actions come from outside the run (a learning agent, a remote
client, a script) through ``Simulation.act``.

The world treats these actions exactly like any agent's: each is parsed into its action model
(a bad one is a rejection the caller is told of at once and that is recorded in the step), then
validated against the world's rules and resolved in the step's seeded order. What was submitted is
recorded (``external_actions``), so a replay submits the same actions again. An external agent that
was given nothing for a step waits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from mesa_llm.actions import (
    ACTION_CLASSES,
    ActionBase,
    ActionRegistry,
    ActionValidationError,
    Decision,
    parse_action,
)
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies.base import DecisionPolicy, PolicyParams

_ACTION_NAMES = tuple(cls.tool_name for cls in ACTION_CLASSES)
#: longest JSON text of one submitted action (a bigger one is refused, not recorded)
MAX_ACTION_CHARS = 8_000


class ExternalParams(PolicyParams):
    """Parameters of an externally driven agent."""

    max_actions: int = Field(default=32, ge=1, le=1000, description="actions accepted per step")


class ExternalPolicy(DecisionPolicy):
    """Acts only as told through ``Simulation.act()``; waits when told nothing."""

    name: ClassVar[str] = "external"
    summary: ClassVar[str] = "actions come from outside the run (Simulation.act: a learner, a remote client)"
    Params: ClassVar[type[PolicyParams]] = ExternalParams
    #: marks the policies whose decisions are submitted through ``Simulation.act`` (an instance
    #: may say otherwise: an ``rl`` agent with a checkpoint decides by itself)
    is_external: bool = True

    def __init__(self, params: PolicyParams | None = None) -> None:
        super().__init__(params)
        self._pending: list[Any] = []  # what was submitted for the coming step, as submitted
        self._registry: ActionRegistry | None = None  # the run's actions, plugin mechanisms' too
        self._parsed: list[ActionBase] = []
        self._invalid: list[ActionValidationError] = []

    def bind_actions(self, registry: ActionRegistry) -> None:
        """Parse submissions with the run's actions (the built-in ones and its plugin mechanisms')."""
        self._registry = registry

    @property
    def max_actions(self) -> int:
        """Actions accepted per step."""
        return int(getattr(self.params, "max_actions", 32))

    def submit(self, actions: Iterable[Mapping[str, Any] | ActionBase]) -> list[dict[str, Any]]:
        """Queue ``actions`` for the coming step; returns the ones refused now (type, reason).

        Refused at once (and recorded as rejected in the step): an action that is not a known
        action with valid arguments, one too many for the step, one too large. The rest are checked
        against the world's rules when the step resolves them.
        """
        refused: list[dict[str, Any]] = []
        for item in actions:
            raw = item.model_dump(mode="json") if isinstance(item, ActionBase) else item
            kind = str(raw.get("type", "?"))[:64] if isinstance(raw, Mapping) else "?"
            try:
                text = json.dumps(raw, allow_nan=False, default=str)
            except (TypeError, ValueError):
                text = None
            if len(self._pending) >= self.max_actions:
                reason = f"at most {self.max_actions} actions per step"
            elif text is None or not isinstance(raw, Mapping):
                reason = "an action is a JSON object with a 'type' and its arguments (finite numbers)"
            elif len(text) > MAX_ACTION_CHARS:
                reason = f"the action is {len(text):,} characters long; at most {MAX_ACTION_CHARS:,}"
            else:
                reason = None
            if reason is not None:
                refused.append({"type": kind, "reason": reason})
                continue
            assert text is not None
            data = json.loads(text)  # a plain-JSON copy: what is recorded and replayed
            self._pending.append(data)
            try:
                names = self._registry.names() if self._registry is not None else _ACTION_NAMES
                if kind not in names:
                    raise ActionValidationError(kind, data, f"unknown action type {kind!r}; actions: {', '.join(names)}")
                if self._registry is not None:
                    self._parsed.append(self._registry.parse(kind, {k: v for k, v in data.items() if k != "type"}))
                else:
                    self._parsed.append(parse_action(data))
            except ActionValidationError as exc:
                self._invalid.append(exc)
                refused.append({"type": kind, "reason": exc.reason})
        return refused

    @property
    def pending(self) -> list[Any]:
        """What was submitted for the coming step (JSON), in order."""
        return list(self._pending)

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        """The submitted actions (no draw from ``rng``); nothing when nothing was submitted."""
        if not self._pending:
            return Decision()
        decision = Decision(
            actions=list(self._parsed),
            invalid=list(self._invalid),
            events=[("external_actions", {"actions": list(self._pending)})],
        )
        self._pending, self._parsed, self._invalid = [], [], []
        return decision


__all__ = ["MAX_ACTION_CHARS", "ExternalParams", "ExternalPolicy"]
