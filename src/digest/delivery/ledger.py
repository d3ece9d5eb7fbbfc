"""The ledger: one row per (edition, reader), and the only module that writes it.

Every statement that changes a delivery is here, built from `DeliveryStatus` and
`ErrorCode`: planning (one INSERT … SELECT per edition), the send loop's claim, lease
renewal and bulk results, the journal's replay, the staff actions that skip or requeue
rows, and the bounce reports that arrive after a 250. Each UPDATE that ends a delivery is
guarded by the state it expects (`status = 'queued'`, or `'sent'` for a later bounce), so
no write ever overwrites a final state and every one is safe to run twice.

The row is the dedupe key, the retry list, the ops view and the bounce target.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Integer, TextClause, bindparam, column, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from digest.editions import ScheduleError, local_instant, tallies
from digest.store import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ErrorCode,
    UTCDateTime,
    month_of,
    partitions,
    ts,
)

# Well under Redis' visibility timeout (3600 s): a longer countdown in the broker is redelivered and
# runs again and again (kombu#337, celery#2481); longer waits stay in the database (next_attempt_at).
BACKOFF_MAX_SECONDS = 900
WEEKLY_INTERVAL_DAYS = 7

# SQL literals from the enums, so the hand-written statements say what the ORM says.
QUEUED, SENT, FAILED, BOUNCED, SKIPPED = (f"'{s.value}'" for s in (
    DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED,
    DeliveryStatus.SKIPPED))

# ------------------------------------------------------------------ planning

# Who an edition goes to: one rule for planning and for the audience shown beforehand.
_ELIGIBLE = f"""
FROM subscribers s
WHERE s.status = 'active'
  AND (s.paused_until IS NULL OR s.paused_until <= :now)
  AND (s.frequency = 'every' OR NOT EXISTS (
        SELECT 1 FROM deliveries w
        WHERE w.subscriber_id = s.id AND w.status = {SENT} AND w.sent_at > :week_ago))
  {{topic_clause}} {{newsletter_clause}}
"""
_INSERT_DELIVERIES = f"""
INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, variant, planned_month)
SELECT :edition_id, s.id, {QUEUED}, 0, CAST(:variant AS INTEGER), :planned_month
{_ELIGIBLE}
ON CONFLICT (edition_id, subscriber_id, planned_month) DO NOTHING
"""
_COUNT_ELIGIBLE = f"SELECT COUNT(*) {_ELIGIBLE}"
_NEWSLETTER_CLAUSE = """
  AND EXISTS (SELECT 1 FROM newsletter_subscriptions ns
              WHERE ns.subscriber_id = s.id AND ns.newsletter_id = :newsletter_id)
"""
# A reader who chose no topics takes every edition; one who did takes editions sharing one.
_TOPIC_CLAUSE = """
  AND (NOT EXISTS (SELECT 1 FROM subscriber_topics t WHERE t.subscriber_id = s.id)
       OR EXISTS (SELECT 1 FROM subscriber_topics t
                  WHERE t.subscriber_id = s.id AND t.topic IN :topics))
