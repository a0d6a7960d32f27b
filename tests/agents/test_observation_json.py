"""The account and private parts of a recorded observation, written by hand (`account_json`,
`private_json`): for any values, the text is what the recorder's encoder makes of the part's dict."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_llm.agents.observation import AccountView, PrivateView, account_json, private_json
from mesa_llm.recording.recorder import _make_encoder

ENCODE = _make_encoder()

texts = st.text(st.characters(codec=None), max_size=8)
floats = st.floats(allow_nan=True, allow_infinity=True)
# the world gives floats and ints; anything else must still come out as the encoder writes it
numbers = st.one_of(
    floats, floats, st.integers(-(10**20), 10**20), st.booleans(), st.none(),
    st.builds(lambda x: type("F", (float,), {})(x), floats),
)  # fmt: skip
int_maps = st.one_of(
    st.dictionaries(texts, st.integers(-(10**20), 10**20), max_size=3),
    st.dictionaries(st.one_of(texts, st.integers()), st.one_of(st.integers(), st.booleans(), floats), max_size=3),
)
float_lists = st.one_of(st.lists(floats, max_size=12), st.lists(numbers, max_size=4))


@settings(max_examples=400)
@given(numbers, int_maps, numbers, int_maps, numbers, int_maps)
def test_an_account_is_written_as_the_encoder_writes_its_dict(
    cash: Any, holdings: Any, reserved: Any, reserved_goods: Any, available: Any, available_goods: Any
) -> None:
    view = AccountView(cash, holdings, reserved, reserved_goods, available, available_goods)
    assert account_json(view, ENCODE) == ENCODE(view.to_dict())


@settings(max_examples=400)
@given(
    st.dictionaries(
        texts,
        st.builds(PrivateView, float_lists, float_lists, numbers, st.one_of(st.integers(), numbers),
                  st.one_of(st.integers(), numbers)),  # fmt: skip
        max_size=3,
    )
)
def test_private_values_are_written_as_the_encoder_writes_their_dicts(private: dict[str, PrivateView]) -> None:
    assert private_json(private, ENCODE) == ENCODE({good: view.to_dict() for good, view in private.items()})


def test_the_usual_parts_are_written_by_hand_not_left_to_the_encoder() -> None:
    """The world's own types take the hand-written path (else it would be no faster)."""
    calls: list[Any] = []

    def counting(obj: Any) -> str:
        calls.append(obj)
        return ENCODE(obj)

    view = AccountView(99900.04, {"widget": 1}, 0.0, {}, 99900.04, {"widget": 1})
    private = {"widget": PrivateView([158.07, 156.99], [], None, 99, 0), "gadget": PrivateView([], [1e-7], 3.5, 0, 4)}
    assert account_json(view, counting) == ENCODE(view.to_dict())
    assert private_json(private, counting) == ENCODE({g: v.to_dict() for g, v in private.items()})
    assert calls == []
