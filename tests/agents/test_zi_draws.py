"""ZI traders draw their prices without numpy's scalar ``uniform`` (slow per call); the numbers and
the generator's state after them must be exactly those of ``rng.uniform``."""

from __future__ import annotations

import numpy as np

from mesa_llm.agents.policies.zero_intelligence import _uniform


def test_the_draws_are_rng_uniforms_to_the_bit() -> None:
    ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
    bounds = np.random.default_rng(5)
    for _ in range(20_000):
        low = float(bounds.uniform(-1e6, 1e6)) * float(bounds.choice([1e-9, 1e-3, 1.0]))
        high = low + float(bounds.choice([0.0, 5e-324, 1e-12, 0.01, 1.0, 1e9])) * float(bounds.random())
        got, expected = _uniform(ours, low, high), numpys.uniform(low, high)
        assert got == expected and type(got) is type(expected), (low, high)
    assert ours.bit_generator.state == numpys.bit_generator.state
    # a price range of one tick: the lower bound itself
    assert _uniform(np.random.default_rng(0), 61.46, 61.46) == 61.46
