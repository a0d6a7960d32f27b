"""The world (the game master): the rules that turn agents' intent into changes of the world.

Exchange rules (:mod:`.exchange`), the negotiation desk (:mod:`.desk`), hard market rules and
the regulator's powers (:mod:`.regulation`), action resolution (:mod:`.resolver`) and
observation (:mod:`.observer`). Each part is handed what it needs (ledger, recorder, rng, rules)
explicitly; none imports the model that runs the step pipeline.
"""
