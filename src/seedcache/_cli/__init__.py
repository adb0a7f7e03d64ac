"""The ``seedcache`` command line. Each module adds its commands to the one group."""

from __future__ import annotations

from . import _browse, _manage, _refresh, _report, _serve, _transfer
from ._app import cli

__all__ = ["cli", "main"]

# The command modules register themselves on import.
_COMMANDS = (_browse, _manage, _refresh, _report, _serve, _transfer)


def main() -> None:
    """Entry point of the ``seedcache`` script."""
    cli(prog_name="seedcache")
