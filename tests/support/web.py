"""Using `digest serve` over HTTP as a person's browser would: the /login form, CSRF tokens,
the Redis rate limits that sign-in and sign-up count against; and a reader's side: the
subscribe form, the confirmation link, RFC 8058 one-click unsubscribes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import redis

from digest.store.models import Subscriber, SubscriberStatus
from tests.support.mail import text_part, wait_for_mail
from tests.support.queries import reader_by_email
from tests.support.smtp import Received
from tests.support.stack import Stack

PASSWORD = "correct horse battery staple"
EDITOR = "editor@example.org"
OPS = "ops@example.org"


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


def submit(client: httpx.Client, page_path: str, action: str, data: dict[str, object] | None = None) -> httpx.Response:
    """Open `page_path` (for its CSRF token) and post `data` to `action`, as the page's form would."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    return client.post(action, data={"csrf_token": csrf_token(page.text), **(data or {})})  # type: ignore[arg-type]


@contextmanager
def signed_in(base_url: str, email: str, next_path: str = "/ops") -> Iterator[httpx.Client]:
    """An httpx client with a staff session, signed in through the /login form."""
    with httpx.Client(base_url=base_url, timeout=20, follow_redirects=False) as client:
        response = sign_in(client, email, next_path=next_path)
        assert response.status_code == 303 and response.headers["location"] == next_path, response.text
        yield client


# ------------------------------------------------------------------ a reader's side


def confirm_link(received: Received, base_url: str) -> str:
    links = re.findall(rf"{re.escape(base_url)}/confirm/[A-Za-z0-9._-]+", text_part(received.message))
    assert len(set(links)) == 1, links
    return links[0]


def one_click_body(encoding: str) -> tuple[bytes, dict[str, str]]:
    """`List-Unsubscribe=One-Click` exactly as a mailbox provider POSTs it (RFC 8058)."""
    if encoding == "multipart":
        boundary = f"----provider{uuid.uuid4().hex}"
        body = (f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
                "\r\n"
                "One-Click\r\n"
                f"--{boundary}--\r\n").encode("ascii")
        return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return b"List-Unsubscribe=One-Click", {"Content-Type": "application/x-www-form-urlencoded"}


def one_click(url: str, encoding: str = "multipart") -> httpx.Response:
    """No cookies, no auth, no redirects followed: a fresh request like a provider's."""
    body, headers = one_click_body(encoding)
    return httpx.post(url, content=body, headers={**headers, "User-Agent": "mailbox-provider/1.0"},
                      follow_redirects=False, timeout=10)


def h1(html: str) -> str:
    headings = re.findall(r"<h1>(.*?)</h1>", html, re.DOTALL)
    assert len(headings) == 1, headings
    return headings[0].replace("&#39;", "'")


def subscribe(client: httpx.Client, email: str, *, name: str = "", topics: tuple[str, ...] = (),
              **headers: str) -> httpx.Response:
    """Open the form (which sets the CSRF cookie) and submit it, as a browser does."""
    page = client.get("/subscribe")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text), "email": email, "name": name, "topics": list(topics)}
    return client.post("/subscribe", data=data, headers=headers)


def subscribe_and_confirm(live: Stack, client: httpx.Client, email: str, **kwargs: object) -> Subscriber:
    assert subscribe(client, email, **kwargs).status_code == 200  # type: ignore[arg-type]
    [received] = wait_for_mail(live, email, subject="Confirm")
    assert client.get(confirm_link(received, live.base_url)).status_code == 200
    subscriber = reader_by_email(live, email)
    assert subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE
    wait_for_mail(live, email, subject="Welcome")  # nothing left in flight for the next test
    return subscriber
