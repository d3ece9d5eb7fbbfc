"""Sign-up that cannot be turned against anyone, over real HTTP: what a stranger types never
reaches the confirmation mail, and the limits count an address's variants as one."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from digest.readers import add_subscriber, suppress
from digest.store.models import Notice
from tests.support.front_door import CONFIRMATIONS_PER_DOMAIN_PER_HOUR, FrontDoor
from tests.support.mail import html_part, mail_to, text_part, wait_for_mail
from tests.support.queries import count, reader_by_email
from tests.support.stack import Stack, settle
from tests.support.samples import TOPICS
from tests.support.web import clear_rate_limits, csrf_token, h1, subscribe

pytestmark = pytest.mark.integration

LURE = "URGENT verify at https://evil.example"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(live: Stack) -> Iterator[None]:
    clear_rate_limits(live)
    yield
    clear_rate_limits(live)  # the hourly counters of 127.0.0.1 must not reach the next module's tests


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


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)  # 60 padded sign-ups: once is enough
def test_the_answer_takes_the_same_time_for_a_new_a_subscribed_and_a_suppressed_address(
        live: Stack, client: httpx.Client) -> None:
    """Medians of 20 sign-ups each, interleaved so the machine's load falls on all three
    alike: within 10 % (a new address costs inserts and a broker round trip, a known one a
    lookup; the answer is padded to DIGEST_SUBSCRIBE_ANSWER_MS)."""
    rounds = 20
    known = [f"known{n}@timing.example" for n in range(rounds)]
    blocked = [f"blocked{n}@timing.example" for n in range(rounds)]
    with live.factory.begin() as session:
        for address in known:
            add_subscriber(session, address, allowed_topics=TOPICS, confirmed=True)
        for address in blocked:
            suppress(session, address, "bounced")
    token = csrf_token(client.get("/subscribe").text)
    times: dict[str, list[float]] = {"new": [], "subscribed": [], "suppressed": []}
    for n in range(rounds):
        if n % 5 == 0:
            clear_rate_limits(live)  # 15 sign-ups from one address per 5 rounds: under the hourly limit
        for kind, address in (("new", f"new{n}@timing.example"), ("subscribed", known[n]),
                              ("suppressed", blocked[n])):
            started = time.perf_counter()
            answer = client.post("/subscribe", data={"csrf_token": token, "email": address})
            times[kind].append(time.perf_counter() - started)
            assert (answer.status_code, h1(answer.text)) == (200, "Check your inbox")
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    assert max(medians.values()) / min(medians.values()) < 1.10, medians
    settle(live)
    assert all(reader_by_email(live, f"new{n}@timing.example") is not None for n in range(rounds))
    assert not any(mail_to(live, address) for address in blocked + known)  # nothing sent to either
