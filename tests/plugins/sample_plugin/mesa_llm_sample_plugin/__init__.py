"""mesa_llm test plugin: its scenario folder (``SCENARIOS``), a policy, a metric and an event type."""

from pathlib import Path

#: the folder of this plugin's scenarios (the ``mesa_llm.scenarios`` entry point)
SCENARIOS = Path(__file__).parent / "scenarios"
