from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.helpers import LineClient, OliviaProcess

# No per-example deadline: a loaded CI machine must not turn slowness into failures.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="module")
def node() -> Iterator[OliviaProcess]:
    """One daemon shared by a test module; tests use keys of their own."""
    process = OliviaProcess()
    try:
        yield process.start()
    finally:
        process.close()


@pytest.fixture
def client(node: OliviaProcess) -> Iterator[LineClient]:
    with node.client() as line_client:
        yield line_client
