"""``python -m mesa_llm`` runs the command line."""

from mesa_llm.cli import main

main()
