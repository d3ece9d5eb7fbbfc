"""Bounces and complaints against the real databases: mailed DSN and ARF reports (through
the maildir poller), the SES and SendGrid webhooks with real signatures, and the send loop
skipping suppressed readers in a real send through the worker.

Mocked: only the network fetch of the SNS signing certificate (a local RSA key and
self-signed certificate are served instead); everything else is the real thing.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from digest.config import Settings
from digest.feedback.apply import Applied, apply_report, process_bounce_maildir
from digest.feedback.signatures import CertificateUnavailable, SnsCertificates
from digest.mail.message import message_id_for
from digest.readers import Suppressed, add_subscriber, email_hash, import_csv, suppress
from digest.store.engine import get_engine
from digest.store.models import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Notice,
    NoticeStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
    utcnow,
)
from digest.web.app import Services, create_app
from tests.support.caches import clear_caches
from tests.support.factories import add_active_reader, seed_readers, seed_stories, send_due_edition
from tests.support.mail import write_maildir
from tests.support.processes import free_port
from tests.support.queries import reader_by_email, reader_by_id
from tests.support.samples import TOPICS
from tests.support.stack import Stack, settle
from tests.support.web import clear_rate_limits, h1, subscribe

pytestmark = pytest.mark.integration

SECRET = "integration-test-secret-0123456789"  # what the `live` stack's worker signs Message-IDs with
DOMAIN = "news.example.com"
SOFT_LIMIT = 3  # DIGEST_SOFT_BOUNCE_LIMIT's default
TOPIC = "arn:aws:sns:eu-west-1:123456789012:digest-ses-feedback"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
SUBSCRIBE_URL = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
                 f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425dacbbaa6e6b5b")
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
WORKER_TIMEOUT_SECONDS = 20


# ------------------------------------------------------------------ data set-up


def sent_delivery(live: Stack, subscriber: Subscriber, *, days_ago: float = 0) -> Delivery:
    """A delivery of one edition to `subscriber`, sent, with the Message-ID the sender gives it."""
    at = utcnow() - timedelta(days=days_ago)
    with live.factory.begin() as session:
        edition = Edition(subject="Today's featured stories", send_at=at, status=EditionStatus.SENT)
        session.add(edition)
        session.flush()
        delivery = Delivery(edition_id=edition.id, subscriber_id=subscriber.id, status=DeliveryStatus.SENT,
                            attempts=1, sent_at=at, attempted_at=at)
        session.add(delivery)
        session.flush()
        delivery.message_id = message_id_for(edition.id, delivery.id, DOMAIN, SECRET)
        return delivery


def sent_notice(live: Stack, subscriber: Subscriber) -> Notice:
    with live.factory.begin() as session:
        notice = Notice(subscriber_id=subscriber.id, kind="confirm", status=NoticeStatus.SENT, attempts=1,
                        sent_at=utcnow())
        session.add(notice)
        session.flush()
        notice.message_id = message_id_for(0, notice.id, DOMAIN, SECRET).replace("<digest.0.", "<notice.", 1)
        return notice


def pending_reader(live: Stack, address: str) -> Subscriber:
    with live.factory.begin() as session:
        return add_subscriber(session, address, allowed_topics=TOPICS, consent_source="test")


def delivery(live: Stack, delivery_id: int) -> Delivery:
    with live.factory() as session:
        return session.get_one(Delivery, delivery_id)


def suppression(live: Stack, address: str) -> str | None:
    with live.factory() as session:
        row = session.get(Suppression, email_hash(address))
        return row.reason if row else None


def snapshot(live: Stack) -> dict[str, Any]:
    """Everything a report may change."""
    with live.factory() as session:
        return {
            "readers": sorted((s.id, s.status.value, s.soft_bounces) for s in session.scalars(select(Subscriber))),
            "deliveries": sorted((d.id, d.status.value, d.last_error) for d in session.scalars(select(Delivery))),
            "notices": sorted((n.id, n.status.value, n.last_error) for n in session.scalars(select(Notice))),
            "suppressions": sorted((x.email_hash, x.reason) for x in session.scalars(select(Suppression))),
            "consent_events": session.scalar(select(func.count()).select_from(ConsentEvent)),
        }


def mailed(live: Stack, raw: bytes) -> list[str]:
    """Apply one mailed report in one transaction, as the maildir poller does."""
    with live.factory.begin() as session:
        return [a.outcome for a in apply_report(session, raw, soft_bounce_limit=SOFT_LIMIT)]


# ------------------------------------------------------------------ mailed reports


def dsn(recipient: str, *, message_id: str | None, status: str = "5.1.1", action: str = "failed",
        sender: str = "MAILER-DAEMON@mx.example.org (Mail Delivery System)",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        headers: bytes | None = None) -> bytes:
    """A Postfix-style RFC 3464 report; the returned headers carry `message_id` (or are
    `headers` as given, or absent when both are None)."""
    if headers is None and message_id is not None:
        headers = (f"From: Political IQ <digest@{DOMAIN}>\r\nTo: {recipient}\r\n"
                   f"Subject: Today's featured stories\r\nMessage-ID: {message_id}\r\n").encode()
    boundary = f"{uuid.uuid4().hex}/mx.example.org"
    parts = [
        (f"From: {sender}\r\nTo: digest@{DOMAIN}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
         f"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
         f"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
         f"This is a MIME-encapsulated message.\r\n\r\n"),
        (f"--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
         f"This is the mail system at host mx.example.org.\r\n\r\n<{recipient}>: {status}\r\n\r\n"),
        (f"--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
         f"Reporting-MTA: dns; mx.example.org\r\nX-Postfix-Queue-ID: 4Q1x2y3z\r\n"
         f"Arrival-Date: Mon, 30 Nov 2026 09:00:01 +0000 (UTC)\r\n\r\n"
         f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
         f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.org\r\n"
         f"Diagnostic-Code: {diagnostic.format(r=recipient)}\r\n\r\n"),
    ]
    raw = "".join(parts).encode()
    if headers is not None:
        raw += (f"--{boundary}\r\nContent-Description: Undelivered Message Headers\r\n"
                f"Content-Type: text/rfc822-headers\r\n\r\n").encode() + headers + b"\r\n"
    return raw + f"--{boundary}--\r\n".encode()


def arf(recipient: str | None, *, message_id: str | None, feedback_type: str = "abuse",
        sender: str = "staff@fbl.example.net") -> bytes:
    """An RFC 5965 feedback report with the complained-of message attached."""
    rcpt = f"Original-Rcpt-To: <{recipient}>\r\n" if recipient else ""
    mid = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        f"From: <{sender}>\r\nTo: <abuse@{DOMAIN}>\r\nSubject: FW: Today's featured stories\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"arf\"\r\n\r\n"
        f"--arf\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
        f"--arf\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: {feedback_type}\r\n"
        f"User-Agent: SomeGenerator/1.0\r\nVersion: 1\r\nOriginal-Mail-From: <digest@{DOMAIN}>\r\n{rcpt}"
        f"Arrival-Date: Mon, 30 Nov 2026 09:00:03 +0000\r\nSource-IP: 198.51.100.10\r\n\r\n"
        f"--arf\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        f"From: Political IQ <digest@{DOMAIN}>\r\nTo: <{recipient or 'redacted'}>\r\n"
        f"Subject: Today's featured stories\r\n{mid}\r\nFive stories for you today.\r\n\r\n--arf--\r\n"
    ).encode()


def test_a_hard_bounce_bounces_the_delivery_and_the_reader_and_suppresses_once(live: Stack) -> None:
    reader = add_active_reader(live, "Gone.Reader@example.org")
    bystander = add_active_reader(live, "stays@example.org")
    sent = sent_delivery(live, reader)
    other = sent_delivery(live, bystander)

    assert mailed(live, dsn("gone.reader@example.org", message_id=sent.message_id)) == ["bounced"]
    after = delivery(live, sent.id)
    assert after.status == DeliveryStatus.BOUNCED
    assert after.last_error is not None and after.last_error.startswith("hard bounce (dsn): 5.1.1")
    assert reader_by_id(live, reader.id).status == SubscriberStatus.BOUNCED
    assert suppression(live, "gone.reader@example.org") == "bounced"
    assert reader_by_id(live, bystander.id).status == SubscriberStatus.ACTIVE
    assert delivery(live, other.id).status == DeliveryStatus.SENT

    # The same report again (a second copy, a replay): nothing more changes.
    before = snapshot(live)
    assert mailed(live, dsn("gone.reader@example.org", message_id=sent.message_id)) == ["already"]
    assert snapshot(live) == before


def test_soft_bounces_count_once_per_delivery_and_suppress_at_the_limit(live: Stack) -> None:
    reader = add_active_reader(live, "full.box@example.org")
    deliveries = [sent_delivery(live, reader) for _ in range(SOFT_LIMIT)]

    def soft(sent: Delivery, status: str = "4.2.2", action: str = "failed") -> list[str]:
        return mailed(live, dsn("full.box@example.org", message_id=sent.message_id, status=status, action=action,
                                diagnostic="smtp; 452 4.2.2 Mailbox full"))

    assert soft(deliveries[0], action="delayed") == ["soft-bounce"]
    assert soft(deliveries[0], action="delayed") == ["already"]  # the same report twice
    assert soft(deliveries[0], status="4.4.7") == ["already"]  # the final failure of the same copy
    assert mailed(live, dsn("full.box@example.org", message_id=deliveries[1].message_id,
                            status="5.2.2", diagnostic="smtp; 552 5.2.2 over quota")) == ["soft-bounce"]
    after = reader_by_id(live, reader.id)
    assert (after.status, after.soft_bounces) == (SubscriberStatus.ACTIVE, 2)
    assert suppression(live, "full.box@example.org") is None
    assert delivery(live, deliveries[0].id).status == DeliveryStatus.SENT  # a soft bounce is no final verdict
    assert delivery(live, deliveries[0].id).last_error == "soft bounce (dsn): 4.2.2 452 4.2.2 Mailbox full"

    assert soft(deliveries[2]) == ["suppressed"]
    after = reader_by_id(live, reader.id)
    assert (after.status, after.soft_bounces) == (SubscriberStatus.BOUNCED, SOFT_LIMIT)
    assert suppression(live, "full.box@example.org") == "bounced"
    before = snapshot(live)
    for sent in deliveries:
        assert soft(sent) == ["already"]
    assert snapshot(live) == before


def test_a_complaint_marks_the_reader_suppresses_and_records_a_consent_event_once(live: Stack) -> None:
    reader = add_active_reader(live, "Complainer@Example.org")
    sent = sent_delivery(live, reader)

    assert mailed(live, arf("Complainer@Example.org", message_id=sent.message_id)) == ["complained"]
    assert reader_by_id(live, reader.id).status == SubscriberStatus.COMPLAINED
    assert suppression(live, "complainer@example.org") == "complained"
    assert delivery(live, sent.id).status == DeliveryStatus.SENT  # it was delivered: that is the complaint
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == reader.id,
                                                             ConsentEvent.kind == "complaint"))
    assert event.channel == "arf"
    assert event.detail == {"feedback_type": "abuse", "message_id": sent.message_id, "delivery_id": sent.id}

    before = snapshot(live)
    assert mailed(live, arf(None, message_id=sent.message_id)) == ["already"]  # redacted recipient, same message
    assert snapshot(live) == before

    # not-spam feedback is no complaint
    other = add_active_reader(live, "likes-it@example.org")
    assert mailed(live, arf("likes-it@example.org", message_id=sent_delivery(live, other).message_id,
                            feedback_type="not-spam")) == ["no-report"]
    assert reader_by_id(live, other.id).status == SubscriberStatus.ACTIVE


def test_a_complaint_after_a_bounce_makes_the_suppression_a_complaint(live: Stack) -> None:
    reader = add_active_reader(live, "both@example.org")
    sent = sent_delivery(live, reader)
    assert mailed(live, dsn("both@example.org", message_id=sent.message_id)) == ["bounced"]
    assert mailed(live, arf("both@example.org", message_id=sent.message_id)) == ["complained"]
    assert reader_by_id(live, reader.id).status == SubscriberStatus.COMPLAINED
    assert suppression(live, "both@example.org") == "complained"


def test_a_mailed_report_without_our_message_id_changes_nothing(live: Stack) -> None:
    """Anyone can mail a DSN naming someone else: without our Message-ID it is ignored (only
    signed provider webhooks may identify a reader by address)."""
    recent = add_active_reader(live, "recent@example.org")
    stale = add_active_reader(live, "stale@example.org")
    never_sent = add_active_reader(live, "never-sent@example.org")
    sent = sent_delivery(live, recent)
    sent_delivery(live, stale, days_ago=40)
    before = snapshot(live)

    assert mailed(live, dsn("Recent@Example.org", message_id=None)) == ["no-match"]
    assert delivery(live, sent.id).status == DeliveryStatus.SENT
    assert mailed(live, dsn("stale@example.org", message_id=None)) == ["no-match"]
    assert mailed(live, dsn("never-sent@example.org", message_id=None)) == ["no-match"]
    assert mailed(live, dsn("stranger@example.org", message_id=None)) == ["no-match"]
    assert snapshot(live) == before
    assert reader_by_id(live, never_sent.id).status == SubscriberStatus.ACTIVE


def test_a_message_id_of_our_form_that_is_not_ours_changes_nothing(live: Stack) -> None:
    reader = add_active_reader(live, "target@example.org")
    sent = sent_delivery(live, reader)
    assert sent.message_id is not None
    forged_hmac = re.sub(r"\.[0-9a-f]{16}@", ".0123456789abcdef@", sent.message_id)
    other_delivery = sent.message_id.replace(f".{sent.id}.", f".{sent.id + 1000}.")
    before = snapshot(live)
    for message_id in (forged_hmac, other_delivery, f"<notice.{sent.id}.0123456789abcdef@{DOMAIN}>"):
        # The recipient is real and was sent a delivery; the id still decides.
        assert mailed(live, dsn("target@example.org", message_id=message_id)) == ["unknown-message"]
        assert mailed(live, arf("target@example.org", message_id=message_id)) == ["unknown-message"]
    assert snapshot(live) == before


def test_a_forged_report_naming_a_reader_only_in_a_from_header_changes_nothing(live: Stack) -> None:
    victim = add_active_reader(live, "victim@example.org")
    sent_delivery(live, victim)
    before = snapshot(live)
    plain = (b"From: victim@example.org\r\nTo: digest@news.example.com\r\n"
             b"Subject: Undelivered Mail Returned to Sender\r\n\r\n"
             b"Final-Recipient: rfc822; victim@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n")
    forged = [
        plain,
        dsn("nobody@example.net", message_id=None, sender="victim@example.org"),
        dsn("nobody@example.net", message_id="<CAF=abc@mail.gmail.com>", sender="Victim <victim@example.org>"),
        arf(None, message_id="<foreign.1@elsewhere.example>", sender="victim@example.org"),
        arf(None, message_id=None, sender="victim@example.org"),
    ]
    assert [mailed(live, raw) for raw in forged] == [
        ["no-report"], ["no-match"], ["no-match"], ["no-match"], ["no-report"]]
    assert snapshot(live) == before


def test_a_bounced_confirmation_email_stops_the_pending_reader(live: Stack) -> None:
    reader = pending_reader(live, "typo@exmaple.org")
    notice = sent_notice(live, reader)
    assert mailed(live, dsn("typo@exmaple.org", message_id=notice.message_id, status="5.1.2",
                            diagnostic="X-Postfix; Host or domain name not found")) == ["bounced"]
    assert reader_by_id(live, reader.id).status == SubscriberStatus.BOUNCED
    assert suppression(live, "typo@exmaple.org") == "bounced"
    with live.factory() as session:
        assert session.get_one(Notice, notice.id).status == NoticeStatus.FAILED


def test_the_suppression_list_is_checked_by_imports_the_cli_and_the_subscribe_form(live: Stack, web: str) -> None:
    reader = add_active_reader(live, "bounced.reader@example.org")
    assert mailed(live, dsn("bounced.reader@example.org", message_id=sent_delivery(live, reader).message_id)) == [
        "bounced"]
    with live.factory.begin() as session:  # an address with no reader row, suppressed (say, erased long ago)
        suppress(session, "never.seen@example.org", "complained")

    with live.factory.begin() as session:
        report = import_csv(session, "email,name\nnever.seen@EXAMPLE.org,N\nfresh@example.org,F\n",
                            allowed_topics=TOPICS, confirmed=True)
    assert (report.imported, report.suppressed) == (1, 1)
    with live.factory.begin() as session, pytest.raises(Suppressed):
        add_subscriber(session, "Never.Seen@example.org", allowed_topics=TOPICS)

    clear_rate_limits(live)
    live.smtp.clear()
    with httpx.Client(base_url=web, timeout=10) as client:
        for address in ("never.seen@example.org", "Bounced.Reader@example.org"):
            response = subscribe(client, address, name="Back again")
            assert response.status_code == 200
            assert h1(response.text) == "Check your inbox"  # the same answer as for anyone
    settle(live)
    assert live.smtp.messages == []
    assert reader_by_email(live, "never.seen@example.org") is None
    assert reader_by_id(live, reader.id).status == SubscriberStatus.BOUNCED


# ------------------------------------------------------------------ the maildir poller


def test_the_maildir_poller_applies_reports_and_moves_them_to_cur(live: Stack, tmp_path: Path) -> None:
    hard = add_active_reader(live, "hard@example.org")
    soft = add_active_reader(live, "soft@example.org")
    complainer = add_active_reader(live, "complainer@example.org")
    [hard_sent, soft_sent, complained_sent] = [sent_delivery(live, r) for r in (hard, soft, complainer)]
    folder = write_maildir(tmp_path / "Maildir", {
        "1764493201.M1P1.mx:2,": dsn("hard@example.org", message_id=hard_sent.message_id),
        "1764493202.M2P1.mx": dsn("soft@example.org", message_id=soft_sent.message_id, action="delayed",
                                  status="4.4.1"),
        "1764493203.M3P1.mx": arf("complainer@example.org", message_id=complained_sent.message_id),
        "1764493204.M4P1.mx": b"From: hard@example.org\r\nSubject: Out of office\r\n\r\nAway until Monday.\r\n",
        "1764493205.M5P1.mx": b"\x00\xff junk \xfe" * 50,
        ".hidden-partial": dsn("soft@example.org", message_id=soft_sent.message_id),
    })
    (folder / "tmp" / "1764493206.M6P1.mx").write_bytes(dsn("soft@example.org", message_id=soft_sent.message_id))

    results = process_bounce_maildir(live.factory, folder, soft_bounce_limit=SOFT_LIMIT)
    assert results == [Applied("bounced", hard.id), Applied("soft-bounce", soft.id),
                       Applied("complained", complainer.id), Applied("no-report"), Applied("no-report")]
    assert [reader_by_id(live, r.id).status for r in (hard, soft, complainer)] == [
        SubscriberStatus.BOUNCED, SubscriberStatus.ACTIVE, SubscriberStatus.COMPLAINED]
    assert sorted(p.name for p in (folder / "new").iterdir()) == [".hidden-partial"]
    assert sorted(p.name for p in (folder / "cur").iterdir()) == [
        f"17644932{i:02d}.M{i}P1.mx:2,S" for i in range(1, 6)]
    assert [p.name for p in (folder / "tmp").iterdir()] == ["1764493206.M6P1.mx"]  # still being written

    before = snapshot(live)
    assert process_bounce_maildir(live.factory, folder, soft_bounce_limit=SOFT_LIMIT) == []
    assert snapshot(live) == before
    with pytest.raises(FileNotFoundError):
        process_bounce_maildir(live.factory, tmp_path, soft_bounce_limit=SOFT_LIMIT)


@pytest.fixture
def task_env(live: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DIGEST_ settings for running a task function in this process, on the stack's database."""
    folder = write_maildir(tmp_path / "Bounces", {})
    for name, value in live.env(DIGEST_BOUNCE_MAILDIR=str(folder)).items():
        if name.startswith("DIGEST_"):
            monkeypatch.setenv(name, value)
    clear_caches()
    yield folder
    get_engine().dispose()
    clear_caches()