"""
_READER_ZONES = """
SELECT DISTINCT s.timezone FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.edition_id = :e
"""
_HOLD_ZONE = """
UPDATE deliveries SET next_attempt_at = :at
WHERE edition_id = :e AND subscriber_id IN (SELECT id FROM subscribers WHERE {zone_test})
"""


def _eligible(sql: str, edition: Edition, now: datetime) -> tuple[TextClause, dict[str, object]]:
    topic_clause = _TOPIC_CLAUSE if edition.topics else ""
    newsletter_clause = _NEWSLETTER_CLAUSE if edition.newsletter_id is not None else ""
    statement = text(sql.format(topic_clause=topic_clause, newsletter_clause=newsletter_clause))
    statement = statement.bindparams(ts("now"), ts("week_ago"))
    params: dict[str, object] = {"edition_id": edition.id, "now": now,
                                 "week_ago": now - timedelta(days=WEEKLY_INTERVAL_DAYS)}
    if edition.newsletter_id is not None:
        params["newsletter_id"] = edition.newsletter_id
    if edition.topics:
        statement = statement.bindparams(bindparam("topics", expanding=True))
        params["topics"] = list(edition.topics)
    return statement, params


def plan(session: Session, edition: Edition, now: datetime, *, held: bool = False) -> int:
    """One queued delivery per eligible reader, in one INSERT … SELECT; returns rows added.

    Eligible: active, not paused, subscribed to the edition's newsletter (if it has one),
    sharing a topic with the edition (or having chosen none), and, for weekly readers,
    sent nothing in the last 7 days. `held` (a subject test): the rows carry no subject
    yet, and no claim takes them until `split_for_test` or `release_held` gives them one.
    """
    statement, params = _eligible(_INSERT_DELIVERIES, edition, now)
    # An edition is planned once (scheduled → sending happens once), in this one statement:
    # all its rows share the month, so (edition, reader, month) is unique as (edition, reader).
    params["planned_month"] = month_of(now)
    return session.execute(statement.bindparams(bindparam("planned_month", type_=Date())), {**params, "variant": None if held else 0}).rowcount or 0


# A random pick among the rows still held: ORDER BY random() is one sort of the edition's
# rows, in the database (both dialects spell it so), never the ids in Python.
_PICK_HELD = text(
    "UPDATE deliveries SET variant = :variant WHERE id IN ("
    f"SELECT id FROM deliveries WHERE edition_id = :e AND status = {QUEUED} AND variant IS NULL "
    "ORDER BY random() LIMIT :n)")


def split_for_test(session: Session, edition_id: int, size: int) -> None:
    """A subject test's readers: `size` of the held rows at random, half get subject 1,
    half subject 2 (size is even)."""
    for variant in (1, 2):
        session.execute(_PICK_HELD, {"variant": variant, "e": edition_id, "n": size // 2})


def release_held(session: Session, edition_id: int, variant: int) -> int:
    """The rows a subject test held (none given a subject yet) get `variant`, the
    winner's, and become claimable; how many. Safe to repeat: a second call finds none."""
    return session.execute(
        update(Delivery).where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.QUEUED,
                               Delivery.variant.is_(None))
        .values(variant=variant).execution_options(synchronize_session=False)).rowcount or 0


def count_audience(session: Session, edition: Edition, at: datetime, subscriber_id: int | None = None) -> int:
    """How many readers `plan` would write if the edition were released at `at`: the
    audience an editor sees before sending (with `subscriber_id`: 1 if that reader is in
    it, else 0). Once planned, the ledger's rows are the answer."""
    sql = _COUNT_ELIGIBLE + (" AND s.id = :subscriber_id" if subscriber_id is not None else "")
    statement, params = _eligible(sql, edition, at)
    if subscriber_id is not None:
        params["subscriber_id"] = subscriber_id
    return session.execute(statement, params).scalar_one()


def hold_for_local_time(session: Session, edition: Edition) -> None:
    """Each reader's delivery waits until the edition's wall time in their zone: one
    set-based UPDATE per distinct zone, never one per reader."""
    assert edition.local_time and edition.local_date and edition.local_zone
    for (zone,) in session.execute(text(_READER_ZONES), {"e": edition.id}).all():
        try:
            at = local_instant(edition.local_date, edition.local_time, zone or edition.local_zone)
        except ScheduleError:  # a zone that no longer exists: the edition's own zone
            at = local_instant(edition.local_date, edition.local_time, edition.local_zone)
        zone_test = "timezone IS NULL" if zone is None else "timezone = :zone"
        session.execute(text(_HOLD_ZONE.format(zone_test=zone_test)).bindparams(ts("at")),
                        {"e": edition.id, "at": at, "zone": zone})


