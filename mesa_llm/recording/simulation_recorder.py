"""The mesa-llm module path of the recorder: ``from mesa_llm.recording.simulation_recorder import
SimulationRecorder, SimulationEvent`` works as it does in the existing mesa-llm.

Nothing lives here: the recorder is `mesa_llm.recording.recorder`, the event type
`mesa_llm.recording.events`. Importing this module has no side effect.
"""

from mesa_llm.recording.events import SimulationEvent
from mesa_llm.recording.recorder import SimulationRecorder

__all__ = ["SimulationEvent", "SimulationRecorder"]
