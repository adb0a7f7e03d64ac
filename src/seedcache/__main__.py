"""``python -m seedcache`` runs the command line."""

from seedcache._cli import main

main()