def test_the_poll_task_reads_digest_bounce_maildir_and_beat_runs_it_every_minute(
        live: Stack, task_env: Path) -> None:
    from digest.worker.app import make_app
    from digest.worker.tasks import poll_bounce_maildir

    reader = add_active_reader(live, "polled@example.org")
    sent = sent_delivery(live, reader)
    (task_env / "new" / "1764493300.M1P1.mx").write_bytes(dsn("polled@example.org", message_id=sent.message_id))
    assert poll_bounce_maildir() == {"bounced": 1}
    assert reader_by_id(live, reader.id).status == SubscriberStatus.BOUNCED
    assert poll_bounce_maildir() == {}
    assert make_app().conf.beat_schedule["poll-bounce-maildir"] == {
        "task": "digest.poll_bounce_maildir", "schedule": 60.0}


def test_the_worker_knows_the_poll_task(live: Stack) -> None:
    # The stack's worker runs without DIGEST_BOUNCE_MAILDIR: the task is registered and idle.
    line = re.compile(r"Task digest\.poll_bounce_maildir\[[^\]]+\] succeeded in \S+: \{\}")
    before = len(line.findall(live.worker_log.read_text(errors="replace")))
    live.client.send_task("digest.poll_bounce_maildir")
    deadline = time.monotonic() + WORKER_TIMEOUT_SECONDS
    while len(line.findall(live.worker_log.read_text(errors="replace"))) == before:
        assert time.monotonic() < deadline, live.worker_log.read_text(errors="replace")[-3000:]
        time.sleep(0.05)


