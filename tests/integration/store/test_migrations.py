"""Migrations: the models match the schema they build, and upgrading keeps every row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from digest.store.engine import make_engine
from digest.store.migrate import current_and_head, upgrade
from digest.store.models import Base

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_engine(request, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "postgresql":
        admin = make_engine(request.getfixturevalue("postgres_url"))
        with admin.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine = admin
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    yield engine
    if request.param == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def test_head_matches_the_models(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    current, head = current_and_head(empty_engine)
    assert current == head
    assert upgrade(empty_engine) == head  # idempotent


def test_upgrading_from_the_first_schema_keeps_every_row(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0001")
    with empty_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (id, email, email_key, status, token, created_at) VALUES "
            "(1, 'a@example.org', 'a@example.org', 'active', 'tok-a', CURRENT_TIMESTAMP), "
            "(2, 'b@example.org', 'b@example.org', 'active', 'tok-b', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO subscriber_topics (subscriber_id, topic) VALUES (1, 'world')"))
        conn.execute(text(
            "INSERT INTO stories (id, url, title, summary, body, published_at, topics, featured, pinned, status, "
            "created_at, updated_at) VALUES (1, 'https://x.example/1', 'T', '', '', CURRENT_TIMESTAMP, '[]', "
            "false, false, 'published', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO editions (id, subject, send_at, max_stories, window_hours, status, planned_count, created_at) "
            "VALUES (1, 'S', CURRENT_TIMESTAMP, 5, 48, 'sent', 2, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO edition_stories (edition_id, story_id, position) VALUES (1, 1, 0)"))
        conn.execute(text(
            "INSERT INTO deliveries (id, edition_id, subscriber_id, status, attempts) VALUES "
            "(1, 1, 1, 'sent', 1), (2, 1, 2, 'bounced', 1)"))
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        counts = {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                  for table in ("subscribers", "subscriber_topics", "stories", "editions", "edition_stories",
                                "deliveries")}
        frequency = conn.execute(text("SELECT frequency FROM subscribers WHERE id = 1")).scalar_one()
    assert counts == {"subscribers": 2, "subscriber_topics": 1, "stories": 1, "editions": 1,
                      "edition_stories": 1, "deliveries": 2}
    assert frequency == "every"
