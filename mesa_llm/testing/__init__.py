"""Helpers for the tests of projects built on mesa_llm, above all plugins: conformance checks
in the spirit of PettingZoo's ``api_test``, to call from a plugin's own test suite.

- :func:`check_policy` — a ``DecisionPolicy`` subclass returns schema-valid decisions using only
  the actions its observation offers, decides the same under the same seed, and leaves its
  observation unchanged.
- :func:`check_scenario` — a scenario validates (templates included) and a few steps run twice
  with one seed give identical recordings.

Each raises ``AssertionError`` with a message naming what failed, where (step, agent) and why.

And for tests of your own personas and prompts without a key or network:

- :func:`use_cassette` — record the LLM calls of a block to a cassette file you choose, replay
  them offline (vcrpy, imported only when used); credentials are filtered out of the file.
- :class:`FakeOpenAIServer` — a local OpenAI-compatible server (stdlib only) answering every
  chat request with a valid action, with fault injection; point ``--api-base`` at it.
"""

from mesa_llm.testing.cassettes import RECORD_MODES, use_cassette
from mesa_llm.testing.conformance import check_policy, check_scenario
from mesa_llm.testing.fake_server import FakeOpenAIServer

__all__ = ["RECORD_MODES", "FakeOpenAIServer", "check_policy", "check_scenario", "use_cassette"]
