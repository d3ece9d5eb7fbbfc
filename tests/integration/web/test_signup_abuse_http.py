"""Sign-up that cannot be turned against anyone, over real HTTP: what a stranger types never
reaches the confirmation mail, and the limits count an address's variants as one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.mail import html_part, text_part, wait_for_mail
from tests.support.queries import reader_by_email
from tests.support.stack import Stack
from tests.support.web import clear_rate_limits, h1, subscribe

pytestmark = pytest.mark.integration

LURE = "URGENT verify at https://evil.example"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(live: Stack) -> None:
    clear_rate_limits(live)


@pytest.fixture
def client(live: Stack, web: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web, timeout=10, follow_redirects=False) as c:
        yield c


def test_the_name_typed_at_sign_up_is_nowhere_in_the_confirmation_mail(live: Stack, client: httpx.Client) -> None:
    response = subscribe(client, "target@example.org", name=LURE)
    assert response.status_code == 200 and h1(response.text) == "Check your inbox"
    subscriber = reader_by_email(live, "target@example.org")
    assert subscriber is not None and subscriber.name == LURE  # kept for after the confirmation

    [received] = wait_for_mail(live, "target@example.org")
    message = received.message
    headers = "\n".join(f"{key}: {value}" for key, value in message.items())
    bodies = {"raw": received.data.decode("ascii", "replace"), "headers": headers,
              "text": text_part(message), "html": html_part(message)}
    for where, content in bodies.items():
        for piece in ("URGENT", "evil.example", "verify at"):
            assert piece.lower() not in content.lower(), (where, piece)
    assert message["To"].addresses[0].display_name == ""
    assert message["To"].addresses[0].addr_spec == "target@example.org"
    assert "Hello," in text_part(message)
