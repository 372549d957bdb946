"""``python -m forewarn`` runs the command line."""

from forewarn.cli import main

main()
