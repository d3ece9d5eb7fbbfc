"""What a scratch database is filled with: the package's sample stories, N active readers
in one INSERT … SELECT, and an edition that is due now."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from digest.store import Edition, EditionStatus, utcnow
from digest.stories import ingest_source

SAMPLE_WINDOW_HOURS = 24 * 365 * 10  # the sample stories are from May 2023


def seed_stories(factory: sessionmaker[Session]) -> None:

    with factory.begin() as session:
        ingest_source(session, "sample:sample_feed.json")
        ingest_source(session, "sample:sample_article.txt")


def seed_readers(engine: Engine, count: int) -> None:
    """`count` active readers in one INSERT … SELECT (tokens 43 characters, like new_token)."""
    with engine.begin() as conn:
        conn.execute(text(
            """
            INSERT INTO subscribers (email, email_key, name, status, token, consent_source,
                                     created_at, confirmed_at, frequency)
            SELECT 'reader' || g || '@example.org', 'reader' || g || '@example.org',
                   CASE WHEN g % 7 = 0 THEN NULL ELSE 'Reader ' || g END, 'active',
                   substr(md5(g::text || random()::text) || md5(random()::text), 1, 43), 'bench',
                   now(), now(), 'every'
            FROM generate_series(1, CAST(:n AS bigint)) AS g
            """), {"n": count})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE subscribers"))


def due_edition(factory: sessionmaker[Session], subject: str = "The featured stories from Political IQ") -> int:

    with factory.begin() as session:
        edition = Edition(subject=subject, send_at=utcnow() - timedelta(seconds=1),
                          status=EditionStatus.SCHEDULED, max_stories=5, window_hours=SAMPLE_WINDOW_HOURS)
        session.add(edition)
        session.flush()
        return edition.id


def seed_readers_offset(engine: Engine, count: int) -> None:
    """More readers on top of existing ones (addresses past the current maximum id)."""
    with engine.begin() as conn:
        top = conn.execute(text("SELECT coalesce(max(id), 0) FROM subscribers")).scalar_one()
        conn.execute(text(
            """
            INSERT INTO subscribers (email, email_key, name, status, token, consent_source,
                                     created_at, confirmed_at, frequency)
            SELECT 'extra' || g || '@example.org', 'extra' || g || '@example.org', 'Extra ' || g, 'active',
                   substr(md5(g::text || random()::text) || md5(random()::text), 1, 43), 'bench',
                   now(), now(), 'every'
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
            """), {"lo": top + 1, "hi": top + count})
