"""mesa_llm's consumer markets, a plugin: a posted-price mechanism (firms post prices and
advertise; consumers choose by logit demand or adopt by the Bass model), the ``product_launch`` and
``pricing_competition`` scenarios (``SCENARIOS``), pricing policies (``nash``, ``monopoly``,
``penetration``, ``premium``, ``q_learning``) and the ``pricing`` and ``adoption`` metrics.

Nothing is imported here beyond the scenario folder's path: mesa_llm loads each part when a
scenario or a command first needs it."""

from pathlib import Path

#: the folder of this plugin's scenarios (the ``mesa_llm.scenarios`` entry point)
SCENARIOS = Path(__file__).parent / "scenarios"
