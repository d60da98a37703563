"""``python -m emoji_batch`` runs the command line."""

from emoji_batch.cli import main

main()