# ------------------------------------------------------------------ the send loop


def test_the_send_loop_skips_a_suppressed_reader_and_a_real_dsn_finds_its_delivery(live: Stack) -> None:
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 5, extra=["Suppressed.Reader@Example.org"])
    with live.factory.begin() as session:  # still `active`: only the suppression list says no
        suppress(session, "suppressed.reader@example.org", "bounced")
    edition_id = send_due_edition(live)

    received = live.smtp.by_recipient()
    assert sorted(received) == sorted(addresses[:5])
    with live.factory() as session:
        rows = {email: (status.value, error) for email, status, error in session.execute(
            select(Subscriber.email, Delivery.status, Delivery.last_error)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id).where(Delivery.edition_id == edition_id))}
    assert rows.pop("Suppressed.Reader@Example.org") == ("skipped", "suppressed")
    assert set(rows.values()) == {("sent", None)}

    # The receiving side bounces one real copy afterwards: the DSN quotes that copy's headers.
    [copy] = received[addresses[0]]
    headers = copy.data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert mailed(live, dsn(addresses[0], message_id=None, headers=headers)) == ["bounced"]
    with live.factory() as session:
        status, bounced_id = session.execute(
            select(Delivery.status, Delivery.message_id).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == addresses[0])).one()
    assert status == DeliveryStatus.BOUNCED
    assert bounced_id == str(copy.message["Message-ID"])


