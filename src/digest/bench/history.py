"""9. History: the end-to-end send again on a database that already holds N days of daily
editions to the same readers (every reader sent every day, each copy with its five stories),
seeded as the product writes them but set-based: N×5 stories, N sent editions and
N × readers delivery rows in three INSERT … SELECT statements.

What it shows: whether the send rate and the planning time stay flat as history grows (the
per-reader dedupe reads only the deliveries that could hold one of the edition's candidate
stories; see digest.editions.variants). Goals: ≥ 90 % of the fresh rate with 90 days of
history, ≥ 85 % with 365.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, text

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
            INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, sent_at, attempted_at, story_ids)
            SELECT days.id, r.id, 'sent', 1, days.send_at + make_interval(secs => r.id % 600),
                   days.send_at + make_interval(secs => r.id % 600), days.ids
            FROM days CROSS JOIN subscribers r
            """)).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE deliveries"))
        conn.execute(text("ANALYZE stories"))
        conn.execute(text("ANALYZE editions"))
        size = conn.execute(text("SELECT pg_total_relation_size('deliveries')")).scalar_one()
    return {"days": days, "delivery_rows": rows, "seed_seconds": time.perf_counter() - started,
            "deliveries_mb": size / 2**20}
