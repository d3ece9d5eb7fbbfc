"""Using `digest serve` over HTTP as a person's browser would: staff accounts and the /login
form, CSRF tokens, and the Redis rate limits that sign-in and sign-up count against."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import redis

from digest import staff
from tests.support.stack import Stack

PASSWORD = "correct horse battery staple"
EDITOR = "editor@example.org"
OPS = "ops@example.org"


def make_user(live: Stack, email: str, role: str) -> int:
    """A staff user with PASSWORD; returns the user's id."""
    with live.factory.begin() as session:
        return staff.create_user(session, email, role, PASSWORD).id


def clear_rate_limits(live: Stack) -> None:
    """The sign-in and subscribe counters and cooldowns live in Redis for an hour: start clean."""
    client = redis.Redis.from_url(live.broker_url)
    keys = list(client.scan_iter("digest:rl:*"))
    if keys:
        client.delete(*keys)
    client.close()


def csrf_token(html: str) -> str:
    """The CSRF token the page's forms carry (one, however many forms there are)."""
    found = re.findall(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    assert len(set(found)) == 1
    return found[0]


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD, *, next_path: str = "/editor") -> httpx.Response:
    """Open /login (for its CSRF token) and post the form; the response is returned unchecked."""
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"csrf_token": csrf_token(page.text), "email": email,
                                        "password": password, "next": next_path})


@contextmanager
def signed_in(base_url: str, email: str, next_path: str = "/ops") -> Iterator[httpx.Client]:
    """An httpx client with a staff session, signed in through the /login form."""
    with httpx.Client(base_url=base_url, timeout=20, follow_redirects=False) as client:
        response = sign_in(client, email, next_path=next_path)
        assert response.status_code == 303 and response.headers["location"] == next_path, response.text
        yield client