# ------------------------------------------------------------------ the webhooks, in-process


class ServedByAws:
    """Stands in for the one network call: GETs of SNS URLs answer what AWS would."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.fetched: list[str] = []
        self.serve_anywhere = False  # as if an attacker hosted our certificate at their URL

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        if url == CERT_URL or self.serve_anywhere:
            return self.pem
        if url == SUBSCRIBE_URL:
            return b"<ConfirmSubscriptionResponse/>"
        raise CertificateUnavailable(f"404 at {url}")


@pytest.fixture(scope="module")
def sns_signer() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A local RSA key and a self-signed certificate for it, as SNS's signing certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, certificate.public_bytes(Encoding.PEM)


@pytest.fixture(scope="module")
def sendgrid_signer() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(public).decode()


@pytest.fixture
def served(sns_signer: tuple[rsa.RSAPrivateKey, bytes]) -> ServedByAws:
    return ServedByAws(sns_signer[1])


@contextmanager
def hooks_client(live: Stack, served: ServedByAws, **settings: Any) -> Iterator[httpx.Client]:
    """The real app under uvicorn, in this process (so `served` can stand in for AWS as the
    SNS certificate fetcher), on the stack's database and Redis."""
    services = Services(
        settings=Settings(env="test", secret_key=SECRET, database_url=live.database_url, broker_url=live.broker_url,
                          base_url=live.base_url, **settings),
        factory=live.factory, redis=redis.Redis.from_url(live.broker_url),
        enqueue_notice=lambda notice_id: None, enqueue_inbound=lambda raw: None)
    app = create_app(services)
    app.state.sns_certificates = SnsCertificates(served)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", ws="none",
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.redis.close()


