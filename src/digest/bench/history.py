"""9. History: the end-to-end send again on a database that already holds N days of daily
editions to the same readers (every reader sent every day, each copy with its five stories),
seeded as the product writes them but set-based: N×5 stories, N sent editions and
N × readers delivery rows in three INSERT … SELECT statements.

What it shows: whether the send rate and the planning time stay flat as history grows (the
per-reader dedupe reads only the deliveries that could hold one of the edition's candidate
stories; see digest.editions.variants). Goals: ≥ 90 % of the fresh rate with 90 days of
history, ≥ 85 % with 365.

The history sits in monthly partitions, as the retention job would have made them; with
`--history-plain` each history runs again on one plain table (the layout before
partitioning), in the same run, for the ratio. After the send, the retention job removes the
oldest month: a partition dropped, or on the plain table a batched DELETE of the same rows.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis as redis_lib
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from digest.delivery import compact_deliveries
from digest.observe import (
    edition_counts,
    failed_notices,
    feed_health,
    queue_snapshot,
    readers_by_day,
    render_metrics,
    send_rate,
    watched_editions,
)
from digest.readers import subscriber_counts
from digest.store import make_engine, month_of, partitions, utcnow

HISTORY_STORIES_PER_EDITION = 5
GOAL_HISTORY_SHARE = {90: 0.90, 365: 0.85}


def goal_share(days: int) -> float:
    """The issue's goal for `days` of history, interpolated between its two points."""
    if days <= 90:
        return GOAL_HISTORY_SHARE[90]
    if days >= 365:
        return GOAL_HISTORY_SHARE[365]
    return 0.90 - (days - 90) / (365 - 90) * 0.05


def seed_history(engine: Engine, days: int) -> dict[str, Any]:
    """`days` days of daily editions before today to every reader now in the database; the
    rows, how long seeding took and the table's size after."""
    started = time.perf_counter()
    with engine.begin() as conn:
        # The partitions the retention job would have made, month by month, as history grew.
        partitions.ensure_month_partitions(conn, sorted({month_of(utcnow() - timedelta(days=d)) for d in range(days + 1)}))
        conn.execute(text(
            """
            INSERT INTO stories (url, title, summary, body, published_at, topics, featured, pinned, status,
                                 created_at, updated_at)
            SELECT 'https://news.example.com/history/' || d || '/' || k, 'An earlier story ' || d || '.' || k,
                   'What happened that day.', '', now() - make_interval(days => d), '[]', false, false,
                   'published', now() - make_interval(days => d), now() - make_interval(days => d)
            FROM generate_series(1, CAST(:days AS int)) AS d, generate_series(1, CAST(:k AS int)) AS k
            """), {"days": days, "k": HISTORY_STORIES_PER_EDITION})
        conn.execute(text(
            """
            INSERT INTO editions (subject, send_at, max_stories, window_hours, status, planned_count, created_at,
                                  started_at, finished_at, story_triggered)
            SELECT 'Daily ' || d, now() - make_interval(days => d), 5, 48, 'sent',
                   (SELECT count(*) FROM subscribers), now() - make_interval(days => d),
                   now() - make_interval(days => d), now() - make_interval(days => d, mins => 10), false
            FROM generate_series(1, CAST(:days AS int)) AS d
            """), {"days": days})
        rows = conn.execute(text(
            """
            WITH day_stories AS (
                SELECT CAST(split_part(url, '/', 5) AS int) AS d, json_agg(id ORDER BY id) AS ids
                FROM stories WHERE url LIKE 'https://news.example.com/history/%' GROUP BY 1),
            days AS (
                SELECT e.id, e.send_at, s.ids FROM editions e
                JOIN day_stories s ON s.d = CAST(substr(e.subject, 7) AS int)
                WHERE e.subject LIKE 'Daily %')
            INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, sent_at, attempted_at, story_ids,
                                    planned_month)
            SELECT days.id, r.id, 'sent', 1, days.send_at + make_interval(secs => r.id % 600),
                   days.send_at + make_interval(secs => r.id % 600), days.ids,
                   CAST(date_trunc('month', days.send_at AT TIME ZONE 'UTC') AS date)
            FROM days CROSS JOIN subscribers r
            """)).rowcount
    with engine.begin() as conn:  # as the product keeps them: each sent edition counted when it finished
        conn.execute(text(
            """
            INSERT INTO edition_tallies (edition_id, sent, failed, bounced, skipped, queued, counted_at)
            SELECT d.edition_id, count(*) FILTER (WHERE d.status = 'sent'), count(*) FILTER (WHERE d.status = 'failed'),
                   count(*) FILTER (WHERE d.status = 'bounced'), count(*) FILTER (WHERE d.status = 'skipped'),
                   count(*) FILTER (WHERE d.status = 'queued'), now()
            FROM deliveries d JOIN editions e ON e.id = d.edition_id
            WHERE e.subject LIKE 'Daily %' GROUP BY d.edition_id
            """))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE deliveries"))
        conn.execute(text("ANALYZE stories"))
        conn.execute(text("ANALYZE editions"))
        size = conn.execute(text(  # a partitioned table's size is its partitions'
            "SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('deliveries') "
            "WHERE isleaf), pg_total_relation_size('deliveries'))"
        )).scalar_one()
    return {"days": days, "delivery_rows": rows, "seed_seconds": time.perf_counter() - started,
            "deliveries_mb": float(size) / 2**20}


