"""Sign-up that cannot be turned against anyone, over real HTTP: what a stranger types never
reaches the confirmation mail, and the limits count an address's variants as one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from digest.store.models import Notice
from tests.support.front_door import CONFIRMATIONS_PER_DOMAIN_PER_HOUR, FrontDoor
from tests.support.mail import html_part, mail_to, text_part, wait_for_mail
from tests.support.queries import count, reader_by_email
from tests.support.stack import Stack, settle
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


def test_plus_tags_and_gmail_dots_are_one_mailbox_for_the_limit_and_the_cooldown(
        live: Stack, client: httpx.Client) -> None:
    answers = [subscribe(client, f"victim+{n}@example.org").status_code for n in range(10)]
    assert answers == [200] * 5 + [429] * 5  # DIGEST_SUBSCRIBE_LIMIT_PER_ADDRESS_PER_HOUR: 5
    wait_for_mail(live, "victim+0@example.org")
    settle(live)
    victim_mail = [r for address, got in live.smtp.by_recipient().items() if address.startswith("victim") for r in got]
    assert len(victim_mail) == 1  # one confirmation per mailbox per cooldown, whatever the tag
    assert count(live, Notice) == 1

    clear_rate_limits(live)
    spellings = ["jane.doe@gmail.com", "janedoe@gmail.com", "j.a.n.e.doe+news@googlemail.com",
                 "JaneDoe@GMail.com", "jane.d.o.e@gmail.com"]
    assert [subscribe(client, a).status_code for a in spellings] == [200] * 5
    assert subscribe(client, "j.anedoe+x@gmail.com").status_code == 429
    # Dots count only where the provider ignores them.
    assert subscribe(client, "jane.doe@example.org").status_code == 200
    assert subscribe(client, "janedoe@example.org").status_code == 200


def test_confirmations_to_one_domain_stop_at_the_hourly_cap_with_the_same_answer(
        live: Stack, front_door: FrontDoor) -> None:
    addresses = [f"staff{n}@target.example" for n in range(CONFIRMATIONS_PER_DOMAIN_PER_HOUR + 2)]
    with httpx.Client(base_url=front_door.base_url, timeout=10) as c:
        answers = [subscribe(c, address) for address in addresses]
        other = subscribe(c, "someone@elsewhere.example")
    assert {(r.status_code, h1(r.text)) for r in answers} == {(200, "Check your inbox")}
    assert other.status_code == 200
    wait_for_mail(live, "someone@elsewhere.example")
    wait_for_mail(live, addresses[CONFIRMATIONS_PER_DOMAIN_PER_HOUR - 1])
    settle(live)
    sent = [a for a in addresses if mail_to(live, a)]
    assert sent == addresses[:CONFIRMATIONS_PER_DOMAIN_PER_HOUR]
    # Those over the cap are still pending readers: a later sign-up sends their confirmation.
    assert all(reader_by_email(live, a) is not None for a in addresses)
