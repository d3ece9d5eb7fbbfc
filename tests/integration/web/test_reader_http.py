"""The reader pages over real HTTP: `digest serve` under uvicorn, the Celery worker sending
the confirmation, welcome and digest emails to the aiosmtpd server, Redis rate limits.

Requests go through httpx to the uvicorn process, as a browser or a mailbox provider
would send them; what a reader receives is read back from the SMTP server.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from digest import readers
from digest.delivery.pipeline import release_due
from digest.infra.tokens import CONFIRM_SALT
from digest.readers import add_subscriber
from digest.store.models import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Frequency,
    Notice,
    Subscriber,
    SubscriberStatus,
    Suppression,
    utcnow,
)
from tests.support.factories import add_active_reader, due_edition, seed_readers, seed_stories, send_due_edition
from tests.support.mail import html_part, mail_to, text_part, wait_for_mail
from tests.support.queries import count, reader_by_email, reader_by_id, statuses
from tests.support.samples import TOPICS
from tests.support.stack import Stack, settle
from tests.support.web import (
    clear_rate_limits,
    confirm_link,
    csrf_token,
    h1,
    one_click,
    one_click_body,
    subscribe,
    subscribe_and_confirm,
)

pytestmark = pytest.mark.integration

USER_AGENT = "digest-web-tests/1.0 (httpx)"
FORM_LIMIT_BYTES = 64 * 1024
CONFIRM_MAX_AGE_DAYS = 7  # DIGEST_CONFIRM_TOKEN_MAX_AGE_DAYS' default, which the server runs with


# ------------------------------------------------------------------ helpers


def old_confirm_token(secret: str, subscriber: Subscriber, age: timedelta) -> str:
    """A confirmation token exactly as digest.infra.tokens makes it, but issued `age` ago."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age.total_seconds())

    serializer = URLSafeTimedSerializer(secret, salt=CONFIRM_SALT, signer=Backdated)
    return serializer.dumps([subscriber.id, subscriber.token[-12:]])


