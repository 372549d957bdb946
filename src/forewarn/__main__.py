"""``python -m forewarn`` runs the command line."""

from forewarn.cli.main import main

main()
