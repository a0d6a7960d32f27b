"""The fake OpenAI-compatible server, now installed as :mod:`mesa_llm.testing.fake_server`
(re-exported here so the tests that import it from ``tests`` keep working)."""

from mesa_llm.testing.fake_server import (
    CREATED,
    FAKE_MODELS,
    FakeOpenAIServer,
    Fault,
    Responder,
    build_completion,
    default_responder,
)

__all__ = ["CREATED", "FAKE_MODELS", "FakeOpenAIServer", "Fault", "Responder", "build_completion", "default_responder"]
