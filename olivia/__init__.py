"""Olivia: a distributed in-memory key/value daemon speaking a line protocol."""

__version__ = "0.1.0"

__all__ = ["__version__"]
