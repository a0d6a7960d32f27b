"""Tests of issues, outcome spaces, utility functions and the outcome analysis (Pareto, Nash, ...)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesa_llm.negotiation import (
    CategoricalIssue,
    ContinuousIssue,
    IntegerIssue,
    LinearAdditiveUtility,
    OutcomeError,
    OutcomeSpace,
    distance_to_nash,
    distance_to_pareto,
    kalai_smorodinsky_point,
    max_welfare_point,
    nash_point,
    pareto_frontier,
    price_utility,
)


def make_space() -> OutcomeSpace:
    return OutcomeSpace(
        [
            ContinuousIssue("price", 0.0, 200.0, tick=0.5),
            IntegerIssue("quantity", 1, 10),
            CategoricalIssue("colour", ["red", "blue"]),
        ]
    )


# -- issues ------------------------------------------------------------------------------


def test_continuous_issue_validates_range_and_tick() -> None:
    issue = ContinuousIssue("price", 0.0, 200.0, tick=0.5)
    assert issue.validate(100) == 100.0
    assert issue.validate("12.5") == 12.5
    assert issue.validate(0.1 + 0.4) == 0.5  # float noise snapped onto the tick
    with pytest.raises(OutcomeError, match=r"^price: 250.0 is above the maximum 200.0$"):
        issue.validate(250.0)
    with pytest.raises(OutcomeError, match=r"^price: -1.0 is below the minimum 0.0$"):
        issue.validate(-1)
    with pytest.raises(OutcomeError, match="price: 0.3 is not a multiple of the tick 0.5"):
        issue.validate(0.3)
    for bad in (True, None, "abc", float("nan"), [1]):
        with pytest.raises(OutcomeError, match="^price: "):
            issue.validate(bad)
    assert issue.kind == "continuous"


def test_continuous_issue_without_tick_accepts_any_value_in_range() -> None:
    issue = ContinuousIssue("share", 0.0, 1.0)
    assert issue.validate(1 / 3) == pytest.approx(1 / 3)
    assert issue.validate(1.0 + 1e-12) == 1.0  # float noise at the edge is clipped


def test_integer_issue() -> None:
    issue = IntegerIssue("quantity", 1, 10)
    assert issue.validate(3) == 3 and isinstance(issue.validate(3.0), int)
    with pytest.raises(OutcomeError, match="quantity: 2.5 is not an integer"):
        issue.validate(2.5)
    with pytest.raises(OutcomeError, match="quantity: 11 is above the maximum 10"):
        issue.validate(11)
    with pytest.raises(OutcomeError, match="quantity: 0 is below the minimum 1"):
        issue.validate(0)
    assert issue.kind == "integer"


def test_categorical_issue() -> None:
    issue = CategoricalIssue("colour", ["red", "blue"])
    assert issue.validate("red") == "red"
    assert issue.validate(" Blue ") == "blue"  # canonical spelling
    with pytest.raises(OutcomeError, match="colour: 'green' is not one of 'red', 'blue'"):
        issue.validate("green")
    assert issue.kind == "categorical"
    assert list(issue.values) == ["red", "blue"]
    hash(issue)  # immutable and hashable


@pytest.mark.parametrize(
    "make",
    [
        lambda: ContinuousIssue("p", 2.0, 1.0),
        lambda: ContinuousIssue("p", 0.0, math.inf),
        lambda: ContinuousIssue("p", 0.0, 1.0, tick=0.0),
        lambda: ContinuousIssue("p", 0.1, 0.2, tick=1.0),
        lambda: IntegerIssue("q", 3, 1),
        lambda: CategoricalIssue("c", []),
        lambda: CategoricalIssue("c", ["a", "a"]),
        lambda: ContinuousIssue("", 0.0, 1.0),
    ],
)
def test_bad_issues_are_rejected(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


# -- outcome space -----------------------------------------------------------------------


def test_space_validate_normalises_and_names_the_issue() -> None:
    space = make_space()
    assert space.names == ["price", "quantity", "colour"]
    out = space.validate({"colour": "RED", "quantity": 2.0, "price": "10"})
    assert out == {"price": 10.0, "quantity": 2, "colour": "red"}
    assert list(out) == space.names
    with pytest.raises(OutcomeError, match="missing issue 'quantity'"):
        space.validate({"price": 10, "colour": "red"})
    with pytest.raises(OutcomeError, match="unknown issue 'size'"):
        space.validate({"price": 10, "quantity": 1, "colour": "red", "size": 3})
    with pytest.raises(OutcomeError, match="price: 250.0 is above the maximum 200.0"):
        space.validate({"price": 250.0, "quantity": 1, "colour": "red"})
    with pytest.raises(OutcomeError, match="terms must be an object"):
        space.validate([1, 2])  # type: ignore[arg-type]
    assert space.is_valid({"price": 1, "quantity": 1, "colour": "blue"})
    assert not space.is_valid({"price": 1})


def test_space_needs_unique_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        OutcomeSpace([IntegerIssue("q", 0, 1), IntegerIssue("q", 0, 2)])
    with pytest.raises(ValueError):
        OutcomeSpace([])


def test_grid() -> None:
    space = make_space()
    grid = space.grid(5)
    assert len(grid) == 5 * 10 * 2
    assert all(space.is_valid(o) for o in grid)
    prices = sorted({o["price"] for o in grid})
    assert prices == [0.0, 50.0, 100.0, 150.0, 200.0]
    assert sorted({o["quantity"] for o in grid}) == list(range(1, 11))
    # more than 50 integers: evenly spaced, ends included
    wide = OutcomeSpace([IntegerIssue("n", 0, 1000)])
    values = [o["n"] for o in wide.grid(11)]
    assert values == list(range(0, 1001, 100))
    # a tick coarser than the spacing: snapped, deduplicated, inside the range
    coarse = OutcomeSpace([ContinuousIssue("p", 0.3, 2.1, tick=1.0)])
    assert [o["p"] for o in coarse.grid(11)] == [1.0, 2.0]
    single = OutcomeSpace([ContinuousIssue("p", 5.0, 5.0)])
    assert single.grid() == [{"p": 5.0}]


def test_space_round_trips_through_json() -> None:
    space = make_space()
    data = json.loads(json.dumps(space.to_dict()))
    assert data["issues"][0] == {
        "name": "price",
        "type": "continuous",
        "low": 0.0,
        "high": 200.0,
        "tick": 0.5,
    }
    assert data["issues"][2] == {"name": "colour", "type": "categorical", "values": ["red", "blue"]}
    assert OutcomeSpace.from_dict(data) == space
    assert hash(OutcomeSpace.from_dict(data)) == hash(space)


@given(st.floats(min_value=0, max_value=200, allow_nan=False))
def test_validated_prices_are_on_the_tick_or_rejected(x: float) -> None:
    issue = ContinuousIssue("price", 0.0, 200.0, tick=0.5)
    try:
        value = issue.validate(x)
    except OutcomeError as exc:
        assert str(exc).startswith("price: ")
    else:
        assert (value * 2).is_integer() and 0 <= value <= 200


# -- utility -----------------------------------------------------------------------------


def test_linear_additive_utility() -> None:
    space = make_space()
    u = LinearAdditiveUtility(
        space,
        weights={"price": 2, "quantity": 1, "colour": 1},
        preferences={"price": "decreasing", "quantity": "increasing", "colour": {"blue": 1.0}},
        reservation=0.3,
        discount=0.9,
    )
    assert u.weights == {"price": 0.5, "quantity": 0.25, "colour": 0.25}
    best = {"price": 0.0, "quantity": 10, "colour": "blue"}
    worst = {"price": 200.0, "quantity": 1, "colour": "red"}
    assert u(best) == pytest.approx(1.0)
    assert u(worst) == pytest.approx(0.0)
    mid = {"price": 100.0, "quantity": 1, "colour": "blue"}
    assert u(mid) == pytest.approx(0.5 * 0.5 + 0.25)
    assert u.discounted(best, 2) == pytest.approx(0.81)
    assert u.acceptable(mid)
    assert not u.acceptable(worst)
    assert not u.acceptable(mid, round_=10)  # 0.5 * 0.9**10 < 0.3
    data = json.loads(json.dumps(u.to_dict()))
    again = LinearAdditiveUtility.from_dict(space, data)
    assert again(mid) == u(mid) and again.reservation == 0.3 and again.discount == 0.9


@pytest.mark.parametrize(
    ("weights", "preferences"),
    [
        ({"price": 0}, {"price": "decreasing"}),
        ({"price": 1}, {}),
        ({"price": 1}, {"price": "up"}),
        ({"colour": 1}, {"colour": "increasing"}),
        ({"colour": 1}, {"colour": {"green": 1.0}}),
        ({"colour": 1}, {"colour": {"red": 2.0}}),
        ({"size": 1}, {"size": "increasing"}),
        ({"price": -1, "quantity": 2}, {"price": "decreasing", "quantity": "increasing"}),
    ],
)
def test_bad_utilities_are_rejected(weights: dict, preferences: dict) -> None:
    with pytest.raises(ValueError):
        LinearAdditiveUtility(make_space(), weights, preferences)


def test_price_utility_reservation_is_the_reservation_price() -> None:
    space = OutcomeSpace([ContinuousIssue("price", 50.0, 150.0, tick=1.0)])
    buyer = price_utility(space, buyer=True, reservation_price=120.0)
    seller = price_utility(space, buyer=False, reservation_price=80.0)
    assert buyer.reservation == pytest.approx(0.3)
    assert seller.reservation == pytest.approx(0.3)
    for price in (50.0, 80.0, 100.0, 120.0, 121.0, 150.0):
        assert buyer.acceptable({"price": price}) == (price <= 120.0)
        assert seller.acceptable({"price": price}) == (price >= 80.0)
    # A buyer whose value is below every price of the range accepts nothing...
    poor = price_utility(space, buyer=True, reservation_price=40.0)
    assert not any(poor.acceptable({"price": p}) for p in (50.0, 51.0, 150.0))
    # ...and one whose value is above the range accepts everything.
    rich = price_utility(space, buyer=True, reservation_price=400.0)
    assert rich.reservation == 0.0 and rich.acceptable({"price": 150.0})


# -- analysis ----------------------------------------------------------------------------


def tiny_example() -> tuple[list[LinearAdditiveUtility], list[dict[str, str]]]:
    """Five outcomes a..e with (u1, u2) = (1, 0), (.8, .4), (.5, .6), (.4, .3), (0, .2)."""
    space = OutcomeSpace([CategoricalIssue("deal", ["a", "b", "c", "d", "e"])])
    u1 = LinearAdditiveUtility(
        space, {"deal": 1}, {"deal": {"a": 1.0, "b": 0.8, "c": 0.5, "d": 0.4, "e": 0.0}}, 0.2
    )
    u2 = LinearAdditiveUtility(
        space, {"deal": 1}, {"deal": {"a": 0.0, "b": 0.4, "c": 0.6, "d": 0.3, "e": 0.2}}, 0.1
    )
    return [u1, u2], space.grid()


def test_pareto_frontier_and_nash_point_by_hand() -> None:
    utilities, outcomes = tiny_example()
    assert [o["deal"] for o in outcomes] == ["a", "b", "c", "d", "e"]
    # d is dominated by c, e by c (and b); a, b, c trade off.
    assert pareto_frontier(utilities, outcomes) == [0, 1, 2]
    # gains over (0.2, 0.1): a infeasible (-0.1), b 0.6*0.3=0.18, c 0.3*0.5=0.15, d 0.04
    assert nash_point(utilities, outcomes) == 1
    assert max_welfare_point(utilities, outcomes) == 1  # 1.2
    # ideal gains (0.6, 0.5): b min(1, .6) = .6 beats c min(.5, 1) = .5
    assert kalai_smorodinsky_point(utilities, outcomes) == 1
    d = outcomes[3]
    assert distance_to_pareto(utilities, outcomes, d) == pytest.approx(math.hypot(0.1, 0.3))
    assert distance_to_pareto(utilities, outcomes, outcomes[2]) == 0.0
    assert distance_to_nash(utilities, outcomes, d) == pytest.approx(math.hypot(0.4, 0.1))
    assert distance_to_nash(utilities, outcomes, outcomes[1]) == 0.0


def test_no_nash_point_without_mutual_gains() -> None:
    utilities, outcomes = tiny_example()
    for u in utilities:
        u.reservation = 0.9
    assert nash_point(utilities, outcomes) is None
    assert distance_to_nash(utilities, outcomes, outcomes[0]) is None
    assert kalai_smorodinsky_point(utilities, outcomes) is None


def test_price_haggling_frontier_is_every_price() -> None:
    space = OutcomeSpace([ContinuousIssue("price", 50.0, 150.0, tick=1.0)])
    buyer = price_utility(space, buyer=True, reservation_price=150.0)
    seller = price_utility(space, buyer=False, reservation_price=50.0)
    grid = space.grid(11)
    assert pareto_frontier([buyer, seller], grid) == list(range(11))
    nash = nash_point([buyer, seller], grid)
    assert nash is not None and grid[nash]["price"] == 100.0
