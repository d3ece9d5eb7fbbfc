"""/metrics, scraped from a live `digest serve` and read with prometheus-client's own parser.

The ledger gauges must say what the database and Redis say, to the row; the message
counters, counted inside the worker's prefork processes, reach /metrics only through
PROMETHEUS_MULTIPROC_DIR, and then must add up to what the SMTP server received.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from digest.editions import lifecycle
from digest.editions.newsletters import create_newsletter
from digest.readers import subscribe_to_all
from digest.store.models import Edition, EditionStatus, Subscriber, utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.lane import Lane, ledger, start_lane
from tests.support.processes import free_port
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

Labels = tuple[tuple[str, str], ...]


def scrape(base_url: str) -> dict[str, dict[Labels, float]]:
    """Every sample on /metrics: {sample name: {sorted labels: value}}."""
    response = httpx.get(f"{base_url}/metrics", timeout=20)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def deliveries_by_newsletter(stack: Stack) -> dict[Labels, float]:
    """The ledger grouped as digest_deliveries groups it (a newsletter's slug, or "none")."""
    with stack.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT COALESCE(n.slug, 'none'), d.status, COUNT(*) FROM deliveries d "
            "JOIN editions e ON e.id = d.edition_id LEFT JOIN newsletters n ON n.id = e.newsletter_id "
            "GROUP BY COALESCE(n.slug, 'none'), d.status"))
        return {(("newsletter", slug), ("status", status)): float(n) for slug, status, n in rows}


def editions_by_status(stack: Stack) -> dict[Labels, float]:
    with stack.engine.connect() as conn:
        counts = Counter({status: n for status, n in conn.execute(
            text("SELECT status, COUNT(*) FROM editions GROUP BY status"))})
    return {(("status", status.value),): float(counts[status.value]) for status in EditionStatus}


def newsletter_edition(stack: Stack, slug: str) -> int:
    """A newsletter every reader takes, and its edition, due now."""
    with stack.factory.begin() as session:
        newsletter = create_newsletter(session, slug=slug, name=slug.title(), cron="0 7 * * *", timezone="UTC",
                                       allowed_topics=TOPICS)
        subscribe_to_all(session, session.scalars(select(Subscriber.id)))
        edition = Edition(subject=f"{slug.title()} edition", newsletter_id=newsletter.id,
                          send_at=utcnow() - timedelta(seconds=1), status=EditionStatus.SCHEDULED, max_stories=5,
                          window_hours=SAMPLE_WINDOW_HOURS)
        session.add(edition)
        session.flush()
        return edition.id


def test_the_ledger_gauges_say_what_the_database_and_redis_say(live: Stack, lane: Lane) -> None:
    seed_readers(live.factory, 60, extra=["reject-1@example.org", "reject-2@example.org"])
    morning = newsletter_edition(live, "morning")
    lane.release_due()
    lane.wait_for(morning, "sent")

    # A second edition, held mid-send: both worker processes wait inside a message, the
    # rest of its batches wait in Redis.
    plain = due_edition(live.factory)
    lane.smtp.hold(after=6)
    lane.release_due()
    lane.wait_held()
    with live.factory.begin() as session:
        draft = Edition(subject="Draft", send_at=utcnow() + timedelta(days=1), status=EditionStatus.DRAFT,
                        max_stories=5, window_hours=SAMPLE_WINDOW_HOURS)
        cancelled = Edition(subject="Called off", send_at=utcnow() + timedelta(days=1),
                            status=EditionStatus.SCHEDULED, max_stories=5, window_hours=SAMPLE_WINDOW_HOURS)
        session.add_all([draft, cancelled])
        session.flush()
        lifecycle.transition(session, cancelled.id, "cancel")
    broker = redis.Redis.from_url(live.broker_url)
    try:
        depth = broker.llen(lane.queue)
        samples = scrape(lane.web_url)
        assert broker.llen(lane.queue) == depth  # nothing moved while we looked
    finally:
        broker.close()

    expected = deliveries_by_newsletter(live)
    assert samples["digest_deliveries"] == expected
    assert expected[(("newsletter", "morning"), ("status", "sent"))] == 60
    assert expected[(("newsletter", "morning"), ("status", "bounced"))] == 2
    assert expected[(("newsletter", "none"), ("status", "queued"))] > 0
    assert samples["digest_deliveries_pending"] == {(): float(ledger(live, plain)["pending"])}
    assert samples["digest_editions"] == editions_by_status(live)
    assert samples["digest_editions"][(("status", "sending"),)] == 1
    assert samples["digest_queue_depth"] == {(("queue", lane.queue),): float(depth)}
    assert depth > 0
    # Messages are counted where they are sent, in the worker's processes: a server
    # without PROMETHEUS_MULTIPROC_DIR has none of them.
    assert not samples.get("digest_messages_total")

    lane.smtp.release()
    lane.wait_for(plain, "sent")
    lane.settle()
    after = scrape(lane.web_url)
    assert after["digest_deliveries"] == deliveries_by_newsletter(live)
    assert after["digest_deliveries_pending"] == {(): 0.0}
    assert after["digest_queue_depth"] == {(("queue", lane.queue),): 0.0}


def test_multiprocess_counters_add_up_to_what_the_worker_sent(live: Stack, tmp_path: Path) -> None:
    """`digest serve` and the worker with PROMETHEUS_MULTIPROC_DIR: the counters of the
    worker's prefork processes reach /metrics, summed; and the worker's own endpoint
    (DIGEST_WORKER_METRICS_PORT, what the compose file's Prometheus scrapes) says the same."""
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 70, extra=["reject-1@example.org"])
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    worker_port = free_port()
    lane = start_lane(live, "multiproc", worker=False, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                      DIGEST_WORKER_METRICS_PORT=str(worker_port))
    try:
        edition_id = due_edition(live.factory)
        lane.release_due()  # batches wait in Redis: no worker yet
        before = scrape(lane.web_url)
        assert before["digest_queue_depth"] == {(("queue", lane.queue),): 4.0}  # 71 deliveries, 20 a batch
        assert before["digest_deliveries_pending"] == {(): 71.0}
        assert not before.get("digest_messages_total")

        lane.launch_worker()
        lane.wait_ready()
        lane.wait_for(edition_id, "sent")
        deadline = time.monotonic() + 10
        while lane.smtp.count() < 70 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = scrape(lane.web_url)
        sent = ledger(live, edition_id)["sent"]
        assert sent == lane.smtp.count() == len(addresses) - 1
        messages = after["digest_messages_total"]
        assert messages[(("newsletter", "none"), ("outcome", "sent"))] == sent
        assert messages[(("newsletter", "none"), ("outcome", "bounced"))] == 1
        assert sum(messages.values()) == len(addresses)
        assert after["digest_send_seconds_count"][()] == len(addresses)
        assert list(metrics_dir.glob("counter_*.db"))  # written by the worker's processes
        assert after["digest_queue_depth"] == {(("queue", lane.queue),): 0.0}
        from_worker = scrape(f"http://127.0.0.1:{worker_port}")
        assert from_worker["digest_messages_total"] == messages
        assert from_worker["digest_send_seconds_count"][()] == len(addresses)
    finally:
        lane.settle()
        lane.stop()