def refresh_statistics(session: Session, month: date) -> None:
    """ANALYZE the columns the send path filters deliveries on, right after planning.

    Until autovacuum gets to it (a minute at best), PostgreSQL believes an edition planned
    a moment ago has one row: it then reads every queued delivery of the edition through
    (edition_id, status) and filters the batch's id range out of them, for each claim and
    each result write, which is quadratic in readers (0.2 s a batch at a million). With
    statistics it takes the partial index by id range. Samples ~30,000 rows, whatever the
    table's size; does not block readers or writers. SQLite plans without statistics.

    Partitioned (`month`: the rows' planned_month), only the month's partition, where the new
    rows are: ANALYZE on the parent would sample every partition again, a second or more of
    planning with a year of months."""
    if session.get_bind().dialect.name == "postgresql":
        table = "deliveries"
        if partitions.is_partitioned(session.connection()):
            have = partitions.month_partitions(session.connection())
            table = partitions.partition_name(month) if month in have else partitions.DEFAULT_PARTITION
        # planned_month too: the result statements filter on it, and without its statistics a
        # new month's partition looks as if few rows matched, which turns the result UPDATE
        # into a scan of the edition's queued rows per chunk.
        session.execute(text(f"ANALYZE {table} (edition_id, status, id, lease_until, next_attempt_at, planned_month)"))


def batch_ranges(session: Session, edition_id: int, batch_size: int) -> list[tuple[int, int]]:
    """Inclusive delivery-id ranges of at most batch_size queued rows each (not the rows a
    subject test holds: nothing would claim them).

    Reads one id in batch_size from the database (a window function), so a million
    readers cost two thousand small rows here, never the full list in memory.
    """
    starts = list(session.execute(
        text("SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn "
             f"FROM deliveries WHERE edition_id = :e AND status = {QUEUED} AND variant IS NOT NULL) q "
             "WHERE (rn - 1) % :size = 0 ORDER BY id"),
        {"e": edition_id, "size": batch_size}).scalars())
    if not starts:
        return []
    last = session.execute(text("SELECT MAX(id) FROM deliveries WHERE edition_id = :e "
                                f"AND status = {QUEUED} AND variant IS NOT NULL"),
                           {"e": edition_id}).scalar_one()
    ends = [start - 1 for start in starts[1:]] + [last]
    return list(zip(starts, ends, strict=True))


# ------------------------------------------------------------------ the send loop

_CLAIM = text(f"""
UPDATE deliveries SET lease_until = :lease_until
WHERE edition_id = :e AND id BETWEEN :lo AND :hi AND status = {QUEUED}
  AND (lease_until IS NULL OR lease_until < :now)
  AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
  AND variant IS NOT NULL
RETURNING id, subscriber_id, attempts, variant, planned_month
""").bindparams(ts("now"), ts("lease_until")).columns(
    column("id", BigInteger), column("subscriber_id", BigInteger), column("attempts", Integer),
    column("variant", Integer), column("planned_month", Date))
# By range, so the statement is the same size however many rows are left. Only rows still
# holding one of the holder's own lease ends are extended (a claim always writes a later end
# than any lease it took over, so an end names one holder's tenure): a batch whose lease ran
# out and was claimed elsewhere never extends the new holder's. Several ends when renewals
# failed: a failed COMMIT may still have landed.
_RENEW_LEASE = text(
    "UPDATE deliveries SET lease_until = :until WHERE edition_id = :e AND id BETWEEN :lo AND :hi "
    f"AND status = {QUEUED} AND lease_until IN :held"
).bindparams(ts("until"), bindparam("held", type_=UTCDateTime(), expanding=True))