DASHBOARD_LOOKS = 5
GOAL_DASHBOARD_MS = 200.0


def measure_dashboards(database_url: str, redis_url: str) -> dict[str, float]:
    """The median of DASHBOARD_LOOKS looks at what /ops, `digest status --json`, /metrics
    and the editor dashboard read, in milliseconds, on this database (the queries and their
    assembly, in this process; the HTTP layer adds a millisecond or two)."""
    engine = make_engine(database_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    broker = redis_lib.Redis.from_url(redis_url)
    queue = "digest-bench-dashboards"

    def ops() -> None:
        now = utcnow()
        with factory() as session:
            watched = watched_editions(session, now)
            queue_snapshot(session, watched, now, broker, queue).as_json()
            send_rate(session, [e.id for e in watched], now)
            feed_health(session)
            failed_notices(session, now)

    def status() -> None:
        now = utcnow()
        with factory() as session:
            queue_snapshot(session, watched_editions(session, now), now, broker, queue).as_json()

    def metrics() -> None:
        render_metrics(factory, broker, queue)

    def editor() -> None:
        now = utcnow()
        with factory() as session:
            recent = list(session.execute(text(
                "SELECT id FROM editions WHERE status IN ('sent', 'cancelled', 'skipped') "
                "ORDER BY send_at DESC, id DESC LIMIT 30")).scalars())
            edition_counts(session, recent)
            subscriber_counts(session)
            readers_by_day(session, None, now)

    looks = {"ops_ms": ops, "status_json_ms": status, "metrics_ms": metrics, "editor_dashboard_ms": editor}
    try:
        result = {}
        for name, look in looks.items():
            look()  # warm: the first look pays for connecting
            times = []
            for _ in range(DASHBOARD_LOOKS):
                started = time.perf_counter()
                look()
                times.append((time.perf_counter() - started) * 1000)
            result[name] = statistics.median(times)
        return result
    finally:
        broker.close()
        engine.dispose()


def use_layout(engine: Engine, layout: str) -> None:
    """The deliveries table as the run measures it: `partitioned` (as migrated) or `plain`
    (one table, as before partitioning: the baseline the partitioned figures are read against)."""
    if layout == "plain":
        with engine.begin() as conn:
            partitions.unpartition_deliveries(conn)


def measure_retention(engine: Engine, retention_days: int = 90) -> dict[str, Any]:
    """The retention job on the oldest month of the seeded history only (its clock set to the
    day that month falls out of the retention): summaries written, then the month removed —
    its partition dropped, or on a plain table deleted in batches (RETENTION_BATCH_ROWS) —
    with the time of each part."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with engine.connect() as conn:
        oldest = conn.execute(text("SELECT min(planned_month) FROM deliveries")).scalar_one()
        rows = conn.execute(text("SELECT count(*) FROM deliveries WHERE planned_month = :m"), {"m": oldest}).scalar_one()
    end = partitions.next_month(oldest)
    clock = datetime(end.year, end.month, end.day, 1, tzinfo=UTC) + timedelta(days=retention_days)
    report = compact_deliveries(factory, clock, retention_days)
    if report.removed != [oldest]:
        raise RuntimeError(f"the retention job removed {report.removed}, expected [{oldest}]: {report.as_json()}")
    return {"month": oldest.isoformat(), "rows": rows, "summarise_seconds": report.summarise_seconds,
            "remove_seconds": report.remove_seconds, "partition_dropped": bool(report.partitions_dropped),
            "delete_batches": report.delete_batches}
