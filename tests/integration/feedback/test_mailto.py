"""The mailto: half of List-Unsubscribe: mail to the unsubscribe address, through the
authenticated HTTP hook (then the Celery worker) and through a maildir.

A reader is found only by the token our List-Unsubscribe put in the subject or in the
address, never by the From header, which anyone can forge.
"""

from __future__ import annotations

import base64
import random
import re
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select

from digest.feedback.mailto import InboundResult, token_from_message
from digest.feedback.mailto import process_mailto_maildir as process_maildir
from digest.readers import new_token
from digest.store.models import ConsentEvent, SubscriberStatus
from tests.support.factories import add_active_reader
from tests.support.mail import wait_for_mail, write_maildir
from tests.support.queries import reader_by_id
from tests.support.stack import Stack, settle
from tests.support.web import clear_rate_limits, one_click, subscribe_and_confirm

pytestmark = pytest.mark.integration

INBOUND_SECRET = "inbound-test-secret"  # what the `web` fixture starts `digest serve` with
UNSUBSCRIBE_ADDRESS = "unsubscribe@news.example.com"
WORKER_TIMEOUT_SECONDS = 20
_OUTCOME_LINE = re.compile(r"Task digest\.process_inbound\[[^\]]+\] succeeded in \S+: '([a-z-]+)'")


def raw_message(*, subject: str, to: str = UNSUBSCRIBE_ADDRESS, sender: str = "someone@example.org",
                body: str = "Please take me off the list.\n") -> bytes:
    """A message as a mail client writes it from a mailto: link."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def post_inbound(web: str, raw: bytes, authorization: str | None = f"Bearer {INBOUND_SECRET}") -> httpx.Response:
    headers = {"Content-Type": "message/rfc822"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.post(f"{web}/hooks/inbound", content=raw, headers=headers, timeout=10)


def inbound_outcomes(live: Stack) -> list[str]:
    """What the worker's process_inbound task returned, in order, from its log."""
    return _OUTCOME_LINE.findall(live.worker_log.read_text(errors="replace"))


def wait_for_outcomes(live: Stack, before: int, count: int) -> list[str]:
    deadline = time.monotonic() + WORKER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        outcomes = inbound_outcomes(live)[before:]
        if len(outcomes) >= count:
            return outcomes
        time.sleep(0.05)
    raise AssertionError(f"the worker ran {len(inbound_outcomes(live)) - before} of {count} inbound task(s); "
                         f"log:\n{live.worker_log.read_text(errors='replace')[-3000:]}")


def post_and_wait(live: Stack, web: str, raw: bytes) -> str:
    """Hand one message to the hook and wait for the worker's verdict on it. Waiting for
    the log line, not only for the database, keeps one test's task out of the next's count."""
    before = len(inbound_outcomes(live))
    response = post_inbound(web, raw)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    [outcome] = wait_for_outcomes(live, before, 1)
    return outcome


# ------------------------------------------------------------------ the HTTP hook


def test_subject_token_through_the_hook_unsubscribes_with_channel_mailto(live: Stack, web: str) -> None:
    reader = add_active_reader(live, "mailto@example.org")
    bystander = add_active_reader(live, "bystander@example.org")

    raw = raw_message(subject=f"unsubscribe {reader.token}", sender="mailto@example.org")
    assert post_and_wait(live, web, raw) == "unsubscribed"

    after = reader_by_id(live, reader.id)
    assert after.unsubscribe_channel == "mailto"
    assert after.unsubscribed_at is not None
    assert reader_by_id(live, bystander.id).status == SubscriberStatus.ACTIVE
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == reader.id,
                                                             ConsentEvent.kind == "unsubscribe"))
    assert event.channel == "mailto"

    # The same mail again (a client retrying) is harmless and changes nothing.
    assert post_and_wait(live, web, raw_message(subject=f"Re: unsubscribe {reader.token}")) == "already"
    assert reader_by_id(live, reader.id).unsubscribed_at == after.unsubscribed_at


