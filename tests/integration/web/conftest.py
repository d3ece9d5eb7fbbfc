"""Fixtures for the web tests that need more than the stack's own server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.front_door import FrontDoor, running_front_door
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def front_door(stack: Stack) -> Iterator[FrontDoor]:
    """digest with one embedding origin allowed and a small per-domain confirmation cap."""
    yield from running_front_door(stack)
