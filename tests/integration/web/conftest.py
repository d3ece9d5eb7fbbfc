"""Fixtures for the web tests that need more than the stack's own server: another origin
(the front door) and a browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import Browser, BrowserContext

from tests.support.browser import launch_chromium, local_context
from tests.support.front_door import FrontDoor, running_front_door
from tests.support.stack import Stack
from tests.support.web import clear_rate_limits


@pytest.fixture(scope="session")
def front_door(stack: Stack) -> Iterator[FrontDoor]:
    """digest with one embedding origin allowed and a small per-domain confirmation cap."""
    yield from running_front_door(stack)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, once per test module."""
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, live: Stack, web: str) -> Iterator[BrowserContext]:
    """A fresh browser profile on the stack's web server, sign-in limits cleared."""
    clear_rate_limits(live)
    yield from local_context(browser, base_url=web)


@pytest.fixture
def clean_clicks(live: Stack) -> Iterator[redis.Redis]:
    """Redis with no click counts left from an earlier test; the client, for the test's own looks."""
    client = redis.Redis.from_url(live.broker_url)
    keys = list(client.scan_iter("digest:clk:*"))
    if keys:
        client.delete(*keys)
    yield client
    client.close()
