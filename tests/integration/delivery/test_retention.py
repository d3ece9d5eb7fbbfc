"""Retention (digest.delivery.retention) on both databases: a month of deliveries older than
the retention becomes edition tallies and per-reader summaries, then goes (PostgreSQL: its
partition dropped; SQLite: deleted in batches); what the reader's export, their history,
bounce matching and the dashboards show afterwards; a month with an edition still sending
is left whole; a second run, or two at once, change nothing more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import compact_deliveries, erase_reader
from digest.feedback.apply import apply_event
from digest.feedback.reports import FeedbackEvent
from digest.observe.health import delivery_counts, edition_health
from digest.readers import RequestContext, export_data, reader_history
from digest.store import (
    Delivery,
    DeliveryCompaction,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionTally,
    ReaderDeliverySummary,
    Subscriber,
    SubscriberStatus,
    month_of,
    partitions,
    utcnow,
)
from tests.support.factories import seed_readers
from tests.support.processes import REPO

pytestmark = pytest.mark.integration

RETENTION_DAYS = 90
S, B, F, K, Q = (DeliveryStatus.SENT, DeliveryStatus.BOUNCED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED,
                 DeliveryStatus.QUEUED)


def edition_with_rows(session: Session, subject: str, at: datetime, status: EditionStatus,
                      rows: dict[int, DeliveryStatus], *, finished: bool = True) -> int:
    """An edition released at `at` with one delivery per reader, as planning stamps them."""
    edition = Edition(subject=subject, send_at=at, status=status, started_at=at,
                      finished_at=at + timedelta(minutes=10) if finished else None, planned_count=len(rows))
    session.add(edition)
    session.flush()
    for reader, status_ in rows.items():
        sent = status_ in (S, B)
        delivery = Delivery(edition_id=edition.id, subscriber_id=reader, status=status_, attempts=1,
                            sent_at=at if sent else None, attempted_at=at, planned_month=month_of(at),
                            story_ids=[1, 2] if status_ == S else None)
        session.add(delivery)
        session.flush()
        if sent:  # as the sender writes it (digest.mail.message_id_for)
            delivery.message_id = f"<digest.{edition.id}.{delivery.id}.0123456789abcdef@news.example.com>"
    return edition.id


def row_counts(session: Session, edition_id: int) -> Counter[str]:
    return Counter({DeliveryStatus(s).value: n for s, n in session.execute(
        select(Delivery.status, func.count()).where(Delivery.edition_id == edition_id).group_by(Delivery.status))})


def readers(factory: sessionmaker[Session], count: int) -> list[int]:
    seed_readers(factory, count, prefix="kept")
    with factory() as session:
        return list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))


def clean_compactions(factory: sessionmaker[Session]) -> None:
    """The session's PostgreSQL database is shared: start without earlier tests' months."""
    with factory.begin() as session:
        session.execute(text("DELETE FROM reader_delivery_summaries"))
        session.execute(text("DELETE FROM delivery_compactions"))


def snapshot(session: Session) -> tuple[object, ...]:
    return (sorted((s.subscriber_id, s.month, s.sent, s.bounced, s.failed, s.skipped, str(s.editions))
                   for s in session.scalars(select(ReaderDeliverySummary))),
            sorted((c.month, c.editions, c.rows) for c in session.scalars(select(DeliveryCompaction))),
            session.scalar(select(func.count()).select_from(Delivery)),
            sorted((t.edition_id, t.sent, t.bounced, t.failed, t.skipped) for t in session.scalars(select(EditionTally))))


def test_a_month_past_the_retention_becomes_summaries_and_goes(factory: sessionmaker[Session]) -> None:
    clean_compactions(factory)
    ann, bob, cat = readers(factory, 3)
    now = utcnow()
    old = now - timedelta(days=200)
    old_month = month_of(old)
    with factory.begin() as session:
        pg = session.get_bind().dialect.name == "postgresql"
        # The partition the job would have made when the month came (PostgreSQL).
        partitions.ensure_month_partitions(session.connection(), [old_month])
        sent = edition_with_rows(session, "Old and sent", old, EditionStatus.SENT, {ann: S, bob: B, cat: F})
        cancelled = edition_with_rows(session, "Old and cancelled", old + timedelta(days=1), EditionStatus.CANCELLED,
                                      {ann: S, bob: K})
        recent = edition_with_rows(session, "Recent", now - timedelta(days=2), EditionStatus.SENT, {ann: S, bob: S})
        session.add(EditionTally(edition_id=sent, sent=1, bounced=1, failed=1, skipped=0, queued=0))
    with factory() as session:
        before = {e: row_counts(session, e) for e in (sent, cancelled, recent)}
        bob_bounce_id = session.scalar(select(Delivery.message_id).where(Delivery.edition_id == sent,
                                                                         Delivery.subscriber_id == bob))

    report = compact_deliveries(factory, now, RETENTION_DAYS, batch_rows=2)

    assert report.compacted == [old_month] and report.removed == [old_month]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.edition_id.in_([sent, cancelled]))) == 0
        assert row_counts(session, recent) == before[recent]  # within the retention: kept
        if pg:  # the month went as a partition, in one statement; this month and two ahead exist
            assert report.partitions_dropped == [old_month] and report.rows_deleted == 0
            have = partitions.month_partitions(session.connection())
            assert old_month not in have
            ahead = [month_of(now)]
            for _ in range(2):
                ahead.append(partitions.next_month(ahead[-1]))
            assert set(ahead) <= set(have)
        else:  # five rows in batches of two
            assert (report.rows_deleted, report.delete_batches) == (5, 3)
        summaries = {s.subscriber_id: s for s in session.scalars(
            select(ReaderDeliverySummary).where(ReaderDeliverySummary.month == old_month))}
        assert {r: (s.sent, s.bounced, s.failed, s.skipped, s.editions) for r, s in summaries.items()} == {
            ann: (2, 0, 0, 0, [[sent, "sent"], [cancelled, "sent"]]),
            bob: (0, 1, 0, 1, [[sent, "bounced"], [cancelled, "skipped"]]),
            cat: (0, 0, 1, 0, [[sent, "failed"]]),
        }
        # Every compacted edition has its tally; the dashboards count what they counted.
        assert delivery_counts(session, [sent, cancelled, recent]) == before
        health = {h.id: h.as_dict() for h in edition_health(
            session, list(session.scalars(select(Edition).where(Edition.id.in_([sent, cancelled])))), now)}
        assert (health[sent]["sent"], health[sent]["bounced"], health[sent]["failed"]) == (1, 1, 1)
        assert (health[cancelled]["sent"], health[cancelled]["skipped"]) == (1, 1)

        # The reader's data export and their history still list the compacted editions.
        exported = export_data(session, session.get_one(Subscriber, bob))
        assert [(d["edition_id"], d["status"], d.get("compacted")) for d in exported["deliveries"]] == [
            (sent, "bounced", True), (cancelled, "skipped", True), (recent, "sent", None)]
        assert exported["delivery_months"] == [{
            "month": f"{old_month:%Y-%m}", "sent": 0, "bounced": 1, "failed": 0, "skipped": 1,
            "editions": [{"edition_id": sent, "subject": "Old and sent", "status": "bounced"},
                         {"edition_id": cancelled, "subject": "Old and cancelled", "status": "skipped"}]}]
        history = reader_history(session, bob)
        assert [d.edition_id for d in history.deliveries] == [recent]
        assert [(m.month, [e for e, _, _ in m.editions]) for m in history.compacted] == [(old_month, [sent, cancelled])]

    # A late bounce for a compacted message: no row to match, answered and counted, nothing changes.
    with factory.begin() as session:
        applied = apply_event(session, FeedbackEvent("hard", "dsn", "kept1@example.org", bob_bounce_id,
                                                     "5.1.1", "no such user"), soft_bounce_limit=3, now=now)
        assert applied.outcome == "unknown-message"
        assert session.get_one(Subscriber, bob).status == SubscriberStatus.ACTIVE

    with factory() as session:
        done = snapshot(session)
    again = compact_deliveries(factory, now, RETENTION_DAYS, batch_rows=2)
    assert (again.compacted, again.removed, again.partitions_dropped, again.rows_deleted) == ([], [], [], 0)
    with factory() as session:
        assert snapshot(session) == done

    # Erasure takes the summaries with the rest.
    with factory.begin() as session:
        erase_reader(session, session.get_one(Subscriber, bob), RequestContext(channel="test"))
    with factory() as session:
        assert not session.scalars(select(ReaderDeliverySummary).where(ReaderDeliverySummary.subscriber_id == bob)).all()
        assert session.scalars(select(ReaderDeliverySummary).where(ReaderDeliverySummary.subscriber_id == ann)).all()


def test_a_month_with_an_edition_still_sending_is_left_whole(factory: sessionmaker[Session]) -> None:
    clean_compactions(factory)
    ann, bob = readers(factory, 2)
    now = utcnow()
    old = now - timedelta(days=150)
    with factory.begin() as session:
        partitions.ensure_month_partitions(session.connection(), [month_of(old)])
        done = edition_with_rows(session, "Done", old, EditionStatus.SENT, {ann: S, bob: S})
        moving = edition_with_rows(session, "Still sending", old + timedelta(hours=1), EditionStatus.SENDING,
                                   {ann: S, bob: Q}, finished=False)
        paused = edition_with_rows(session, "Paused", old + timedelta(hours=2), EditionStatus.PAUSED, {ann: S},
                                   finished=False)
    report = compact_deliveries(factory, now, RETENTION_DAYS)
    assert report.compacted == [] and report.removed == []
    assert str(moving) in report.held[month_of(old)] and str(paused) in report.held[month_of(old)]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.edition_id.in_([done, moving, paused]))) == 5
        assert not session.scalars(select(ReaderDeliverySummary)).all()
        assert session.get(EditionTally, moving) is None  # still counted live
        if session.get_bind().dialect.name == "postgresql":
            assert month_of(old) in partitions.month_partitions(session.connection())


def test_a_month_that_finished_lately_waits(factory: sessionmaker[Session]) -> None:
    """An edition planned long ago but finished within the retention (sent to the missing last
    week) keeps its month: its rows are recent for bounce matching."""
    clean_compactions(factory)
    (ann,) = readers(factory, 1)
    now = utcnow()
    old = now - timedelta(days=150)
    with factory.begin() as session:
        edition = edition_with_rows(session, "Reopened", old, EditionStatus.SENT, {ann: S})
        session.get_one(Edition, edition).finished_at = now - timedelta(days=3)
    report = compact_deliveries(factory, now, RETENTION_DAYS)
    assert report.compacted == [] and "within the retention" in report.held[month_of(old)]


def test_two_runs_at_once_compact_a_month_once(factory: sessionmaker[Session]) -> None:
    clean_compactions(factory)
    people = readers(factory, 20)
    now = utcnow()
    old = now - timedelta(days=300)
    with factory.begin() as session:
        partitions.ensure_month_partitions(session.connection(), [month_of(old)])
        editions = [edition_with_rows(session, f"Day {d}", old + timedelta(days=d), EditionStatus.SENT,
                                      {r: S for r in people}) for d in range(3)]
    reports = []

    def run() -> None:
        reports.append(compact_deliveries(factory, now, RETENTION_DAYS, batch_rows=7))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r.compacted) for r in reports) == [0, 1]
    with factory() as session:
        summaries = list(session.scalars(select(ReaderDeliverySummary)))
        assert len(summaries) == 20 and all(s.sent == 3 for s in summaries)
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.edition_id.in_(editions))) == 0


def test_rows_without_their_partition_land_in_the_default_one_and_move_when_it_comes(
        factory: sessionmaker[Session]) -> None:
    """PostgreSQL: an insert never fails for want of a partition (the job did not run for
    months): it lands in the default partition, and moves into the month's own partition
    when the job creates it; retention removes such rows all the same."""
    with factory.begin() as session:
        if session.get_bind().dialect.name != "postgresql":  # no partitions: nothing to create, none made
            assert partitions.ensure_month_partitions(session.connection(), [date(2020, 1, 1)]) == []
            assert partitions.month_partitions(session.connection()) == {}
            return
    clean_compactions(factory)
    (ann,) = readers(factory, 1)
    now = utcnow()
    far = month_of(now - timedelta(days=800))
    with factory.begin() as session:
        if far in partitions.month_partitions(session.connection()):
            partitions.drop_month_partition(session.connection(), far)
        edition = edition_with_rows(session, "Stray", datetime(far.year, far.month, 3, tzinfo=now.tzinfo),
                                    EditionStatus.SENT, {ann: S})
    with factory.begin() as session:
        stray = session.execute(text("SELECT count(*) FROM deliveries_default WHERE edition_id = :e"),
                                {"e": edition}).scalar_one()
        assert stray == 1
        assert partitions.ensure_month_partitions(session.connection(), [far]) == [far]
    with factory() as session:
        assert session.execute(text(f"SELECT count(*) FROM {partitions.partition_name(far)}")).scalar_one() == 1
        assert session.execute(text("SELECT count(*) FROM deliveries_default WHERE edition_id = :e"),
                               {"e": edition}).scalar_one() == 0
    with factory.begin() as session:  # and back to the default, to be removed by batches
        partitions.drop_month_partition(session.connection(), far)
        edition = edition_with_rows(session, "Stray again", datetime(far.year, far.month, 4, tzinfo=now.tzinfo),
                                    EditionStatus.SENT, {ann: S})
    report = compact_deliveries(factory, now, RETENTION_DAYS)
    assert far in report.removed and report.rows_deleted == 1
    with factory() as session:
        assert session.get(EditionTally, edition) is not None
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.edition_id == edition)) == 0


def test_month_arithmetic() -> None:
    assert partitions.next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert partitions.partition_name(date(2027, 1, 1)) == "deliveries_2027_01"


def test_the_command_line_runs_the_same_job(factory: sessionmaker[Session]) -> None:
    """`digest deliveries compact --json`: what beat's task does, reported as JSON."""
    clean_compactions(factory)
    (ann,) = readers(factory, 1)
    old = utcnow() - timedelta(days=400)
    with factory.begin() as session:
        partitions.ensure_month_partitions(session.connection(), [month_of(old)])
        edition_with_rows(session, "Long ago", old, EditionStatus.SENT, {ann: S})
        url = session.get_bind().url.render_as_string(hide_password=False)
    env = {**os.environ, "DIGEST_ENV": "test", "DIGEST_SECRET_KEY": "integration-test-secret-0123456789",
           "DIGEST_DATABASE_URL": url, "DIGEST_DELIVERY_RETENTION_DAYS": "90", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "digest.cli", "deliveries", "compact", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert month_of(old).isoformat() in report["compacted"] and month_of(old).isoformat() in report["removed"]
    again = subprocess.run([sys.executable, "-m", "digest.cli", "deliveries", "compact"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0 and "compacted: none" in again.stdout, again.stdout + again.stderr
