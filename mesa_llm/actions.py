"""Actions agents may take, as pydantic models, and the Decision that carries them.

An action states intent only: the world validates it (schema here, world rules in
``mesa_llm.world.exchange``) before anything changes. Prices are in currency units, as agents see
them; the world converts them to integer ticks. Each action class produces its own tool JSON
schema (OpenAI function-calling shape), so LLM agents are offered exactly these actions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class RejectedAction(Exception):
    """An action the world refused; ``reason`` is shown to the agent next step and recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ActionBase(BaseModel):
    """Common configuration of every action: unknown fields are errors, values are immutable.

    A mechanism's own actions (plugins) subclass it too: a ``tool_name``, a ``type`` field that is
    ``Literal`` of it, pydantic fields for the arguments, and optionally :meth:`narrow_schema`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the tool name under which an LLM is offered this action
    tool_name: ClassVar[str] = ""

    @classmethod
    def tool_schema(cls) -> dict[str, Any]:
        """This action as an OpenAI-style tool definition (``{"type": "function", ...}``)."""
        schema = cls.model_json_schema()
        properties = {k: v for k, v in schema.get("properties", {}).items() if k != "type"}
        required = [name for name in schema.get("required", []) if name != "type"]
        parameters: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        return {
            "type": "function",
            "function": {
                "name": cls.tool_name,
                "description": (cls.__doc__ or "").strip().splitlines()[0],
                "parameters": parameters,
            },
        }

    def arguments(self) -> dict[str, Any]:
        """The action's arguments without its ``type`` tag (as recorded)."""
        return self.model_dump(exclude={"type"})

    @classmethod
    def narrow_schema(cls, parameters: dict[str, Any], observation: Any) -> None:
        """Narrow this tool's JSON-schema ``parameters`` (in place) to what ``observation`` admits
        now: JSON-mode schemas of a mechanism's own actions (bounds, enums; the built-in actions
        are narrowed by `mesa_llm.agents.action_schemas`). The world validates again anyway."""


class PlaceOrder(ActionBase):
    """Place a limit order for a good in the call market (cleared at the end of the step)."""

    tool_name: ClassVar[str] = "place_order"
    type: Literal["place_order"] = "place_order"
    good: str = Field(min_length=1, max_length=64, description="name of the good")
    side: Literal["buy", "sell"]
    price: float = Field(
        gt=0,
        allow_inf_nan=False,
        description="limit price in currency units, a multiple of the tick size",
    )
    quantity: int = Field(gt=0, le=10**9, description="number of units")
    lifetime: Literal["step", "gtc"] = Field(
        default="step",
        description="'step': expires after this step's clearing; 'gtc': rests until cancelled",
    )


class CancelOrder(ActionBase):
    """Cancel one of your open orders."""

    tool_name: ClassVar[str] = "cancel_order"
    type: Literal["cancel_order"] = "cancel_order"
    order_id: int = Field(gt=0)


class SendMessage(ActionBase):
    """Send a private message to one agent (delivered at the next step)."""

    tool_name: ClassVar[str] = "send_message"
    type: Literal["send_message"] = "send_message"
    recipient_id: int = Field(ge=0)
    text: str = Field(min_length=1, max_length=2000)


class Broadcast(ActionBase):
    """Send a message to every agent in the market (delivered at the next step)."""

    tool_name: ClassVar[str] = "broadcast"
    type: Literal["broadcast"] = "broadcast"
    text: str = Field(min_length=1, max_length=2000)


class Wait(ActionBase):
    """Do nothing this step."""

    tool_name: ClassVar[str] = "wait"
    type: Literal["wait"] = "wait"
    reason: str | None = Field(default=None, max_length=500)


class ForwardMessage(ActionBase):
    """Forward a message you received to other agents (gossip: marked as forwarded)."""

    tool_name: ClassVar[str] = "forward_message"
    type: Literal["forward_message"] = "forward_message"
    message_id: int = Field(gt=0)
    recipient_ids: list[int] = Field(min_length=1, max_length=100)
    comment: str | None = Field(default=None, max_length=500)


#: bounds on terms (an LLM could send a million issues, 1 MB names or NaN); checked after parsing so
#: the tool schemas the models see (and recorded cassettes) stay as they were
MAX_TERMS_ISSUES = 32
MAX_TERM_TEXT = 200


def _check_terms(terms: dict[str, str | int | float]) -> dict[str, str | int | float]:
    if len(terms) > MAX_TERMS_ISSUES:
        raise ValueError(f"at most {MAX_TERMS_ISSUES} issues, got {len(terms)}")
    for name, value in terms.items():
        if not 1 <= len(name) <= 64:
            raise ValueError(f"issue names have 1 to 64 characters, got {len(name):,}")
        if isinstance(value, str) and len(value) > MAX_TERM_TEXT:
            raise ValueError(f"{name[:64]}: at most {MAX_TERM_TEXT} characters, got {len(value):,}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name[:64]}: not a finite number")
    return terms


