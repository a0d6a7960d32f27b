"""mesa_llm test plugin that fails to import, on purpose."""

raise RuntimeError("mesa_llm_broken_plugin fails to import on purpose (a test fixture)")
