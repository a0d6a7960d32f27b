"""mesa_llm.testing's conformance checks: every built-in rule-based policy passes check_policy and
every shipped scenario passes check_scenario; each check fails, naming the problem, on policies
broken on purpose (the doubles below exist to show the checker catches them)."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import random
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from mesa_llm.actions import CancelOrder, Decision, PlaceOrder
from mesa_llm.agents.observation import Observation
from mesa_llm.agents.policies import BUILTIN_POLICIES, DecisionPolicy
from mesa_llm.agents.policies.negotiator import NegotiatorPolicy
from mesa_llm.agents.policies.zero_intelligence import ZeroIntelligenceConstrained
from mesa_llm.plugins import Plugins, using_plugins
from mesa_llm.scenario import load_scenario, shipped_scenarios
from mesa_llm.testing import check_policy, check_scenario


@pytest.mark.parametrize("cls", [*BUILTIN_POLICIES, NegotiatorPolicy], ids=lambda c: c.name)
def test_every_built_in_rule_based_policy_passes_check_policy(cls: type[DecisionPolicy]) -> None:
    with using_plugins(Plugins(enabled=False)):
        check_policy(cls, steps=2)  # few steps: the suite stays quick (supply_contract's negotiators are slow)


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_every_shipped_scenario_passes_check_scenario(name: str) -> None:
    with using_plugins(Plugins(enabled=False)):
        check_scenario(name, steps=2)


def test_the_sample_plugin_passes_both_checks() -> None:
    try:
        metadata.distribution("mesa-llm-sample-plugin")
    except metadata.PackageNotFoundError:
        if os.environ.get("MESA_LLM_REQUIRE_PLUGINS") == "1":
            pytest.fail("MESA_LLM_REQUIRE_PLUGINS=1 but tests/plugins/sample_plugin is not installed")
        pytest.skip("tests/plugins/sample_plugin is not installed")
    with using_plugins(Plugins(allow=["mesa-llm-sample-plugin"])):
        from mesa_llm_sample_plugin.policy import ReferenceTrader  # type: ignore[import-not-found]

        check_policy(ReferenceTrader, scenario="sample_market")
        check_policy(ReferenceTrader)  # in double_auction, its traders switched to it
        check_scenario("sample_market")


# --------------------------------------------------------------------------- broken on purpose


class UsesRandomModule(ZeroIntelligenceConstrained):
    """Draws from Python's global generator instead of the rng it is given."""

    name: ClassVar[str] = "uses_random_module"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        return super().decide(observation, np.random.default_rng(random.randrange(2**32)))


class MutatesObservation(ZeroIntelligenceConstrained):
    """Writes into the observation it is shown (shared market data included)."""

    name: ClassVar[str] = "mutates_observation"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        observation.market.goods["widget"].price_history.append(0.01)
        return super().decide(observation, rng)


class CancelsWhatIsNotThere(ZeroIntelligenceConstrained):
    """Cancels an order every step, also when it has none (cancel_order is then not available)."""

    name: ClassVar[str] = "cancels_nothing"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        decision = super().decide(observation, rng)
        return Decision(actions=[*decision.actions, CancelOrder(order_id=1)])


class BypassesTheSchema(ZeroIntelligenceConstrained):
    """Builds an order without validation: a negative quantity the tool schema does not admit."""

    name: ClassVar[str] = "bypasses_schema"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        order = PlaceOrder.model_construct(type="place_order", good="widget", side="buy", price=10.0, quantity=-2, lifetime="step")
        return Decision(actions=[order])


class ReturnsADict(ZeroIntelligenceConstrained):
    """Returns a plain dict instead of a Decision."""

    name: ClassVar[str] = "returns_dict"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Any:
        return {"actions": []}


class Crashes(ZeroIntelligenceConstrained):
    """Raises at step 2."""

    name: ClassVar[str] = "crashes"

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        if observation.step == 2:
            raise ZeroDivisionError("division by zero")
        return super().decide(observation, rng)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (UsesRandomModule, "check_policy(UsesRandomModule): not reproducible: at step 1, agent "),
        (MutatesObservation, "check_policy(MutatesObservation): step 1, agent 1 (buyer): decide() changed its observation (market.goods.widget.price_history)"),
        (CancelsWhatIsNotThere, "check_policy(CancelsWhatIsNotThere): step 1, agent 1 (buyer): cancel_order is not one of the observation's available_actions (place_order, send_message, broadcast, wait)"),
        (BypassesTheSchema, "check_policy(BypassesTheSchema): step 1, agent 1 (buyer): place_order arguments {'good': 'widget', 'side': 'buy', 'price': 10.0, 'quantity': -2, 'lifetime': 'step'} are invalid: quantity: Input should be greater than 0"),
        (ReturnsADict, "check_policy(ReturnsADict): step 1, agent 1 (buyer): decide() returned dict, not a Decision"),
        (Crashes, "check_policy(Crashes): step 2, agent 1 (buyer): decide() raised ZeroDivisionError: division by zero"),
    ],
)
def test_check_policy_fails_on_a_broken_policy_and_says_why(cls: type[DecisionPolicy], message: str) -> None:
    with using_plugins(Plugins(enabled=False)), pytest.raises(AssertionError) as info:
        check_policy(cls, steps=3)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_check_policy_needs_a_scenario_that_uses_the_policy() -> None:
    with using_plugins(Plugins(enabled=False)), pytest.raises(AssertionError, match="scenario 'double_auction' has no population using policy 'uses_random_module'"):
        check_policy(UsesRandomModule, scenario="double_auction")
    with pytest.raises(TypeError, match="rule-based policies"):
        from mesa_llm.agents.llm_policy import LLMPolicy

        check_policy(LLMPolicy)


NONDETERMINISTIC = '''
import random
from typing import ClassVar
import numpy as np
from mesa_llm.agents.policies.zero_intelligence import ZeroIntelligenceConstrained

class Drifting(ZeroIntelligenceConstrained):
    name: ClassVar[str] = "drifting"
    def decide(self, observation, rng):
        return super().decide(observation, np.random.default_rng(random.randrange(2**32)))
'''


def test_check_scenario_fails_on_a_scenario_that_does_not_reproduce_or_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a plugin policy that draws from the random module, installed the way entry points are found
    root = tmp_path / "site"
    root.mkdir()
    (root / "drifting_plugin.py").write_text(textwrap.dedent(NONDETERMINISTIC), encoding="utf-8")
    info = root / "drifting_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: drifting-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[mesa_llm.policies]\ndrifting = drifting_plugin:Drifting\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    spec = load_scenario("double_auction").model_dump(mode="json")
    spec["populations"][0]["policy"] = "drifting"
    drifting = tmp_path / "drifting.yaml"
    drifting.write_text(json.dumps(spec), encoding="utf-8")
    with using_plugins(Plugins(path=[str(root)])), pytest.raises(AssertionError) as failed:
        check_scenario(drifting)
    assert str(failed.value).startswith(f"check_scenario({str(drifting)!r}): two runs with seed 42 differ at event ")
    assert "every random draw must come from the model's seeded generator" in str(failed.value)
    spec["populations"][0]["count"] = -1
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(AssertionError, match=r"does not validate: .*invalid.yaml: populations.0.count: Input should be greater than or equal to 0"):
        check_scenario(invalid)