# The one statement that marks a delivery sent (the journal's replay uses it too).
MARK_SENT = text(
    f"UPDATE deliveries SET status = {SENT}, attempts = attempts + 1, message_id = :message_id, "
    "sent_at = :at, attempted_at = :at, story_ids = :story_ids, last_error = NULL, error_code = NULL, "
    f"lease_until = NULL, next_attempt_at = NULL WHERE id = :id AND status = {QUEUED}"
).bindparams(ts("at"), bindparam("story_ids", type_=JSON))
# The send loop's results name their month too (the rows' planned_month, from the claim): on
# PostgreSQL each statement then touches one partition, not every month's index.
_IN_MONTH = " AND planned_month = :month"
_MONTH = bindparam("month", type_=Date())
# One statement per outcome, each run as an executemany over the chunk's rows. The
# `status = 'queued'` guard keeps a record from ever overwriting a final state.
_RECORD = {
    "sent": text(str(MARK_SENT) + _IN_MONTH).bindparams(ts("at"), bindparam("story_ids", type_=JSON), _MONTH),
    "bounced": text(
        f"UPDATE deliveries SET status = {BOUNCED}, attempts = attempts + 1, message_id = :message_id, "
        "last_error = :error, error_code = :code, attempted_at = :at, lease_until = NULL "
        f"WHERE id = :id AND status = {QUEUED}" + _IN_MONTH
    ).bindparams(ts("at"), _MONTH),
    "skipped": text(
        f"UPDATE deliveries SET status = {SKIPPED}, last_error = :error, error_code = :code, lease_until = NULL "
        f"WHERE id = :id AND status = {QUEUED}" + _IN_MONTH
    ).bindparams(_MONTH),
    "transient": text(
        "UPDATE deliveries SET attempts = attempts + 1, last_error = :error, error_code = :code, "
        "lease_until = NULL, next_attempt_at = :retry_at, attempted_at = :at, "
        f"status = CASE WHEN attempts + 1 >= :max_attempts THEN {FAILED} ELSE {QUEUED} END "
        f"WHERE id = :id AND status = {QUEUED}" + _IN_MONTH
    ).bindparams(ts("retry_at"), ts("at"), _MONTH),
    "released": text(
        "UPDATE deliveries SET lease_until = NULL, next_attempt_at = :retry_at "
        f"WHERE id = :id AND status = {QUEUED}" + _IN_MONTH
    ).bindparams(ts("retry_at"), _MONTH),
}
# The common outcome in one statement on PostgreSQL: the chunk's rows as arrays, joined by
# id. An executemany runs the UPDATE once per row, and that was most of the server's time.
_RECORD_SENT_PG = text(
    f"UPDATE deliveries AS d SET status = {SENT}, attempts = d.attempts + 1, message_id = v.message_id, "
    "sent_at = :at, attempted_at = :at, story_ids = CAST(v.story_ids AS json), last_error = NULL, "
    "error_code = NULL, lease_until = NULL, next_attempt_at = NULL "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:message_ids AS text[]), CAST(:story_ids AS text[])) "
    f"AS v(id, message_id, story_ids) WHERE d.id = v.id AND d.status = {QUEUED} AND d.planned_month = :month"
).bindparams(ts("at"), _MONTH)
# What each outcome says in error_code when its Result carries none of its own.
_OUTCOME_CODES = {"bounced": ErrorCode.HARD_BOUNCE, "transient": ErrorCode.TRANSIENT}


@dataclass
class Result:
    """One claimed delivery's outcome, as the send loop hands it to `record`."""

    delivery_id: int
    subscriber_id: int
    outcome: str  # sent, bounced, skipped, transient or released (a key of _RECORD)
    attempts_before: int = 0
    message_id: str | None = None
    error: str | None = None
    connection_lost: bool = False
    story_ids: list[int] | None = None
    code: ErrorCode | None = None


def backoff_seconds(attempt: int, base_seconds: float) -> float:
    """Exponential with ±20 % jitter, so a burst of retries does not come back in step."""
    delay = min(BACKOFF_MAX_SECONDS, base_seconds * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.8, 1.2)


def claim(session: Session, edition_id: int, first_id: int, last_id: int, now: datetime,
          lease_until: datetime) -> list[Any]:
    """Lease the range's queued rows that are free and due: (id, subscriber_id, attempts,
    variant), by id. A batch run twice, or by two workers at once, finds nothing left the
    second time. Rows a subject test holds (variant NULL) are never taken."""
    rows = session.execute(_CLAIM, {"e": edition_id, "lo": first_id, "hi": last_id, "now": now,
                                    "lease_until": lease_until}).all()
    rows.sort(key=lambda row: row.id)
    return rows