class _Labels(HTMLParser):
    """The ids of visible inputs and the ids labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str | None] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("input", "select", "textarea") and values.get("type") != "hidden":
            self.controls.append(values.get("id"))
        if tag == "label" and values.get("for"):
            self.labelled.add(values["for"])  # type: ignore[arg-type]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def _fresh_rate_limits(live: Stack) -> None:
    clear_rate_limits(live)


@pytest.fixture
def client(live: Stack, web: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web, headers={"User-Agent": USER_AGENT}, timeout=10,
                      follow_redirects=False) as c:
        yield c


@pytest.fixture
def secret(live: Stack) -> str:
    return live.env()["DIGEST_SECRET_KEY"]


# ------------------------------------------------------------------ subscribe


def test_subscribe_form_has_labels_csrf_field_and_a_strict_cookie(client: httpx.Client) -> None:
    response = client.get("/subscribe")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    assert h1(html) == "Get the featured stories in your email"
    assert '<form method="post" action="/subscribe"' in html
    assert csrf_token(html)
    parser = _Labels()
    parser.feed(html)
    assert parser.controls, "no inputs found"
    assert None not in parser.controls, "an input without an id cannot have a <label for>"
    assert set(parser.controls) <= parser.labelled, set(parser.controls) - parser.labelled
    assert set(re.findall(r'name="topics" value="([^"]+)"', html)) == set(TOPICS)
    assert readers.CONSENT_TEXT in html

    [cookie] = response.headers.get_list("set-cookie")
    name, _, attributes = cookie.partition(";")
    assert name.startswith("digest_csrf=") and len(name) > len("digest_csrf=") + 16
    flags = {part.strip().lower() for part in attributes.split(";")}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    # The same visitor keeps the same cookie: a second tab does not invalidate the first.
    again = client.get("/subscribe")
    assert again.cookies.get("digest_csrf") in (None, response.cookies["digest_csrf"])
    assert client.cookies["digest_csrf"] == response.cookies["digest_csrf"]


def test_subscribe_creates_a_pending_reader_with_consent_record_and_sends_the_confirmation(
        live: Stack, client: httpx.Client) -> None:
    address = "New.Reader@Example.org"
    response = subscribe(client, address, name="Ada", topics=("science", "politics"))
    assert response.status_code == 200
    assert h1(response.text) == "Check your inbox"
    assert f"works for {CONFIRM_MAX_AGE_DAYS} days" in response.text

    subscriber = reader_by_email(live, address)
    assert subscriber is not None
    assert subscriber.status == SubscriberStatus.PENDING
    assert subscriber.email == "New.Reader@example.org"  # the domain is normalised, the local part kept
    assert subscriber.name == "Ada"
    assert subscriber.topics == ["politics", "science"]
    assert subscriber.consent_source == "subscribe-page-v1"
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
    assert (event.kind, event.channel, event.form) == ("subscribe", "form", "subscribe-page-v1")
    assert event.ip == "127.0.0.1"
    assert event.user_agent == USER_AGENT
    assert event.consent_text == readers.CONSENT_TEXT
    assert event.consent_version == readers.CONSENT_VERSION
    assert event.detail is not None and event.detail["topics"] == ["politics", "science"]
    assert abs(event.at - utcnow()) < timedelta(minutes=1)

    [received] = wait_for_mail(live, "New.Reader@example.org")
    message = received.message
    assert message["Subject"] == "Confirm your subscription to Political IQ"
    assert message["To"].addresses[0].addr_spec == "New.Reader@example.org"
    assert message["To"].addresses[0].display_name == ""  # typed text waits for the confirmation
    link = confirm_link(received, live.base_url)
    assert f'href="{link}"' in html_part(message)
    assert "Hello," in text_part(message) and "Ada" not in text_part(message)
    assert f"works for {CONFIRM_MAX_AGE_DAYS} days" in text_part(message)


def test_the_answer_is_the_same_for_new_active_and_erased_addresses(live: Stack, client: httpx.Client) -> None:
    add_active_reader(live, "active@example.org")
    with live.factory.begin() as session:
        leaver = add_subscriber(session, "erased@example.org", allowed_topics=TOPICS, confirmed=True)
        readers.erase(session, leaver, readers.RequestContext(channel="preferences"))
    before = {a: reader_by_email(live, a) for a in ("active@example.org", "erased@example.org")}
    assert before["erased@example.org"] is None  # nothing left under that address

    answers = {address: subscribe(client, address)
               for address in ("fresh@example.org", "active@example.org", "erased@example.org")}

    def shape(r: httpx.Response) -> tuple[int, str, dict[str, str]]:
        return r.status_code, r.text, {k: v for k, v in r.headers.items() if k != "date"}

    first = shape(answers["fresh@example.org"])
    assert first[0] == 200 and h1(first[1]) == "Check your inbox"
    assert all(shape(r) == first for r in answers.values())

    wait_for_mail(live, "fresh@example.org")
    wait_for_mail(live, "erased@example.org")  # a new consent asked for, like anyone new
    settle(live)
    assert set(live.smtp.by_recipient()) == {"fresh@example.org", "erased@example.org"}
    active = reader_by_email(live, "active@example.org")
    assert active is not None and active.status == SubscriberStatus.ACTIVE
    assert count(live, Notice, Notice.subscriber_id == active.id) == 0
    back = reader_by_email(live, "erased@example.org")
    assert back is not None and back.status == SubscriberStatus.PENDING
    assert count(live, Subscriber) == 4  # active, the erased placeholder, fresh, the one back


def test_a_second_request_within_the_cooldown_sends_no_second_confirmation(
        live: Stack, client: httpx.Client) -> None:
    for _ in range(3):
        assert subscribe(client, "twice@example.org").status_code == 200
    wait_for_mail(live, "twice@example.org")
    settle(live)
    assert len(mail_to(live, "twice@example.org")) == 1
    subscriber = reader_by_email(live, "twice@example.org")
    assert subscriber is not None
    assert count(live, Notice, Notice.subscriber_id == subscriber.id) == 1
    # Each request is still on the consent record.
    assert count(live, ConsentEvent, ConsentEvent.subscriber_id == subscriber.id) == 3


def test_over_the_per_address_limit_the_answer_is_429(live: Stack, client: httpx.Client) -> None:
    spellings = ["limit@example.org", "LIMIT@example.org", "Limit@Example.org", "limit@EXAMPLE.org",
                 "limit@example.ORG"]
    for address in spellings:  # five, the default limit: the key is case-insensitive
        assert subscribe(client, address).status_code == 200
    refused = subscribe(client, "limit@example.org")
    assert refused.status_code == 429
    assert h1(refused.text) == "Too many attempts"
    assert refused.headers["content-type"].startswith("text/html")
    # Another address from the same place is not refused: this was the per-address limit.
    assert subscribe(client, "other@example.org").status_code == 200
    settle(live)
    assert len(mail_to(live, "limit@example.org")) == 1


# ------------------------------------------------------------------ confirm


def test_confirm_link_activates_sends_the_welcome_and_says_what_comes_next(
        live: Stack, client: httpx.Client) -> None:
    with live.factory.begin() as session:
        session.add(Edition(subject="Next", send_at=utcnow() + timedelta(days=2),
                            status=EditionStatus.SCHEDULED))
    assert subscribe(client, "confirm@example.org", name="Grace", topics=("world",)).status_code == 200
    [received] = wait_for_mail(live, "confirm@example.org")
    link = confirm_link(received, live.base_url)

    page = httpx.get(link, headers={"User-Agent": USER_AGENT}, timeout=10)  # another device: no cookie
    assert page.status_code == 200
    assert h1(page.text) == "You're subscribed"
    assert "Your first digest arrives with the next edition, on" in page.text
    assert "UTC" in page.text
    assert "You chose: world." in page.text
    subscriber = reader_by_email(live, "confirm@example.org")
    assert subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE
    assert subscriber.confirmed_at is not None
    assert f'href="/preferences/{subscriber.token}"' in page.text

    [welcome] = wait_for_mail(live, "confirm@example.org", subject="Welcome")
    assert welcome.message["Subject"] == "Welcome to Political IQ: you're subscribed"
    assert f"{live.base_url}/preferences/{subscriber.token}" in text_part(welcome.message)
    assert "You chose: world." in text_part(welcome.message)
    with live.factory() as session:
        kinds = [(e.kind, e.channel, e.form) for e in session.scalars(
            select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id).order_by(ConsentEvent.id))]
    assert kinds == [("subscribe", "form", "subscribe-page-v1"), ("confirm", "form", "confirm-link")]

    # Opening the link again (a mail scanner, a second click) shows the page, sends nothing.
    assert client.get(link).status_code == 200
    settle(live)
    assert len(mail_to(live, "confirm@example.org")) == 2
    assert count(live, ConsentEvent, ConsentEvent.subscriber_id == subscriber.id) == 2


def test_an_altered_confirm_token_is_400_and_changes_nothing(live: Stack, client: httpx.Client) -> None:
    assert subscribe(client, "altered@example.org").status_code == 200
    [received] = wait_for_mail(live, "altered@example.org")
    link = confirm_link(received, live.base_url)
    token = link.rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(".")
    middle = len(signature) // 2  # not the last character: its spare bits may not count
    altered = [payload + "." + signature[:middle] + ("A" if signature[middle] != "A" else "B")
               + signature[middle + 1:],
               ("x" if token[0] != "x" else "y") + token[1:],
               token[:-5],
               token + "AAAA"]
    for bad in altered:
        response = client.get(f"/confirm/{bad}")
        assert response.status_code == 400, bad
        assert h1(response.text) == "Link not recognised"
    subscriber = reader_by_email(live, "altered@example.org")
    assert subscriber is not None and subscriber.status == SubscriberStatus.PENDING
    assert count(live, Notice, Notice.subscriber_id == subscriber.id, Notice.kind == "welcome") == 0
    assert count(live, ConsentEvent, ConsentEvent.subscriber_id == subscriber.id) == 1


def test_an_expired_confirm_token_is_410_and_a_fresh_one_still_works(
        live: Stack, client: httpx.Client, secret: str) -> None:
    assert subscribe(client, "late@example.org").status_code == 200
    subscriber = reader_by_email(live, "late@example.org")
    assert subscriber is not None

    expired = old_confirm_token(secret, subscriber, timedelta(days=CONFIRM_MAX_AGE_DAYS, hours=1))
    response = client.get(f"/confirm/{expired}")
    assert response.status_code == 410
    assert h1(response.text) == "This link has expired"
    assert 'href="/subscribe"' in response.text
    assert reader_by_email(live, "late@example.org").status == SubscriberStatus.PENDING  # type: ignore[union-attr]

    # The same construction, a day younger than the limit, is accepted: the 410 above is
    # about age, not about a token this test built wrongly.
    recent = old_confirm_token(secret, subscriber, timedelta(days=CONFIRM_MAX_AGE_DAYS - 1))
    assert client.get(f"/confirm/{recent}").status_code == 200
    assert reader_by_email(live, "late@example.org").status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
    wait_for_mail(live, "late@example.org", subject="Welcome")


def test_tokens_are_scoped_confirm_and_unsubscribe_do_not_stand_in_for_each_other(
        live: Stack, client: httpx.Client) -> None:
    assert subscribe(client, "scoped@example.org").status_code == 200
    [received] = wait_for_mail(live, "scoped@example.org")
    confirm_token = confirm_link(received, live.base_url).rsplit("/", 1)[1]
    subscriber = reader_by_email(live, "scoped@example.org")
    assert subscriber is not None

    assert client.get(f"/unsubscribe/{confirm_token}").status_code == 404
    assert client.get(f"/preferences/{confirm_token}").status_code == 404
    assert one_click(f"{live.base_url}/unsubscribe/{confirm_token}").status_code == 404
    response = client.get(f"/confirm/{subscriber.token}")
    assert response.status_code == 400
    assert h1(response.text) == "Link not recognised"
    after = reader_by_email(live, "scoped@example.org")
    assert after is not None and after.status == SubscriberStatus.PENDING


# ------------------------------------------------------------------ unsubscribe


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_rfc8058_one_click_post_unsubscribes_with_a_plain_200(live: Stack, web: str, encoding: str) -> None:
    subscriber = add_active_reader(live, f"one-click-{encoding}@example.org")
    keeper = add_active_reader(live, f"keeper-{encoding}@example.org")
    url = f"{web}/unsubscribe/{subscriber.token}"

    response = one_click(url, encoding)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert response.headers["content-type"].startswith("text/plain")
    after = reader_by_id(live, subscriber.id)
    assert after.status == SubscriberStatus.UNSUBSCRIBED
    assert after.unsubscribe_channel == "one-click"
    assert after.unsubscribed_at is not None
    assert reader_by_id(live, keeper.id).status == SubscriberStatus.ACTIVE

    again = one_click(url, encoding)  # providers retry; the answer stays the same
    assert again.status_code == 200
    assert "location" not in again.headers and "set-cookie" not in again.headers
    assert reader_by_id(live, subscriber.id).unsubscribed_at == after.unsubscribed_at
    with live.factory() as session:
        events = list(session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id,
                                                                 ConsentEvent.kind == "unsubscribe")))
    assert [(e.channel, e.user_agent) for e in events] == [("one-click", "mailbox-provider/1.0")]


def test_one_click_from_behind_a_proxy_with_an_odd_forwarded_address_still_unsubscribes(
        live: Stack, web: str) -> None:
    # `digest serve` takes the client address from X-Forwarded-For (its proxy is trusted);
    # whatever that holds, the unsubscribe is recorded, the address kept at its column's 64.
    subscriber = add_active_reader(live, "proxied@example.org")
    body, headers = one_click_body("urlencoded")
    response = httpx.post(f"{web}/unsubscribe/{subscriber.token}", content=body, timeout=10,
                          headers={**headers, "X-Forwarded-For": "2001:db8::" + "f" * 90})
    assert response.status_code == 200
    assert reader_by_id(live, subscriber.id).status == SubscriberStatus.UNSUBSCRIBED
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id,
                                                             ConsentEvent.kind == "unsubscribe"))
    assert event.ip == ("2001:db8::" + "f" * 90)[:64]


def test_the_unsubscribe_page_get_changes_nothing_and_its_button_needs_csrf(
        live: Stack, client: httpx.Client) -> None:
    subscriber = add_active_reader(live, "page@example.org")
    page = client.get(f"/unsubscribe/{subscriber.token}")
    assert page.status_code == 200
    assert h1(page.text) == "Unsubscribe?"
    assert "page@example.org" in page.text
    assert f'<form method="post" action="/unsubscribe/{subscriber.token}">' in page.text
    assert re.search(r'<button type="submit"[^>]*>Unsubscribe</button>', page.text)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert reader_by_id(live, subscriber.id).status == SubscriberStatus.ACTIVE  # a GET (a link scanner) is harmless

    # The form without its token, and with a token minted for a different cookie: 403.
    no_token = client.post(f"/unsubscribe/{subscriber.token}", data={})
    assert no_token.status_code == 403
    assert h1(no_token.text) == "Please try again"
    with httpx.Client(base_url=str(client.base_url), timeout=10) as stranger:
        foreign = csrf_token(stranger.get("/subscribe").text)
    assert client.post(f"/unsubscribe/{subscriber.token}", data={"csrf_token": foreign}).status_code == 403
    assert reader_by_id(live, subscriber.id).status == SubscriberStatus.ACTIVE

    done = client.post(f"/unsubscribe/{subscriber.token}", data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 200
    assert h1(done.text) == "You're unsubscribed"
    after = reader_by_id(live, subscriber.id)
    assert (after.status, after.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "page")

    # Coming back to the link shows where things stand, with no button.
    back = client.get(f"/unsubscribe/{subscriber.token}")
    assert back.status_code == 200
    assert h1(back.text) == "You're not subscribed"
    assert "<form" not in back.text


def test_unsubscribe_while_an_edition_is_sending_skips_the_reader(live: Stack, web: str) -> None:
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 12, prefix="sending")
    leaver = reader_by_email(live, addresses[5])
    assert leaver is not None
    edition_id = due_edition(live.factory)
    batches: list[tuple[int, int, int]] = []
    assert release_due(live.factory, utcnow(), 5, lambda *args: batches.append(args)) == [edition_id]
    assert len(batches) == 3
    assert statuses(live, edition_id)[leaver.email] == "queued"

    assert one_click(f"{web}/unsubscribe/{leaver.token}").status_code == 200
    for args in batches:
        live.client.send_task("digest.send_batch", args=list(args))
    live.wait_for_edition(edition_id)

    received = live.smtp.by_recipient()
    assert leaver.email not in received
    assert sorted(received) == sorted(a for a in addresses if a != leaver.email)
    outcome = statuses(live, edition_id)
    assert outcome.pop(leaver.email) == "skipped"
    assert set(outcome.values()) == {"sent"}


# ------------------------------------------------------------------ preferences, data, erase


def _preferences_form(client: httpx.Client, token: str) -> str:
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200
    assert h1(page.text) == "Your preferences"
    return csrf_token(page.text)


def test_preferences_change_topics_frequency_pause_and_name(live: Stack, client: httpx.Client) -> None:
    subscriber = add_active_reader(live, "prefs@example.org", name="Old Name", topics=["sports"])
    csrf = _preferences_form(client, subscriber.token)
    page = client.get(f"/preferences/{subscriber.token}").text
    assert 'value="sports" checked' in page and 'value="every" checked' in page
    parser = _Labels()
    parser.feed(page)
    assert set(parser.controls) <= parser.labelled

    saved = client.post(f"/preferences/{subscriber.token}", data={
        "csrf_token": csrf, "name": "  New   Name ", "topics": ["science", "health"],
        "frequency": "weekly", "pause_weeks": "2"})
    assert saved.status_code == 200
    assert "Saved." in saved.text
    after = reader_by_id(live, subscriber.id)
    assert after.name == "New Name"
    assert after.topics == ["health", "science"]
    assert after.frequency == Frequency.WEEKLY
    assert after.paused_until is not None
    assert abs(after.paused_until - (utcnow() + timedelta(days=14))) < timedelta(minutes=2)
    assert after.status == SubscriberStatus.ACTIVE
    assert 'value="science" checked' in saved.text and 'value="weekly" checked' in saved.text
    assert "Paused until" in saved.text
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id,
                                                             ConsentEvent.kind == "preferences"))
    assert event.channel == "preferences"
    assert event.detail is not None
    assert (event.detail["topics"], event.detail["frequency"], event.detail["pause_weeks"]) == (
        ["health", "science"], "weekly", 2)

    resumed = client.post(f"/preferences/{subscriber.token}", data={"csrf_token": csrf, "action": "resume"})
    assert resumed.status_code == 200 and "Saved." in resumed.text
    assert reader_by_id(live, subscriber.id).paused_until is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("topics", "astrology", "unknown topic"),
    ("name", "Evil\r\nBcc: victim@example.org", "single line"),
    ("name", "Line\nbreak", "single line"),
    ("frequency", "hourly", "frequency must be"),
    ("pause_weeks", "-1", "choose how many weeks"),
    ("pause_weeks", "99", "pause must be between"),
])
def test_bad_preferences_are_a_400_page_and_change_nothing(
        live: Stack, client: httpx.Client, field: str, value: str, message: str) -> None:
    subscriber = add_active_reader(live, "strict@example.org", name="Kept", topics=["world"])
    data = {"csrf_token": _preferences_form(client, subscriber.token), "name": "Kept",
            "topics": "world", "frequency": "every", "pause_weeks": "0", field: value}
    response = client.post(f"/preferences/{subscriber.token}", data=data)
    assert response.status_code == 400
    assert h1(response.text) == "Your preferences"
    assert message in response.text
    assert "Saved." not in response.text
    after = reader_by_id(live, subscriber.id)
    assert (after.name, after.topics, after.frequency, after.paused_until) == (
        "Kept", ["world"], Frequency.EVERY, None)
    assert count(live, ConsentEvent, ConsentEvent.subscriber_id == subscriber.id,
                 ConsentEvent.kind == "preferences") == 0


def test_preferences_post_needs_csrf(live: Stack, client: httpx.Client) -> None:
    subscriber = add_active_reader(live, "csrf-prefs@example.org")
    _preferences_form(client, subscriber.token)
    response = client.post(f"/preferences/{subscriber.token}", data={"frequency": "weekly"})
    assert response.status_code == 403
    assert reader_by_id(live, subscriber.id).frequency == Frequency.EVERY


def test_my_data_download_has_profile_consent_records_and_deliveries(live: Stack, client: httpx.Client) -> None:
    subscriber = subscribe_and_confirm(live, client, "mine@example.org", name="Mina", topics=("culture",))
    with live.factory.begin() as session:
        edition = Edition(subject="Past edition", send_at=utcnow(), status=EditionStatus.SENT)
        session.add(edition)
        session.flush()
        session.add(Delivery(edition_id=edition.id, subscriber_id=subscriber.id, status=DeliveryStatus.SENT,
                             sent_at=utcnow(), message_id="<digest.test@news.example.com>", attempts=1))
        edition_id = edition.id

    response = client.get(f"/preferences/{subscriber.token}/data.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert {"profile", "consent_records", "deliveries"} <= set(data)
    profile = data["profile"]
    assert (profile["email"], profile["name"], profile["status"], profile["topics"]) == (
        "mine@example.org", "Mina", "active", ["culture"])
    assert profile["consent_source"] == "subscribe-page-v1"
    assert [(c["kind"], c["channel"]) for c in data["consent_records"]] == [("subscribe", "form"), ("confirm", "form")]
    subscribed = data["consent_records"][0]
    assert subscribed["consent_text"] == readers.CONSENT_TEXT
    assert subscribed["consent_version"] == readers.CONSENT_VERSION
    assert subscribed["ip"] == "127.0.0.1" and subscribed["user_agent"] == USER_AGENT
    assert data["deliveries"] == [{"edition_id": edition_id, "status": "sent",
                                   "sent_at": data["deliveries"][0]["sent_at"],
                                   "message_id": "<digest.test@news.example.com>"}]
    assert data["deliveries"][0]["sent_at"]
    assert {n["kind"] for n in data["notices"]} == {"confirm", "welcome"}


def test_erase_forgets_the_reader_and_only_a_new_confirmed_sign_up_brings_the_address_back(
        live: Stack, client: httpx.Client) -> None:
    address = "forget.me@example.org"
    subscriber = subscribe_and_confirm(live, client, address, name="Forgettable", topics=("health",))
    wait_for_mail(live, address, subject="Welcome")
    csrf = _preferences_form(client, subscriber.token)

    unticked = client.post(f"/preferences/{subscriber.token}/erase", data={"csrf_token": csrf})
    assert unticked.status_code == 400
    assert reader_by_id(live, subscriber.id).erased_at is None
    assert client.post(f"/preferences/{subscriber.token}/erase", data={"confirm": "yes"}).status_code == 403

    erased = client.post(f"/preferences/{subscriber.token}/erase", data={"csrf_token": csrf, "confirm": "yes"})
    assert erased.status_code == 200
    assert h1(erased.text) == "Your data is deleted"
    after = reader_by_id(live, subscriber.id)
    assert after.email == after.email_key == f"erased-{subscriber.id}@erased.invalid"
    assert after.name is None and after.topics == [] and after.erased_at is not None
    assert after.status == SubscriberStatus.UNSUBSCRIBED
    assert after.token != subscriber.token
    with live.factory() as session:
        suppression = session.get(Suppression, hashlib.sha256(address.lower().encode()).hexdigest())
        assert suppression is not None and suppression.reason == "erased"
        leftovers = session.execute(select(ConsentEvent.ip, ConsentEvent.user_agent)
                                    .where(ConsentEvent.subscriber_id == subscriber.id)).all()
        assert leftovers and all(ip is None and agent is None for ip, agent in leftovers)
        assert session.scalar(select(func.count()).select_from(Subscriber)
                              .where(func.lower(Subscriber.email).contains("forget"))) == 0
    for path in (f"/preferences/{subscriber.token}", f"/unsubscribe/{subscriber.token}",
                 f"/preferences/{subscriber.token}/data.json"):
        assert client.get(path).status_code == 404, path

    # The block stops imports and staff from adding the address back, not its owner: a
    # sign-up asks them to confirm like anyone new, and their confirmation lifts it.
    with live.factory.begin() as session, pytest.raises(readers.Suppressed):
        add_subscriber(session, address, allowed_topics=TOPICS, confirmed=True)
    live.smtp.clear()
    clear_rate_limits(live)  # the sign-up form's cooldown per address: this test's first sign-up was just now
    again = subscribe(client, "Forget.Me@EXAMPLE.org", name="Back again")
    assert again.status_code == 200
    assert h1(again.text) == "Check your inbox"
    [received] = wait_for_mail(live, "Forget.Me@example.org", subject="Confirm")
    back = reader_by_email(live, "Forget.Me@example.org")
    assert back is not None and back.id != subscriber.id and back.status == SubscriberStatus.PENDING
    with live.factory() as session:
        assert session.get(Suppression, hashlib.sha256(address.lower().encode()).hexdigest()) is not None
    assert client.get(confirm_link(received, live.base_url)).status_code == 200
    assert reader_by_id(live, back.id).status == SubscriberStatus.ACTIVE
    with live.factory() as session:
        assert session.get(Suppression, hashlib.sha256(address.lower().encode()).hexdigest()) is None
        kinds = session.execute(select(ConsentEvent.kind, ConsentEvent.detail)
                                .where(ConsentEvent.subscriber_id == back.id).order_by(ConsentEvent.id)).all()
    assert [(kind, detail.get("lifted_block") if detail else None) for kind, detail in kinds] == [
        ("subscribe", None), ("confirm", True)]
    wait_for_mail(live, "Forget.Me@example.org", subject="Welcome")


def test_an_unsubscribed_readers_preferences_offer_to_subscribe_again_and_save_nothing(
        live: Stack, client: httpx.Client) -> None:
    subscriber = subscribe_and_confirm(live, client, "leaver@example.org", topics=("health",))
    csrf = _preferences_form(client, subscriber.token)
    assert client.post(f"/unsubscribe/{subscriber.token}", data={"csrf_token": csrf, "from": "preferences"}
                       ).status_code == 200
    page = client.get(f"/preferences/{subscriber.token}").text
    assert "You are unsubscribed" in page and "Subscribe again" in page
    assert 'name="topics"' not in page and "Save preferences" not in page  # no choices that would change nothing

    saved = client.post(f"/preferences/{subscriber.token}", data={"csrf_token": csrf, "topics": ["science"],
                                                                  "frequency": "every", "pause_weeks": "0"})
    assert saved.status_code == 409 and "Subscribe again" in saved.text
    assert reader_by_id(live, subscriber.id).status == SubscriberStatus.UNSUBSCRIBED
    assert reader_by_id(live, subscriber.id).topics == ["health"]

    live.smtp.clear()
    again = client.post(f"/preferences/{subscriber.token}", data={"csrf_token": csrf, "action": "resubscribe"})
    assert again.status_code == 200 and "we sent a link" in again.text
    assert reader_by_id(live, subscriber.id).status == SubscriberStatus.PENDING
    [received] = wait_for_mail(live, "leaver@example.org", subject="Confirm")
    assert client.get(confirm_link(received, live.base_url)).status_code == 200
    back = reader_by_id(live, subscriber.id)
    assert back.status == SubscriberStatus.ACTIVE and back.topics == ["health"]
    with live.factory() as session:
        kinds = list(session.scalars(select(ConsentEvent.kind).where(ConsentEvent.subscriber_id == subscriber.id)
                                     .order_by(ConsentEvent.id)))
    assert kinds[-2:] == ["subscribe", "confirm"]  # a new consent, recorded as such
    wait_for_mail(live, "leaver@example.org", subject="Welcome")


def test_a_bounced_readers_preferences_say_so_and_offer_no_way_back(live: Stack, client: httpx.Client) -> None:
    subscriber = add_active_reader(live, "gone@example.org")
    with live.factory.begin() as session:
        readers.bounce_readers(session, [subscriber.id])
    page = client.get(f"/preferences/{subscriber.token}").text
    assert "We cannot send to this address" in page and "Subscribe again" not in page
    csrf = csrf_token(page)
    refused = client.post(f"/preferences/{subscriber.token}", data={"csrf_token": csrf, "action": "resubscribe"})
    assert refused.status_code == 409
    assert reader_by_id(live, subscriber.id).status == SubscriberStatus.BOUNCED
    settle(live)
    assert live.smtp.by_recipient().get("gone@example.org") is None


# ------------------------------------------------------------------ bad input, never a 500


def _with_csrf(client: httpx.Client, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf_token(client.get("/subscribe").text), **fields}


def test_a_body_over_64_kb_is_413(client: httpx.Client) -> None:
    big = b"email=a%40example.org&name=" + b"x" * FORM_LIMIT_BYTES
    declared = client.post("/subscribe", content=big,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert declared.status_code == 413
    assert h1(declared.text) == "Too large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield from (big[i:i + 8192] for i in range(0, len(big), 8192))

    streamed = client.post("/subscribe", content=chunks(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    assert client.post("/unsubscribe/x", content=big,
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 413


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"email=\xff\xfe@example.org", "application/x-www-form-urlencoded", 400),  # not UTF-8
    (b"email=%FF%FE%40example.org", "application/x-www-form-urlencoded", 400),  # escaped, still not UTF-8
    (b"email=a%00b%40example.org", "application/x-www-form-urlencoded", 400),  # NUL
    (b"email=" + b"a" * 2100, "application/x-www-form-urlencoded", 400),  # one field too long
    (b"not multipart at all", "multipart/form-data; boundary=x", 400),
    (b"--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhi\r\n--x--\r\n",
     "multipart/form-data; boundary=x", 400),  # files are refused
    (b'{"email": "a@example.org"}', "application/json", 415),
    (b"email=a@example.org", "text/plain", 415),
])
def test_malformed_bodies_get_a_page_not_a_500(live: Stack, client: httpx.Client, body: bytes,
                                               content_type: str, status: int) -> None:
    response = client.post("/subscribe", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>" in response.text
    assert count(live, Subscriber) == 0


def test_a_multipart_form_that_is_not_utf8_is_400(live: Stack, client: httpx.Client) -> None:
    csrf = csrf_token(client.get("/subscribe").text)
    body = ("--x\r\n"
            'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{csrf}\r\n"
            "--x\r\n"
            'Content-Disposition: form-data; name="email"\r\n\r\n'
            "latin1@example.org\r\n"
            "--x\r\n"
            'Content-Disposition: form-data; name="name"\r\n\r\n').encode() + b"Jos\xe9\r\n--x--\r\n"
    response = client.post("/subscribe", content=body, headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 400
    assert reader_by_email(live, "latin1@example.org") is None


@pytest.mark.parametrize(("email", "message"), [
    ("", "Please enter your email address."),
    ("   ", "Please enter your email address."),
    ("evil@example.org\r\nBcc: victim@example.org", "single line"),
    ("evil@example.org\nBcc: victim@example.org", "single line"),
    ("not-an-address", "invalid email address"),
])
def test_missing_or_bad_email_is_400_and_shows_the_form_again(
        live: Stack, client: httpx.Client, email: str, message: str) -> None:
    response = client.post("/subscribe", data=_with_csrf(client, email=email, name="Keep me",
                                                         topics="science"))
    assert response.status_code == 400
    assert h1(response.text) == "Get the featured stories in your email"
    assert message in response.text.replace("&#39;", "'")
    assert 'value="Keep me"' in response.text
    assert 'value="science" checked' in response.text
    assert csrf_token(response.text)
    assert count(live, Subscriber) == 0
    # No email field at all, and an unknown topic, are refused the same way.
    assert client.post("/subscribe", data=_with_csrf(client)).status_code == 400
    assert client.post("/subscribe", data=_with_csrf(client, email="ok@example.org",
                                                     topics="astrology")).status_code == 400
    assert count(live, Subscriber) == 0


def test_subscribe_without_csrf_is_403(live: Stack, client: httpx.Client) -> None:
    response = client.post("/subscribe", data={"email": "nocsrf@example.org"})
    assert response.status_code == 403
    assert h1(response.text) == "Please try again"
    assert count(live, Subscriber) == 0


@pytest.mark.parametrize("path", [
    "/unsubscribe/not-a-token", "/preferences/not-a-token", "/preferences/not-a-token/data.json",
    "/unsubscribe/" + "A" * 43, "/preferences/" + "x" * 500, "/unsubscribe/%C3%A9t%C3%A9", "/no-such-page",
])
def test_unknown_token_pages_are_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>" in response.text


def test_unknown_token_posts_are_404(live: Stack, client: httpx.Client, web: str) -> None:
    add_active_reader(live, "bystander@example.org")
    assert one_click(f"{web}/unsubscribe/not-a-token").status_code == 404
    assert one_click(f"{web}/unsubscribe/{'A' * 43}", "urlencoded").status_code == 404
    csrf = _with_csrf(client)
    assert client.post("/preferences/not-a-token", data=csrf).status_code == 404
    assert client.post("/preferences/not-a-token/erase", data={**csrf, "confirm": "yes"}).status_code == 404
    assert reader_by_email(live, "bystander@example.org").status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/subscribe"), ("DELETE", "/subscribe"), ("PATCH", "/unsubscribe/x"),
    ("PUT", "/preferences/x"), ("GET", "/preferences/x/erase"), ("POST", "/confirm/x"),
    ("POST", "/healthz"), ("GET", "/hooks/inbound"),
])
def test_wrong_method_is_405(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405


def test_405_names_the_allowed_methods(client: httpx.Client) -> None:
    response = client.put("/subscribe")
    assert response.status_code == 405
    # OPTIONS: the CORS preflight of the sign-up form on publishers' pages (DIGEST_EMBED_ORIGINS).
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "OPTIONS", "POST"}


def test_healthz_reports_database_and_broker(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert client.get("/").status_code == 303


# ------------------------------------------------------------------ end to end over HTTP


def _list_unsubscribe_url(message: EmailMessage) -> str:
    uris = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    web_uris = [u for u in uris if u.startswith(("https://", "http://"))]
    assert len(web_uris) == 1, uris
    assert any(u.startswith("mailto:") for u in uris)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return web_uris[0]


def test_subscribe_confirm_receive_then_one_click_out_over_http(live: Stack, client: httpx.Client) -> None:
    address = "journey@example.org"
    [control] = seed_readers(live.factory, 1, prefix="control")
    assert subscribe(client, address, name="Journey").status_code == 200
    [confirmation] = wait_for_mail(live, address)
    assert httpx.get(confirm_link(confirmation, live.base_url), timeout=10).status_code == 200
    wait_for_mail(live, address, subject="Welcome")

    seed_stories(live.factory)
    send_due_edition(live, "First edition")
    [digest] = wait_for_mail(live, address, subject="First edition")
    message = digest.message
    assert "Hi Journey," in text_part(message)
    url = _list_unsubscribe_url(message)
    token = reader_by_email(live, address).token  # type: ignore[union-attr]
    assert url == f"{live.base_url}/unsubscribe/{token}"
    assert f'href="{url}"' in html_part(message)  # the visible link, too

    response = one_click(url)
    assert response.status_code == 200 and "location" not in response.headers
    subscriber = reader_by_email(live, address)
    assert subscriber is not None
    assert (subscriber.status, subscriber.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "one-click")

    second = send_due_edition(live, "Second edition")
    assert len(wait_for_mail(live, control, subject="Second edition")) == 1  # the edition did go out
    assert [str(r.message["Subject"]) for r in mail_to(live, address)] == [
        "Confirm your subscription to Political IQ", "Welcome to Political IQ: you're subscribed",
        "First edition"]
    assert address not in statuses(live, second)
