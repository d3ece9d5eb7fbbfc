"""The pipeline end to end: Celery worker on Redis, a real database, a real SMTP server."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select, text

from digest.delivery.pipeline import release_due
from digest.store.models import Delivery, Subscriber, utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories, send_due_edition
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def _statuses(stack: Stack, edition_id: int) -> Counter[str]:
    with stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT status, COUNT(*) FROM deliveries WHERE edition_id = :e GROUP BY status"),
                            {"e": edition_id})
        return Counter({status: count for status, count in rows})


def test_edition_to_200_readers_arrives_exactly_once(live: Stack) -> None:
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 200)
    edition_id = send_due_edition(live, "Featured — “today”")

    received = live.smtp.by_recipient()
    assert sorted(received) == sorted(addresses)
    assert all(len(copies) == 1 for copies in received.values())
    with live.factory() as session:
        tokens = {e: t for e, t in session.execute(select(Subscriber.email, Subscriber.token))}
        titles = {i: t for i, t in session.execute(text("SELECT id, title FROM stories"))}
        carried = {e: ids for e, ids in session.execute(
            select(Subscriber.email, Delivery.story_ids).join(Delivery, Delivery.subscriber_id == Subscriber.id))}
        message_ids = {e: m for e, m in session.execute(
            select(Subscriber.email, Delivery.message_id).join(Delivery, Delivery.subscriber_id == Subscriber.id)
        )}
    seen_ids = set()
    for address, [copy] in received.items():
        message = copy.message
        assert message["To"].addresses[0].addr_spec == address
        assert message["From"] == "Political IQ <digest@news.example.com>"
        assert message["Subject"] == "Featured — “today”"
        assert message["List-Id"] == "Featured Stories <featured.news.example.com>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        token = tokens[address]
        assert message["List-Unsubscribe"].startswith(f"<{live.base_url}/unsubscribe/{token}>")
        assert "mailto:" in message["List-Unsubscribe"]
        assert re.fullmatch(r"\d+:digest:edition:digest", message["Feedback-ID"])
        assert message["Message-ID"] == message_ids[address]
        seen_ids.add(message["Message-ID"])
        assert message.get_content_type() == "multipart/alternative"
        plain, html = message.iter_parts()
        assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
        assert f"/unsubscribe/{token}" in plain.get_content()
        assert f'href="{live.base_url}/unsubscribe/{token}"' in html.get_content()
        assert len(carried[address]) == 5
        assert all(titles[i] in plain.get_content() for i in carried[address])
    assert len(seen_ids) == 200
    assert _statuses(live, edition_id) == Counter({"sent": 200})


def test_releasing_and_rerunning_batches_sends_nothing_twice(live: Stack) -> None:
    seed_stories(live.factory)
    seed_readers(live.factory, 120)
    edition_id = send_due_edition(live)
    assert len(live.smtp.messages) == 120

    # Release again, and replay every batch as if the broker redelivered them all.
    live.client.send_task("digest.release_due_editions")
    with live.engine.connect() as conn:
        lo, hi = conn.execute(text("SELECT MIN(id), MAX(id) FROM deliveries WHERE edition_id = :e"),
                              {"e": edition_id}).one()
    for _ in range(2):
        live.client.send_task("digest.send_batch", args=[edition_id, lo, hi])
    live.client.send_task("digest.sweep")
    live.drain()
    assert len(live.smtp.messages) == 120
    assert _statuses(live, edition_id) == Counter({"sent": 120})


def test_reader_who_leaves_after_planning_gets_nothing(live: Stack) -> None:
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 60)
    edition_id = due_edition(live.factory)
    batches: list[tuple[int, int, int]] = []
    released = release_due(live.factory, utcnow(), 50, lambda *args: batches.append(args))
    assert released == [edition_id] and len(batches) == 2
    leaver = addresses[7]
    with live.engine.begin() as conn:
        conn.execute(text("UPDATE subscribers SET status = 'unsubscribed' WHERE email = :a"), {"a": leaver})
    for args in batches:
        live.client.send_task("digest.send_batch", args=list(args))
    live.wait_for_edition(edition_id)
    received = live.smtp.by_recipient()
    assert leaver not in received
    assert len(received) == 59
    assert _statuses(live, edition_id) == Counter({"sent": 59, "skipped": 1})


def test_rejected_address_ends_bounced_and_transient_failures_retry(live: Stack) -> None:
    seed_stories(live.factory)
    extra = ["reject-me@example.org", "tempfail-once@example.org", "drop-connection@example.org"]
    seed_readers(live.factory, 30, extra=extra)
    edition_id = send_due_edition(live, timeout=90)

    received = live.smtp.by_recipient()
    assert "reject-me@example.org" not in received
    assert len(received["tempfail-once@example.org"]) == 1
    assert len(received["drop-connection@example.org"]) == 1
    assert all(len(copies) == 1 for copies in received.values())
    assert len(received) == 32
    with live.engine.connect() as conn:
        rows = {email: (status, d_status, attempts, error) for email, status, d_status, attempts, error in conn.execute(text(
            "SELECT s.email, s.status, d.status, d.attempts, d.last_error FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id WHERE d.edition_id = :e"), {"e": edition_id})}
    status, delivery_status, attempts, error = rows["reject-me@example.org"]
    assert (status, delivery_status) == ("bounced", "bounced") and error.startswith("550")
    from digest.readers import email_hash

    with live.engine.connect() as conn:
        reasons = conn.execute(text("SELECT reason FROM suppressions WHERE email_hash = :h"),
                               {"h": email_hash("reject-me@example.org")}).scalars().all()
    assert reasons == ["bounced"]  # a hard bounce is never re-added by an import or the form
    assert rows["tempfail-once@example.org"][1:3] == ("sent", 2)
    assert rows["drop-connection@example.org"][1:3] == ("sent", 2)
    assert _statuses(live, edition_id) == Counter({"sent": 32, "bounced": 1})
