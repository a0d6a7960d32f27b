"""Actions agents may take, as pydantic models, and the Decision that carries them.

An action states intent only: the world validates it (schema here, world rules in
:mod:`mesa_llm.exchange`) before anything changes. Prices are in currency units, as agents see
them; the world converts them to integer ticks. Each action class produces its own tool JSON
schema (OpenAI function-calling shape), so LLM agents are offered exactly these actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class ActionBase(BaseModel):
    """Common configuration of every action: unknown fields are errors, values are immutable."""

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


Action = Annotated[
    PlaceOrder | CancelOrder | SendMessage | Broadcast | Wait, Field(discriminator="type")
]
ACTION_CLASSES: tuple[type[ActionBase], ...] = (PlaceOrder, CancelOrder, SendMessage, Broadcast, Wait)
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

    def names(self) -> list[str]:
        """Tool names, in registration order."""
        return list(self._classes)

    def tool_schemas(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """Tool definitions of the given actions (all when ``names`` is None)."""
        chosen = self._classes if names is None else {n: self._classes[n] for n in names}
        return [cls.tool_schema() for cls in chosen.values()]

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


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        parts.append(f"{loc}: {err['msg']}")
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
