"""`observation_batch._state_json`: an account's recorded text made straight from the ledger's
numbers is the text of its view (`account_json` of `_state_view`), byte for byte, or None where
that writer (or the encoder) must decide."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mesa_llm.agents.observation import account_json
from mesa_llm.agents.observation_batch import _state_json, _state_view
from mesa_llm.market import Money
from mesa_llm.recording.recorder import _make_encoder

#: (state, whether its text is made from the numbers)
STATES: list[tuple[tuple[Any, ...], bool]] = [
    ((100_000, 0, 0, 0, {"widget": 3}, {}), True),
    ((12_345_678, 0, 0, 0, {"widget": 0, "gadget": 7}, {"widget": 0}), True),  # a zero reservation shows as none
    ((5, 0, 250, 2, {"wïdget": 1, 'g"q': -2}, {}), True),  # credit, short limit, non-ASCII and quoted goods
    ((-40, 0, 100, 0, {}, {}), True),
    ((999, 10, 0, 0, {"widget": 1}, {}), True),  # reserved cash (a bid resting) with no goods reserved
    ((100, 0, 0, 0, {"widget": 4}, {"widget": 2}), False),  # goods reserved: left to the view
    ((100, 0, 0, 0, {"widget": True}, {}), False),  # a bool is no int: left to the encoder
    ((100, 0, 0, 0, {3: 1}, {}), False),  # a key not a string: left to the encoder
    ((100, 0, 0, 1.5, {"widget": 1}, {}), False),  # a float short limit: left to the encoder
]


@pytest.mark.parametrize("tick", [0.01, 0.25, 1.0, 1e-9])
@pytest.mark.parametrize(("state", "made"), STATES)
def test_the_text_from_the_numbers_is_the_views_text(state: tuple[Any, ...], made: bool, tick: float) -> None:
    money = Money(tick_size=tick)
    encode = _make_encoder()
    expected = account_json(_state_view(state, money.to_units), encode)
    text = _state_json(state, money.to_units)
    assert (text is not None) == made
    if text is not None:
        assert text == expected
        assert json.loads(text) == _state_view(state, money.to_units).to_dict()


def test_a_non_finite_amount_is_left_to_the_writer() -> None:
    text = _state_json((1, 0, 0, 0, {}, {}), lambda ticks: float("nan"))
    assert text is None
