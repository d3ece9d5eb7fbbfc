"""Migrations: the models match the schema they build, and upgrading keeps every row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from digest.store.engine import make_engine
from digest.store.migrate import alembic_config, current_and_head, upgrade
from digest.store.models import Base
from digest.store.partitions import include_name

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


def downgrade(engine: Engine, revision: str) -> None:
    """Alembic's downgrade on this engine, as digest.store.upgrade runs an upgrade."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":  # see digest.store.migrate.upgrade
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, revision)


def test_head_matches_the_models(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, Base.metadata) == []
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


def test_upgrading_to_codes_reads_the_codes_from_the_words(empty_engine: Engine) -> None:
    """0010 adds the codes programs act on and fills them for existing rows from the words
    the code wrote until then; from there on only the code is read."""
    upgrade(empty_engine, "0009")
    editions = {  # id: (status, status_reason) → the code expected
        1: ("skipped", "too thin: 0 qualifying stories, the minimum is 1 (check topics, window and featured stories)"),
        2: ("skipped", "missed: not sent within 180 min of its time (workers down?)"),
        3: ("paused", "auto-paused: 150 of the last 200 attempts failed (most often '451 try later', 150×)"),
        4: ("paused", "pause by ops@example.org"),
        5: ("cancelled", "cancel from the command line"),
        6: ("sending", "retrying failed deliveries"),
        7: ("sending", "sending to the missing"),
        8: ("sent", None),
    }
    deliveries = {  # id: (status, last_error)
        1: ("skipped", "edition cancelled"), 2: ("skipped", "reader no longer subscribed"), 3: ("skipped", "suppressed"),
        4: ("skipped", "nothing new: the reader already had these stories"),
        5: ("sent", "soft bounce (dsn): 4.2.2 mailbox full"), 6: ("bounced", "550 5.1.1 no such user"),
        7: ("bounced", "hard bounce (ses): 5.1.1"), 8: ("failed", "451 4.7.1 try later"), 9: ("sent", None),
    }
    with empty_engine.begin() as conn:
        for edition_id, (status, reason) in editions.items():
            conn.execute(text(
                "INSERT INTO editions (id, subject, send_at, max_stories, window_hours, status, status_reason, "
                "planned_count, created_at) VALUES (:i, 'S', CURRENT_TIMESTAMP, 5, 48, :s, :r, 0, CURRENT_TIMESTAMP)"),
                {"i": edition_id, "s": status, "r": reason})
        for delivery_id, (status, error) in deliveries.items():
            conn.execute(text(
                "INSERT INTO subscribers (id, email, email_key, status, token, created_at) VALUES "
                "(:i, :e, :e, 'active', :t, CURRENT_TIMESTAMP)"),
                {"i": delivery_id, "e": f"r{delivery_id}@example.org", "t": f"tok-{delivery_id}"})
            conn.execute(text("INSERT INTO deliveries (id, edition_id, subscriber_id, status, attempts, last_error) "
                              "VALUES (:i, 8, :i, :s, 1, :e)"), {"i": delivery_id, "s": status, "e": error})
        conn.execute(text("INSERT INTO audit_log (id, at, actor, action, target) VALUES "
                          "(1, CURRENT_TIMESTAMP, 'system', 'edition.cancel', 'edition:5'), "
                          "(2, CURRENT_TIMESTAMP, 'ops@example.org', 'edition.pause', 'edition:4')"))
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        edition_codes = dict(conn.execute(text("SELECT id, status_code FROM editions")).all())
        delivery_codes = dict(conn.execute(text("SELECT id, error_code FROM deliveries")).all())
        via = dict(conn.execute(text("SELECT id, via FROM audit_log")).all())
    assert edition_codes == {1: "too_thin", 2: "missed", 3: "auto_paused", 4: "paused", 5: "cancelled",
                             6: "retrying_failed", 7: "sending_missing", 8: None}
    assert delivery_codes == {1: "edition_cancelled", 2: "reader_left", 3: "suppressed", 4: "nothing_new",
                              5: "soft_bounce", 6: "hard_bounce", 7: "hard_bounce", 8: "transient", 9: None}
    assert via == {1: "cli", 2: None}