def test_the_mailto_in_a_real_list_unsubscribe_header_works(live: Stack, web: str) -> None:
    clear_rate_limits(live)
    with httpx.Client(base_url=web, timeout=10) as client:
        subscriber = subscribe_and_confirm(live, client, "header@example.org")
    [welcome] = wait_for_mail(live, "header@example.org", subject="Welcome")
    [mailto] = [u for u in re.findall(r"<([^>]+)>", str(welcome.message["List-Unsubscribe"]))
                if u.startswith("mailto:")]
    parts = urlsplit(mailto)
    [subject] = parse_qs(parts.query)["subject"]
    assert unquote(parts.path) == UNSUBSCRIBE_ADDRESS

    assert post_and_wait(live, web, raw_message(subject=subject, to=unquote(parts.path))) == "unsubscribed"
    after = reader_by_id(live, subscriber.id)
    assert (after.status, after.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "mailto")


def test_a_token_in_the_address_works(live: Stack, web: str) -> None:
    reader = add_active_reader(live, "plus@example.org")
    raw = raw_message(subject="please remove me", to=f"Unsubscribe <unsubscribe+{reader.token}@news.example.com>")
    assert post_and_wait(live, web, raw) == "unsubscribed"
    after = reader_by_id(live, reader.id)
    assert (after.status, after.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "mailto")


def test_the_hook_needs_the_bearer_secret(live: Stack, web: str) -> None:
    reader = add_active_reader(live, "guarded@example.org")
    before = len(inbound_outcomes(live))
    raw = raw_message(subject=f"unsubscribe {reader.token}")
    for authorization in (None, "", "Bearer", "Bearer wrong-secret", f"Basic {INBOUND_SECRET}",
                          f"Bearer {INBOUND_SECRET}x", f"bearer{INBOUND_SECRET}", f"Bearer {INBOUND_SECRET[:-1]}"):
        response = post_inbound(web, raw, authorization)
        assert response.status_code == 401, authorization
        assert response.headers["content-type"].startswith("application/json")
        assert "error" in response.json()
    settle(live)
    assert len(inbound_outcomes(live)) == before  # nothing was queued
    assert reader_by_id(live, reader.id).status == SubscriberStatus.ACTIVE


def test_the_from_address_alone_unsubscribes_nobody(live: Stack, web: str) -> None:
    reader = add_active_reader(live, "forged@example.org")
    before = len(inbound_outcomes(live))
    forged = [
        raw_message(subject="unsubscribe", sender="forged@example.org"),
        raw_message(subject="unsubscribe forged@example.org", sender="Forged <forged@example.org>"),
        raw_message(subject=f"unsubscribe {new_token()}", sender="forged@example.org"),  # a token, not theirs
    ]
    for raw in forged:
        assert post_inbound(web, raw).status_code == 202
    assert sorted(wait_for_outcomes(live, before, 3)) == ["no-token", "no-token", "unknown-token"]
    after = reader_by_id(live, reader.id)
    assert (after.status, after.unsubscribe_channel) == (SubscriberStatus.ACTIVE, None)


def test_mailto_after_one_click_keeps_the_first_channel(live: Stack, web: str) -> None:
    reader = add_active_reader(live, "both@example.org")
    assert one_click(f"{web}/unsubscribe/{reader.token}").status_code == 200
    assert post_and_wait(live, web, raw_message(subject=f"unsubscribe {reader.token}")) == "already"
    assert reader_by_id(live, reader.id).unsubscribe_channel == "one-click"


def test_empty_and_oversized_bodies_are_refused(live: Stack, web: str) -> None:
    assert post_inbound(web, b"").status_code == 400
    assert post_inbound(web, b" \r\n\r\n ").status_code == 400
    big = raw_message(subject="unsubscribe", body="x" * (1024 * 1024 + 10))
    response = post_inbound(web, big)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")


# ------------------------------------------------------------------ the maildir


