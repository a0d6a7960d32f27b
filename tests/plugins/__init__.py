"""Plugin tests: the test plugins under this folder (sample_plugin, broken_plugin), discovery,
and the conformance checks of mesa_llm.testing."""