Terms = Annotated[dict[str, str | int | float], AfterValidator(_check_terms)]


class MakeOffer(ActionBase):
    """Make an offer (terms for every issue) in a negotiation; without session_id, open one with counterparty_id."""

    tool_name: ClassVar[str] = "make_offer"
    type: Literal["make_offer"] = "make_offer"
    session_id: str | None = Field(default=None, max_length=64, description="the negotiation")
    counterparty_id: int | None = Field(
        default=None, ge=0, description="to open a new negotiation, or the seller a counter-offer goes to"
    )
    good: str | None = Field(default=None, max_length=64, description="good of a new negotiation")
    terms: Terms = Field(description="a value for every issue of the outcome space, e.g. {'price': 101.5}")


class AcceptOffer(ActionBase):
    """Accept a standing offer (or a mediator's proposal) of a negotiation, by its offer_id."""

    tool_name: ClassVar[str] = "accept_offer"
    type: Literal["accept_offer"] = "accept_offer"
    session_id: str = Field(max_length=64)
    offer_id: int = Field(gt=0)


class RejectOffer(ActionBase):
    """Reject the standing offer (or veto a mediator's proposal), optionally saying which terms you would prefer."""

    tool_name: ClassVar[str] = "reject_offer"
    type: Literal["reject_offer"] = "reject_offer"
    session_id: str = Field(max_length=64)
    offer_id: int | None = Field(default=None, gt=0)
    counter: Terms | None = Field(default=None, description="terms you would prefer (optional)")


class EndNegotiation(ActionBase):
    """Walk away from a negotiation (no agreement)."""

    tool_name: ClassVar[str] = "end_negotiation"
    type: Literal["end_negotiation"] = "end_negotiation"
    session_id: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class CallForProposals(ActionBase):
    """Ask several sellers for offers on a good at once (a one-to-many negotiation)."""

    tool_name: ClassVar[str] = "call_for_proposals"
    type: Literal["call_for_proposals"] = "call_for_proposals"
    good: str = Field(max_length=64)
    seller_ids: list[int] | None = Field(default=None, max_length=100, description="all sellers if omitted")
    max_rounds: int | None = Field(default=None, ge=1, le=1000)


class ProposeSettlement(ActionBase):
    """As mediator, propose one text (terms) that both parties accept or veto next step."""

    tool_name: ClassVar[str] = "propose_settlement"
    type: Literal["propose_settlement"] = "propose_settlement"
    session_id: str = Field(max_length=64)
    terms: Terms


class Bid(ActionBase):
    """Bid in an auction (sealed-bid: your one bid, replaceable; English: above the standing price)."""

    tool_name: ClassVar[str] = "bid"
    type: Literal["bid"] = "bid"
    session_id: str = Field(max_length=64)
    price: float = Field(gt=0, allow_inf_nan=False)


class FlagViolation(ActionBase):
    """As regulator, publicly flag an agent for a suspected violation (lowers its reputation)."""

    tool_name: ClassVar[str] = "flag_violation"
    type: Literal["flag_violation"] = "flag_violation"
    agent_id: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=500)


class ImposeFine(ActionBase):
    """As regulator, fine an agent (paid to the house account, capped at the cash it has)."""

    tool_name: ClassVar[str] = "impose_fine"
    type: Literal["impose_fine"] = "impose_fine"
    agent_id: int = Field(ge=0)
    amount: float = Field(gt=0, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=500)


class SuspendTrader(ActionBase):
    """As regulator, suspend an agent from trading and negotiating for some steps."""

    tool_name: ClassVar[str] = "suspend_trader"
    type: Literal["suspend_trader"] = "suspend_trader"
    agent_id: int = Field(ge=0)
    steps: int = Field(ge=1, le=10_000)
    reason: str = Field(min_length=1, max_length=500)


class ProposeAlliance(ActionBase):
    """Found an alliance (a coalition with a private channel) and invite agents to it."""

    tool_name: ClassVar[str] = "propose_alliance"
    type: Literal["propose_alliance"] = "propose_alliance"
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    invitee_ids: list[int] = Field(min_length=1, max_length=100)


class JoinAlliance(ActionBase):
    """Join an alliance you were invited to."""

    tool_name: ClassVar[str] = "join_alliance"
    type: Literal["join_alliance"] = "join_alliance"
    name: str = Field(min_length=1, max_length=40)


class LeaveAlliance(ActionBase):
    """Leave an alliance."""

    tool_name: ClassVar[str] = "leave_alliance"
    type: Literal["leave_alliance"] = "leave_alliance"
    name: str = Field(min_length=1, max_length=40)


class MessageAlliance(ActionBase):
    """Send a message on an alliance's private channel (members only, delivered next step)."""

    tool_name: ClassVar[str] = "message_alliance"
    type: Literal["message_alliance"] = "message_alliance"
    name: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=2000)