def test_process_maildir_handles_new_mail_and_moves_it_to_cur(live: Stack, tmp_path: Path) -> None:
    by_subject = add_active_reader(live, "subject@example.org")
    by_address = add_active_reader(live, "address@example.org")
    stays = add_active_reader(live, "stays@example.org")
    folder = write_maildir(tmp_path / "Maildir", {
        "1700000001.M1P1.host": raw_message(subject=f"unsubscribe {by_subject.token}"),
        "1700000002.M2P1.host": raw_message(subject="hi", to=f"unsubscribe+{by_address.token}@news.example.com"),
        "1700000003.M3P1.host": raw_message(subject="unsubscribe", sender="stays@example.org"),
        "1700000004.M4P1.host:2,": b"\x00\xff junk \xfe" * 50,
        ".hidden-partial": raw_message(subject=f"unsubscribe {stays.token}"),
    })
    (folder / "tmp" / "1700000005.M5P1.host").write_bytes(raw_message(subject=f"unsubscribe {stays.token}"))

    results = process_maildir(live.factory, folder)
    assert results == [
        InboundResult("unsubscribed", by_subject.id),
        InboundResult("unsubscribed", by_address.id),
        InboundResult("no-token"),
        InboundResult("no-token"),
    ]
    for subscriber in (by_subject, by_address):
        after = reader_by_id(live, subscriber.id)
        assert (after.status, after.unsubscribe_channel) == (SubscriberStatus.UNSUBSCRIBED, "mailto")
    assert reader_by_id(live, stays.id).status == SubscriberStatus.ACTIVE
    assert sorted(p.name for p in (folder / "new").iterdir()) == [".hidden-partial"]
    assert sorted(p.name for p in (folder / "cur").iterdir()) == [
        "1700000001.M1P1.host:2,S", "1700000002.M2P1.host:2,S", "1700000003.M3P1.host:2,S",
        "1700000004.M4P1.host:2,S"]
    assert [p.name for p in (folder / "tmp").iterdir()] == ["1700000005.M5P1.host"]  # still being written

    assert process_maildir(live.factory, folder) == []  # nothing new: nothing done twice


def test_process_maildir_refuses_a_folder_that_is_not_a_maildir(live: Stack, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        process_maildir(live.factory, tmp_path)


# ------------------------------------------------------------------ token_from_message, no services


_TOKEN = new_token()


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00" * 100,
    b"\xff\xfe" * 1000,
    random.Random(8058).randbytes(8192),
    b"Subject: \xff\xfe unsubscribe \xc3\x28\r\n\r\n",
    b"Subject: =?utf-8?b?!!!not-base64?=\r\nTo: =?bogus?q?x?=\r\n\r\n",
    b"Subject: unsubscribe short-token\r\nTo: unsubscribe+short@news.example.com\r\n\r\n",
    b"To: " + b"a" * 200_000 + b"\r\n\r\n",
    b"From: " + _TOKEN.encode() + b"@example.org\r\nSubject: hello\r\n\r\nunsubscribe " + _TOKEN.encode(),
    b"Subject: unsubscribe" + _TOKEN.encode() + b"\r\n\r\n",
], ids=["empty", "nul", "fffe", "random", "bad-utf8-subject", "bad-encoded-words", "short-token",
        "huge-header", "token-only-in-from-and-body", "token-glued-to-a-word"])
def test_token_from_message_finds_nothing_in_junk(raw: bytes) -> None:
    assert token_from_message(raw) is None


@pytest.mark.parametrize("raw", [
    raw_message(subject=f"unsubscribe {_TOKEN}"),
    raw_message(subject=f"Re: UNSUBSCRIBE {_TOKEN}"),
    f"Subject: =?utf-8?b?{base64.b64encode(f'unsubscribe {_TOKEN}'.encode()).decode()}?=\r\n\r\n".encode(),
    raw_message(subject="x", to=f"unsubscribe+{_TOKEN}@news.example.com"),
    f"Delivered-To: unsubscribe+{_TOKEN}@news.example.com\r\nTo: undisclosed-recipients:;\r\n\r\n".encode(),
], ids=["subject", "reply-uppercase", "encoded-word", "plus-address", "delivered-to"])
def test_token_from_message_reads_the_subject_or_the_address(raw: bytes) -> None:
    assert token_from_message(raw) == _TOKEN