def renew_lease(session: Session, edition_id: int, first_id: int, last_id: int, held: list[datetime],
                until: datetime) -> int:
    """Extend to `until` the range's queued rows whose lease ends at one of `held` (the
    holder's own ends: see _RENEW_LEASE). Returns the rows extended."""
    return session.execute(_RENEW_LEASE, {"e": edition_id, "lo": first_id, "hi": last_id, "held": held,
                                          "until": until}).rowcount or 0


def record(session: Session, results: list[Result], now: datetime, *, month: date, max_attempts: int,
           retry_base_seconds: float) -> Counter[str]:
    """Write a chunk of results of one edition (its rows' planned_month: `month`): one
    statement per kind of outcome. Returns the kinds' counts."""
    by_kind: dict[str, list[dict[str, object]]] = {}
    for result in results:
        params: dict[str, object] = {"id": result.delivery_id, "month": month}
        if result.outcome in ("sent", "bounced"):
            params["message_id"] = result.message_id
        if result.outcome in ("sent", "bounced", "transient"):
            params["at"] = now
        if result.outcome == "sent":
            params["story_ids"] = result.story_ids
        if result.outcome in ("bounced", "skipped", "transient"):
            params["error"] = (result.error or "")[:1000]
            code = result.code or _OUTCOME_CODES.get(result.outcome)
            params["code"] = code.value if code else None
        if result.outcome == "transient":
            params["max_attempts"] = max_attempts
        if result.outcome in ("transient", "released"):
            params["retry_at"] = now + timedelta(
                seconds=backoff_seconds(result.attempts_before + 1, retry_base_seconds))
        by_kind.setdefault(result.outcome, []).append(params)
    dialect = session.get_bind().dialect.name
    for kind, rows in by_kind.items():
        if kind == "sent" and dialect == "postgresql":
            session.execute(_RECORD_SENT_PG, {
                "at": now, "month": month, "ids": [r["id"] for r in rows], "message_ids": [r["message_id"] for r in rows],
                "story_ids": [json.dumps(r["story_ids"]) for r in rows]})
        else:
            session.execute(_RECORD[kind], rows)
    return Counter({kind: len(rows) for kind, rows in by_kind.items()})


def mark_sent(session: Session, rows: list[dict[str, object]]) -> None:
    """Rows ({id, message_id, story_ids, at}) a journal says were sent (digest.delivery.journal)."""
    session.execute(MARK_SENT, rows)


def next_retry_at(session: Session, edition_id: int, first_id: int, last_id: int) -> datetime | None:
    return session.scalar(select(func.min(Delivery.next_attempt_at)).where(
        Delivery.edition_id == edition_id, Delivery.id.between(first_id, last_id),
        Delivery.status == DeliveryStatus.QUEUED))


def recent_errors(session: Session, edition_id: int, window: int) -> list[str | None]:
    """last_error of the edition's last `window` attempts, newest first (auto-pause)."""
    return list(session.execute(
        select(Delivery.last_error).where(Delivery.edition_id == edition_id, Delivery.attempted_at.is_not(None))
        .order_by(Delivery.attempted_at.desc()).limit(window)).scalars())


# ------------------------------------------------------------------ staff actions


def skip_cancelled(session: Session, edition_id: int | None, now: datetime) -> int:
    """A cancelled edition's queued deliveries become final (skipped, code edition_cancelled),
    except rows a live worker holds: that batch records them itself, as sent if they went
    out, so the ledger never calls a delivered message skipped. The sweeper finishes the
    job for rows whose worker died (edition_id None: every cancelled edition)."""
    cancelled = select(Edition.id).where(Edition.status == EditionStatus.CANCELLED)
    target = Delivery.edition_id == edition_id if edition_id is not None else Delivery.edition_id.in_(cancelled)
    return session.execute(
        update(Delivery).where(target, Delivery.status == DeliveryStatus.QUEUED,
                               (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now))
        .values(status=DeliveryStatus.SKIPPED, last_error="edition cancelled",
                error_code=ErrorCode.EDITION_CANCELLED, lease_until=None)
        .execution_options(synchronize_session=False)).rowcount or 0