def test_upgrading_to_one_time_passwords_marks_accounts_never_signed_in(empty_engine: Engine) -> None:
    """0011: `digest users add` printed passwords nobody had to change; an account that has
    never signed in can only hold one of those (or one typed at the prompt), so its first
    sign-in chooses a new one. Accounts in use are left alone."""
    upgrade(empty_engine, "0010")
    with empty_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, email, role, password_hash, created_at, last_login_at) VALUES "
            "(1, 'new@example.org', 'editor', 'x', CURRENT_TIMESTAMP, NULL), "
            "(2, 'used@example.org', 'admin', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    upgrade(empty_engine)
    with empty_engine.begin() as conn:
        flags = dict(conn.execute(text("SELECT id, must_change_password FROM users")).all())
        conn.execute(text("INSERT INTO users (id, email, role, password_hash, created_at) VALUES "
                          "(3, 'later@example.org', 'ops', 'x', CURRENT_TIMESTAMP)"))
        later = conn.execute(text("SELECT must_change_password FROM users WHERE id = 3")).scalar_one()
    assert {k: bool(v) for k, v in flags.items()} == {1: True, 2: False}
    assert not later  # the column's default: a password of one's own


def test_upgrading_to_partitions_keeps_every_delivery_in_its_month(empty_engine: Engine) -> None:
    """0023: on PostgreSQL the table with rows becomes partitioned by month (new table, copy,
    swap), each row in the month its edition was planned in; SQLite gets the column. The
    planner's one statement still plans, and a downgrade brings the plain table back."""
    upgrade(empty_engine, "0019")
    with empty_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (id, email, email_key, status, token, created_at) VALUES "
            "(1, 'a@example.org', 'a@example.org', 'active', 'tok-a', CURRENT_TIMESTAMP), "
            "(2, 'b@example.org', 'b@example.org', 'active', 'tok-b', CURRENT_TIMESTAMP)"))
        zone = "+00" if empty_engine.dialect.name == "postgresql" else ""  # SQLite keeps UTC without a zone
        for edition_id, started in ((1, "2025-03-31 23:30:00" + zone), (2, "2025-04-01 00:10:00" + zone)):
            conn.execute(text(
                "INSERT INTO editions (id, subject, send_at, max_stories, window_hours, status, planned_count, "
                "created_at, started_at) VALUES (:i, 'S', :at, 5, 48, 'sent', 2, :at, :at)"),
                {"i": edition_id, "at": started})
            for reader in (1, 2):
                conn.execute(text("INSERT INTO deliveries (edition_id, subscriber_id, status, attempts) "
                                  "VALUES (:e, :r, 'sent', 1)"), {"e": edition_id, "r": reader})
    upgrade(empty_engine)
    with empty_engine.begin() as conn:
        months = sorted((e, str(m)) for e, m in conn.execute(text(
            "SELECT DISTINCT edition_id, planned_month FROM deliveries")).all())
        assert months == [(1, "2025-03-01"), (2, "2025-04-01")]
        # The sequence still numbers new rows after the old ones.
        conn.execute(text(
            "INSERT INTO editions (id, subject, send_at, max_stories, window_hours, status, planned_count, "
            "created_at, started_at) VALUES (3, 'S', :at, 5, 48, 'sent', 1, :at, :at)"), {"at": "2025-05-02 08:00:00" + zone})
        conn.execute(text("INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, planned_month) "
                          "VALUES (3, 1, 'sent', 1, '2025-05-01')"))
        assert conn.execute(text("SELECT max(id) FROM deliveries")).scalar_one() == 5
        if empty_engine.dialect.name == "postgresql":
            parts = set(conn.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'deliveries'::regclass")).scalars())
            assert {"deliveries_2025_03", "deliveries_2025_04", "deliveries_default"} <= parts
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, Base.metadata) == []
    downgrade(empty_engine, "0019")
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar_one() == 5
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar_one() == 5