@pytest.fixture
def ses(live: Stack, served: ServedByAws) -> Iterator[httpx.Client]:
    with hooks_client(live, served, ses_topic_arns=TOPIC) as client:
        yield client


def string_to_sign(message: dict[str, str]) -> bytes:
    """Written out from AWS's documentation, independently of digest.feedback.signatures."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sns_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sns(key: rsa.RSAPrivateKey, body: dict[str, Any] | str, *, kind: str = "Notification", version: str = "1",
        **fields: str) -> dict[str, str]:
    message = {
        "Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": TOPIC,
        "Message": body if isinstance(body, str) else json.dumps(body),
        "Timestamp": sns_time(datetime.now(UTC)), "SignatureVersion": version, "SigningCertURL": CERT_URL,
        **fields,
    }
    if kind == "Notification":
        message["UnsubscribeURL"] = f"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:x"
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    message["Signature"] = base64.b64encode(key.sign(string_to_sign(message), padding.PKCS1v15(), digest)).decode()
    return message


def post_sns(client: httpx.Client, message: dict[str, str] | str) -> httpx.Response:
    body = message if isinstance(message, str) else json.dumps(message)
    return client.post("/hooks/ses", content=body,
                       headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"})


def ses_bounce(address: str, message_id: str | None, bounce_type: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {"bounceType": bounce_type, "bounceSubType": "General", "feedbackId": str(uuid.uuid4()),
                   "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                   "timestamp": "2026-11-30T09:00:05.000Z"},
        "mail": {"messageId": "0100018c1a2b3c4d-aaaa", "source": f"digest@{DOMAIN}", "destination": [address],
                 "commonHeaders": {"from": [f"Political IQ <digest@{DOMAIN}>"], "to": [address],
                                   "messageId": message_id, "subject": "Today's featured stories"}},
    }


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_with_a_good_signature_is_applied_once(
        live: Stack, ses: httpx.Client, served: ServedByAws, sns_signer: tuple[rsa.RSAPrivateKey, bytes],
        version: str) -> None:
    reader = add_active_reader(live, "ses-gone@example.org")
    sent = sent_delivery(live, reader)
    message = sns(sns_signer[0], ses_bounce("ses-gone@example.org", sent.message_id), version=version)

    response = post_sns(ses, message)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "outcomes": {"bounced": 1}})
    assert reader_by_id(live, reader.id).status == SubscriberStatus.BOUNCED
    assert delivery(live, sent.id).status == DeliveryStatus.BOUNCED
    assert suppression(live, "ses-gone@example.org") == "bounced"

    before = snapshot(live)  # SNS retries with the same MessageId: seen, not applied again
    assert post_sns(ses, message).json() == {"status": "ok", "outcomes": {}, "replays": 1}
    assert snapshot(live) == before
    assert served.fetched == [CERT_URL]  # fetched once, then kept


def test_a_stale_sns_message_is_403_even_well_signed(
        live: Stack, ses: httpx.Client, served: ServedByAws, sns_signer: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    reader = add_active_reader(live, "ses-stale@example.org")
    sent = sent_delivery(live, reader)
    now = datetime.now(UTC)
    before = snapshot(live)
    for moment in (now - timedelta(minutes=11), now - timedelta(days=3 * 365), now + timedelta(minutes=11)):
        message = sns(sns_signer[0], ses_bounce("ses-stale@example.org", sent.message_id),
                      Timestamp=sns_time(moment))
        response = post_sns(ses, message)
        assert response.status_code == 403 and "stamped" in response.json()["error"], response.text
    for timestamp in ("yesterday", "2026-11-30T09:00:06"):  # malformed; no zone
        response = post_sns(ses, sns(sns_signer[0], ses_bounce("ses-stale@example.org", None), Timestamp=timestamp))
        assert response.status_code == 403
    assert snapshot(live) == before
    assert served.fetched == []  # refused before any certificate is fetched
    recent = sns(sns_signer[0], ses_bounce("ses-stale@example.org", sent.message_id),
                 Timestamp=sns_time(now - timedelta(minutes=9)))
    assert post_sns(ses, recent).json()["outcomes"] == {"bounced": 1}


def test_ses_complaint_and_transient_bounce(live: Stack, ses: httpx.Client,
                                            sns_signer: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    complainer = add_active_reader(live, "ses-complainer@example.org")
    busy = add_active_reader(live, "ses-busy@example.org")
    complained = sent_delivery(live, complainer)
    complaint = {"notificationType": "Complaint",
                 "complaint": {"complainedRecipients": [{"emailAddress": "ses-complainer@example.org"}],
                               "complaintFeedbackType": "abuse", "feedbackId": "x",
                               "timestamp": "2026-11-30T10:00:00.000Z"},
                 "mail": {"commonHeaders": {"messageId": complained.message_id}}}
    assert post_sns(ses, sns(sns_signer[0], complaint, version="2")).json()["outcomes"] == {"complained": 1}
    assert reader_by_id(live, complainer.id).status == SubscriberStatus.COMPLAINED
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "complaint"))
    assert (event.subscriber_id, event.channel) == (complainer.id, "ses")

    sent_delivery(live, busy)  # no Message-ID in the notification: matched by recipient
    transient = sns(sns_signer[0], ses_bounce("ses-busy@example.org", None, bounce_type="Transient"))
    assert post_sns(ses, transient).json()["outcomes"] == {"soft-bounce": 1}
    assert reader_by_id(live, busy.id).soft_bounces == 1
    delivered = sns(sns_signer[0], {"notificationType": "Delivery", "mail": {}, "delivery": {}})
    assert post_sns(ses, delivered).json() == {"status": "ok", "outcomes": {}}


def test_an_altered_or_unsigned_sns_message_is_403_and_changes_nothing(
        live: Stack, ses: httpx.Client, served: ServedByAws, sns_signer: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    reader = add_active_reader(live, "ses-target@example.org")
    victim = add_active_reader(live, "ses-victim@example.org")
    sent = sent_delivery(live, reader)
    sent_delivery(live, victim)
    good = sns(sns_signer[0], ses_bounce("ses-target@example.org", sent.message_id), version="2")
    altered_body = {**good, "Message": json.dumps(ses_bounce("ses-victim@example.org", None))}
    altered_subject = {**good, "Subject": "Amazon SES Email Event Notification"}
    wrong_version = {**good, "SignatureVersion": "3"}
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    garbled = {**good, "Signature": "!!not base64!!"}
    other_key = sns(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                    ses_bounce("ses-target@example.org", sent.message_id))
    before = snapshot(live)
    for message in (altered_body, altered_subject, wrong_version, unsigned, garbled, other_key):
        response = post_sns(ses, message)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/json")
    assert snapshot(live) == before
    assert post_sns(ses, "not json").status_code == 400
    assert post_sns(ses, good).json()["outcomes"] == {"bounced": 1}  # the genuine one still works


@pytest.mark.parametrize("url", [
    "https://sns.eu-west-1.amazonaws.com.attacker.example/SimpleNotificationService-1.pem",
    "https://attacker.example/sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com@attacker.example/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
    "https://s3.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
    "file:///etc/ssl/cert.pem",
    "",
], ids=["suffix-host", "path", "http", "userinfo", "port", "other-aws-host", "not-pem", "file", "empty"])
def test_a_certificate_url_off_the_sns_hosts_is_403_and_never_fetched(
        live: Stack, ses: httpx.Client, served: ServedByAws, sns_signer: tuple[rsa.RSAPrivateKey, bytes],
        url: str) -> None:
    reader = add_active_reader(live, "cert-url@example.org")
    sent = sent_delivery(live, reader)
    # The certificate at that URL would verify the signature: only the URL check refuses it.
    served.serve_anywhere = True
    message = sns(sns_signer[0], ses_bounce("cert-url@example.org", sent.message_id), SigningCertURL=url)
    before = snapshot(live)
    assert post_sns(ses, message).status_code == 403
    assert served.fetched == []
    assert snapshot(live) == before


def test_only_the_configured_topics_are_accepted(live: Stack, ses: httpx.Client, served: ServedByAws,
                                                 sns_signer: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    reader = add_active_reader(live, "topic@example.org")
    sent = sent_delivery(live, reader)
    # Properly signed by SNS, but for somebody else's topic.
    message = sns(sns_signer[0], ses_bounce("topic@example.org", sent.message_id),
                  TopicArn="arn:aws:sns:eu-west-1:999999999999:someone-elses-topic")
    assert post_sns(ses, message).status_code == 403
    assert served.fetched == []
    assert reader_by_id(live, reader.id).status == SubscriberStatus.ACTIVE


def test_a_subscription_confirmation_is_logged_not_followed_unless_auto_confirm(
        live: Stack, served: ServedByAws, sns_signer: tuple[rsa.RSAPrivateKey, bytes],
        caplog: pytest.LogCaptureFixture) -> None:
    confirmation = sns(sns_signer[0], f"You have chosen to subscribe to the topic {TOPIC}.",
                       kind="SubscriptionConfirmation", version="2", Token="2336412f37fb687f5d51e6e2425dacbb",
                       SubscribeURL=SUBSCRIBE_URL)
    with caplog.at_level(logging.WARNING, logger="digest.web.hooks"), \
            hooks_client(live, served, ses_topic_arns=TOPIC) as client:
        response = post_sns(client, confirmation)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "subscription": "logged"})
    assert served.fetched == [CERT_URL]  # the certificate, not the SubscribeURL
    assert SUBSCRIBE_URL in caplog.text

    served.fetched.clear()
    with hooks_client(live, served, ses_topic_arns=TOPIC, ses_auto_confirm=True) as client:
        assert post_sns(client, confirmation).json() == {"status": "ok", "subscription": "confirmed"}
        assert served.fetched == [CERT_URL, SUBSCRIBE_URL]
        forged = {**confirmation, "SubscribeURL": "https://attacker.example/confirm"}
        assert post_sns(client, forged).status_code == 403  # the URL is signed too


def test_a_hook_is_off_until_configured(live: Stack, served: ServedByAws) -> None:
    with hooks_client(live, served) as client:
        assert client.post("/hooks/ses", content=b"{}").status_code == 404
        assert client.post("/hooks/sendgrid", content=b"[]").status_code == 404


def test_the_sendgrid_public_key_is_validated_at_start_up(sendgrid_signer: tuple[Any, str]) -> None:
    rsa_public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    for bad in ("not base64!", base64.b64encode(b"not a key").decode(), base64.b64encode(rsa_public).decode()):
        with pytest.raises(ValueError, match="sendgrid_public_key"):
            Settings(env="test", secret_key=SECRET, sendgrid_public_key=bad)
    with pytest.raises(ValueError, match="ses_topic_arns"):
        Settings(env="test", secret_key=SECRET, ses_topic_arns="digest-feedback")
    Settings(env="test", secret_key=SECRET, sendgrid_public_key=sendgrid_signer[1], ses_topic_arns=TOPIC)


def event_id() -> str:
    """A SendGrid sg_event_id no earlier run has used (Redis remembers them for a day)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def signed_sendgrid(key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]],
                    at: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()) if at is None else at)
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {"Content-Type": "application/json", SENDGRID_TIMESTAMP: timestamp,
                  SENDGRID_SIGNATURE: base64.b64encode(signature).decode()}


