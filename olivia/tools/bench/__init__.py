"""olivia-bench: the load generator (redis-benchmark for Olivia and Redis)."""

from olivia.tools.bench.main import main

__all__ = ["main"]
