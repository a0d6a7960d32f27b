"""The plugin's tests need the plugin installed (its entry points are how mesa_llm finds it): they skip
without it, unless MESA_LLM_REQUIRE_CONSUMER_MARKETS=1 (set by mesa_llm's .ci/run) makes that a failure."""

from __future__ import annotations

import importlib.metadata as metadata
import os

import pytest

DISTRIBUTION = "mesa-llm-consumer-markets"


@pytest.fixture(autouse=True, scope="module")
def _plugin_installed() -> None:
    try:
        metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        hint = "pip install -e plugins/consumer_markets"
        if os.environ.get("MESA_LLM_REQUIRE_CONSUMER_MARKETS") == "1":
            pytest.fail(f"MESA_LLM_REQUIRE_CONSUMER_MARKETS=1 but {DISTRIBUTION} is not installed: {hint}")
        pytest.skip(f"{DISTRIBUTION} not installed ({hint})")
