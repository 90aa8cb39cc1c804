"""``python -m lorareg`` runs the CLI."""

from lorareg.cli import main

main()
