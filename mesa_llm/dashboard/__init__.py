"""The dashboard: a live view of a running scenario and a viewer of recordings (Solara).

Nothing in the package imports it (docs/architecture/layers.md: `dashboard/` may import the model and analysis).
`mesa_llm.dashboard.data` turns a recording prefix (the events of the recording contract, from a
live run or a recording file) into plain data for the panels; it needs neither Solara nor a model.
Solara is imported only by `mesa_llm.dashboard.app` (the ``dashboard`` extra).
"""
