"""olivia-cli: the command-line client (redis-cli for Olivia)."""

from olivia.tools.cli.main import main

__all__ = ["main"]
