"""Helpers for the tests of projects built on mesa_llm, above all plugins: conformance checks
in the spirit of PettingZoo's ``api_test``, to call from a plugin's own test suite.

- :func:`check_policy` — a ``DecisionPolicy`` subclass returns schema-valid decisions using only
  the actions its observation offers, decides the same under the same seed, and leaves its
  observation unchanged.
- :func:`check_scenario` — a scenario validates (templates included) and a few steps run twice
  with one seed give identical recordings.

Each raises ``AssertionError`` with a message naming what failed, where (step, agent) and why.
"""

from mesa_llm.testing.conformance import check_policy, check_scenario

__all__ = ["check_policy", "check_scenario"]