def requeue_failed(session: Session, edition_id: int) -> int:
    """Only the failed deliveries back to queued, their attempts reset (never the sent or
    bounced): how many this call requeued, 0 on a second press."""
    return session.execute(
        update(Delivery).where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.QUEUED, attempts=0, next_attempt_at=None, lease_until=None)
        .execution_options(synchronize_session=False)).rowcount or 0


def _cut_short(edition_id: int) -> Any:
    return (Delivery.edition_id == edition_id) & (
        (Delivery.status == DeliveryStatus.QUEUED)
        | ((Delivery.status == DeliveryStatus.SKIPPED) & (Delivery.error_code == ErrorCode.EDITION_CANCELLED)))


def count_cut_short(session: Session, edition_id: int) -> int:
    """Deliveries an edition cut short never got to: still queued, or skipped only because
    the edition was cancelled (by code, never by the words)."""
    return session.scalar(select(func.count()).select_from(Delivery).where(_cut_short(edition_id))) or 0


def requeue_cut_short(session: Session, edition_id: int) -> int:
    """The cancelled-skipped deliveries back to queued; returns how many are queued now."""
    session.execute(
        update(Delivery).where(Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SKIPPED,
                               Delivery.error_code == ErrorCode.EDITION_CANCELLED)
        .values(status=DeliveryStatus.QUEUED, last_error=None, error_code=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.QUEUED)) or 0


# ------------------------------------------------------------------ reports after the 250


def bounce_sent(session: Session, delivery_id: int, error: str) -> bool:
    """A hard-bounce report for a delivery we recorded sent: now bounced (its edition's
    tally too, in the same transaction). True if changed."""
    changed = session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENT)
        .values(status=DeliveryStatus.BOUNCED, last_error=error[:1000], error_code=ErrorCode.HARD_BOUNCE)
        .execution_options(synchronize_session=False)).rowcount == 1
    if changed:
        tallies.bounced(session, delivery_id)
    return changed


def note_soft_bounce(session: Session, delivery_id: int, error: str) -> bool:
    """A soft-bounce report for a sent delivery, counted once per delivery (a `delayed` then
    a `failed 4.4.7` for the same copy are one): True if this is the first for the row."""
    return session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENT,
               or_(Delivery.error_code.is_(None), Delivery.error_code != ErrorCode.SOFT_BOUNCE))
        .values(last_error=error[:1000], error_code=ErrorCode.SOFT_BOUNCE)
        .execution_options(synchronize_session=False)).rowcount == 1


# ------------------------------------------------------------------ erasure


def forget_errors(session: Session, subscriber_id: int) -> int:
    """An erased reader's delivery errors go: mail servers quote the address in their replies
    (550 5.1.1 <ann@example.org>: no such user). The code of each error stays, so the counts
    by reason still add up. Returns how many rows were cleaned."""
    return session.execute(
        update(Delivery).where(Delivery.subscriber_id == subscriber_id, Delivery.last_error.is_not(None))
        .values(last_error=None).execution_options(synchronize_session=False)).rowcount or 0


# ------------------------------------------------------------------ retention


def delete_compacted(session: Session, month: date, edition_ids: list[int], limit: int) -> int:
    """Delete up to `limit` rows of a compacted month (digest.delivery.retention: its summaries
    exist), by id through the edition index; returns how many. The caller commits each batch."""
    if not edition_ids:
        return 0
    doomed = (select(Delivery.id).where(Delivery.edition_id.in_(edition_ids), Delivery.planned_month == month)
              .limit(limit).scalar_subquery())
    return session.execute(delete(Delivery).where(Delivery.id.in_(doomed), Delivery.planned_month == month)
                           .execution_options(synchronize_session=False)).rowcount or 0