Action = Annotated[
    PlaceOrder
    | CancelOrder
    | SendMessage
    | Broadcast
    | Wait
    | ForwardMessage
    | MakeOffer
    | AcceptOffer
    | RejectOffer
    | EndNegotiation
    | CallForProposals
    | ProposeSettlement
    | Bid
    | FlagViolation
    | ImposeFine
    | SuspendTrader
    | ProposeAlliance
    | JoinAlliance
    | LeaveAlliance
    | MessageAlliance,
    Field(discriminator="type"),
]
ACTION_CLASSES: tuple[type[ActionBase], ...] = (
    PlaceOrder,
    CancelOrder,
    SendMessage,
    Broadcast,
    Wait,
    ForwardMessage,
    MakeOffer,
    AcceptOffer,
    RejectOffer,
    EndNegotiation,
    CallForProposals,
    ProposeSettlement,
    Bid,
    FlagViolation,
    ImposeFine,
    SuspendTrader,
    ProposeAlliance,
    JoinAlliance,
    LeaveAlliance,
    MessageAlliance,
)
_ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


class ActionValidationError(ValueError):
    """A tool call that does not parse as a known action with valid arguments."""

    def __init__(self, tool_name: str, arguments: Any, reason: str) -> None:
        super().__init__(f"invalid {tool_name!r} call: {reason}")
        self.tool_name = tool_name
        self.arguments = arguments
        self.reason = reason


class ActionRegistry:
    """The actions one market offers, by tool name: an explicit object, never a global registry."""

    def __init__(self, classes: tuple[type[ActionBase], ...] = ACTION_CLASSES) -> None:
        self._classes: dict[str, type[ActionBase]] = {c.tool_name: c for c in classes}
        self._schemas: dict[str, dict[str, Any]] = {}

    def names(self) -> list[str]:
        """Tool names, in registration order."""
        return list(self._classes)

    def action_class(self, name: str) -> type[ActionBase] | None:
        """The action class offered as tool ``name`` (None if there is none)."""
        return self._classes.get(name)

    def with_actions(self, classes: tuple[type[ActionBase], ...]) -> ActionRegistry:
        """A new registry: these actions plus ``classes`` (a plugin mechanism's own actions)."""
        return ActionRegistry((*self._classes.values(), *classes))

    def tool_schemas(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """Tool definitions of the given actions (all when ``names`` is None)."""
        chosen = list(self._classes) if names is None else names
        out = []
        for name in chosen:
            schema = self._schemas.get(name)
            if schema is None:  # building a JSON schema costs ~1 ms: once per tool, not per agent
                schema = self._schemas[name] = self._classes[name].tool_schema()
            out.append(schema)
        return out

    def parse(self, tool_name: str, arguments: dict[str, Any]) -> ActionBase:
        """Validate a tool call into an action, or raise :class:`ActionValidationError`."""
        cls = self._classes.get(tool_name)
        if cls is None:
            raise ActionValidationError(
                tool_name, arguments, f"unknown action; available: {', '.join(self._classes)}"
            )
        if not isinstance(arguments, dict):
            raise ActionValidationError(tool_name, arguments, "arguments must be a JSON object")
        try:
            return cls.model_validate({**arguments, "type": tool_name})
        except ValidationError as exc:
            raise ActionValidationError(tool_name, arguments, _describe(exc)) from None


def parse_action(data: dict[str, Any]) -> ActionBase:
    """Validate a tagged action dict (``{"type": "place_order", ...}``) into an action."""
    try:
        return _ACTION_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ActionValidationError(str(data.get("type", "?")), data, _describe(exc)) from None


#: validation problems named in one rejection reason (the rest are counted)
_MAX_PROBLEMS = 5


def _describe(exc: ValidationError) -> str:
    """The first few problems, each ``where: what``; locations can be model-chosen keys: cut them."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[:_MAX_PROBLEMS]:
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        if len(loc) > 80:
            loc = loc[:77] + "..."
        parts.append(f"{loc}: {err['msg']}")
    if len(errors) > _MAX_PROBLEMS:
        parts.append(f"and {len(errors) - _MAX_PROBLEMS} more problems")
    return "; ".join(parts)


@dataclass(slots=True)
class Decision:
    """What an agent returns for one step: an optional plan and the actions it wants to take."""

    actions: list[ActionBase] = field(default_factory=list)
    plan: str | None = None
    #: problems met while deciding (e.g. a tool call that failed validation); recorded as rejections
    invalid: list[ActionValidationError] = field(default_factory=list)
    #: events produced while deciding (e.g. ``("llm_call", {...})``), recorded in agent order
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: why the agent could not decide at all this step (e.g. its model kept failing), if so
    failure: str | None = None
    #: the failure is a configuration problem (bad key, unknown model): the run should stop
    fatal: bool = False