def test_sendgrid_events_with_a_good_signature_are_applied_bad_ones_are_403(
        live: Stack, served: ServedByAws, sendgrid_signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, public = sendgrid_signer
    gone = add_active_reader(live, "sg-gone@example.org")
    spam = add_active_reader(live, "sg-spam@example.org")
    gone_sent, spam_sent = sent_delivery(live, gone), sent_delivery(live, spam)
    events = [
        {"email": "sg-gone@example.org", "timestamp": 1764493205, "smtp-id": gone_sent.message_id,
         "event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 unknown user",
         "sg_event_id": event_id(), "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001"},
        {"email": "sg-spam@example.org", "timestamp": 1764493206, "event": "spamreport",
         "sg_event_id": event_id(), "sg_message_id": "14c5d75ce93.dfd.64b469.filter0002"},
        {"email": "sg-gone@example.org", "timestamp": 1764493207, "event": "open", "smtp-id": gone_sent.message_id},
    ]
    body, headers = signed_sendgrid(key, events)
    with hooks_client(live, served, sendgrid_public_key=public) as client:
        before = snapshot(live)
        forged = [
            (body.replace(b"sg-spam@", b"sg-gone@"), headers),  # altered body
            (body, {**headers, SENDGRID_TIMESTAMP: str(int(headers[SENDGRID_TIMESTAMP]) + 1)}),  # altered timestamp
            signed_sendgrid(ec.generate_private_key(ec.SECP256R1()), events),  # somebody else's key
            (body, {k: v for k, v in headers.items() if k != SENDGRID_SIGNATURE}),  # unsigned
            (body, {k: v for k, v in headers.items() if k != SENDGRID_TIMESTAMP}),
            (body, {**headers, SENDGRID_SIGNATURE: base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()}),
        ]
        for forged_body, forged_headers in forged:
            response = client.post("/hooks/sendgrid", content=forged_body, headers=forged_headers)
            assert response.status_code == 403, response.text
        assert snapshot(live) == before

        response = client.post("/hooks/sendgrid", content=body, headers=headers)
        assert (response.status_code, response.json()) == (
            200, {"status": "ok", "outcomes": {"bounced": 1, "complained": 1}})
        assert delivery(live, gone_sent.id).status == DeliveryStatus.BOUNCED
        assert reader_by_id(live, gone.id).status == SubscriberStatus.BOUNCED
        assert reader_by_id(live, spam.id).status == SubscriberStatus.COMPLAINED
        assert delivery(live, spam_sent.id).status == DeliveryStatus.SENT
        assert (suppression(live, "sg-gone@example.org"), suppression(live, "sg-spam@example.org")) == (
            "bounced", "complained")

        after = snapshot(live)  # the same signed POST again, and re-signed as a retry: seen, not applied
        assert client.post("/hooks/sendgrid", content=body, headers=headers).json() == {
            "status": "ok", "outcomes": {}, "replays": 2}
        body, headers = signed_sendgrid(key, [*events, {"email": "sg-spam@example.org", "event": "spamreport",
                                                        "sg_event_id": event_id(), "timestamp": 1764493209}])
        assert client.post("/hooks/sendgrid", content=body, headers=headers).json() == {
            "status": "ok", "outcomes": {"already": 1}, "replays": 2}
        assert snapshot(live) == after


def test_a_stale_sendgrid_post_is_403_even_well_signed(
        live: Stack, served: ServedByAws, sendgrid_signer: tuple[ec.EllipticCurvePrivateKey, str]) -> None:
    key, public = sendgrid_signer
    reader = add_active_reader(live, "sg-stale@example.org")
    sent = sent_delivery(live, reader)
    events = [{"email": "sg-stale@example.org", "timestamp": 1764493205, "smtp-id": sent.message_id,
               "event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 unknown user",
               "sg_event_id": event_id()}]
    with hooks_client(live, served, sendgrid_public_key=public) as client:
        before = snapshot(live)
        for age in (11 * 60, 3 * 365 * 86400, -11 * 60):
            body, headers = signed_sendgrid(key, events, at=int(time.time()) - age)
            response = client.post("/hooks/sendgrid", content=body, headers=headers)
            assert response.status_code == 403 and "stamped" in response.json()["error"], response.text
        assert snapshot(live) == before
        body, headers = signed_sendgrid(key, events, at=int(time.time()) - 9 * 60)
        assert client.post("/hooks/sendgrid", content=body, headers=headers).json()["outcomes"] == {"bounced": 1}
