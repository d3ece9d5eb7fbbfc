"""Monthly partitions of `deliveries` on PostgreSQL: the table is partitioned by range of
planned_month (the first day of the month its edition was planned in, the same for all of an
edition's rows), one partition a month plus a default one, so that an insert never fails for
want of a partition and retention drops a month instead of deleting its rows.

The DDL lives here, once, for the migration that converts an existing table (0023), the
retention job that creates partitions ahead and drops old ones (digest.delivery.retention)
and the benchmark that compares both layouts. SQLite has no partitions: every function is a
no-op there and retention deletes in batches instead.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import Connection, text

TABLE = "deliveries"
DEFAULT_PARTITION = "deliveries_default"
# Room on each page for the lease updates (heap-only updates: see migration 0009); a
# partitioned parent has no storage of its own, so each partition carries it.
FILLFACTOR = 80
# Serialises the jobs that create or drop partitions (two beats, a CLI run beside beat).
PARTITION_LOCK_KEY = 7_300_218_023
_NAME = re.compile(r"^deliveries_(\d{4})_(\d{2})$")

# The table's indexes and constraints, as the models declare them (planned_month added to
# every unique one, as partitioning requires).
_CONSTRAINTS = [
    "ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id, planned_month)",
    "ALTER TABLE deliveries ADD CONSTRAINT uq_delivery_edition_subscriber "
    "UNIQUE (edition_id, subscriber_id, planned_month)",
    "ALTER TABLE deliveries ADD CONSTRAINT deliveries_edition_id_fkey FOREIGN KEY (edition_id) "
    "REFERENCES editions (id) ON DELETE CASCADE",
    "ALTER TABLE deliveries ADD CONSTRAINT deliveries_subscriber_id_fkey FOREIGN KEY (subscriber_id) "
    "REFERENCES subscribers (id)",
    "CREATE INDEX ix_deliveries_edition_status ON deliveries (edition_id, status)",
    "CREATE INDEX ix_deliveries_subscriber_sent ON deliveries (subscriber_id, sent_at)",
    "CREATE INDEX ix_deliveries_edition_attempted ON deliveries (edition_id, attempted_at)",
    "CREATE INDEX ix_deliveries_queued_edition_id ON deliveries (edition_id, id) WHERE status = 'queued'",
]
# planned_month of a row written before the column existed: its edition's month.
_MONTH_OF_EDITION = ("CAST(date_trunc('month', coalesce(e.started_at, e.send_at, e.created_at) AT TIME ZONE 'UTC') "
                     "AS date)")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's comparisons: the partitions are the parent table's storage, not tables
    of the schema (their indexes come with the parent's)."""
    return not (type_ == "table" and name is not None and (_NAME.match(name) or name == DEFAULT_PARTITION))


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"deliveries_{month:%Y_%m}"


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def is_partitioned(conn: Connection) -> bool:
    return is_postgresql(conn) and conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = 'deliveries' AND c.relnamespace = current_schema()::regnamespace)")).scalar_one()


def month_partitions(conn: Connection) -> dict[date, str]:
    """The monthly partitions there are, by month (the default one is not among them)."""
    if not is_partitioned(conn):
        return {}
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'deliveries'::regclass")).scalars()
    found = {}
    for name in names:
        if match := _NAME.match(name):
            found[date(int(match.group(1)), int(match.group(2)), 1)] = name
    return found


def _lock(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITION_LOCK_KEY})


def ensure_month_partitions(conn: Connection, months: list[date]) -> list[date]:
    """Create the partitions of these months that do not exist yet; the months created.
    Rows of such a month already in the default partition (the job did not run for a while)
    move into the new partition in the same transaction. Safe to run concurrently (an
    advisory lock) and twice."""
    if not is_partitioned(conn):
        return []
    _lock(conn)
    have = month_partitions(conn)
    created = []
    for month in sorted(set(months) - set(have)):
        name, bounds = partition_name(month), {"lo": month, "hi": next_month(month)}
        strays = conn.execute(text(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE planned_month >= :lo AND planned_month < :hi)"),
            bounds).scalar_one()
        if not strays:
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF deliveries FOR VALUES FROM ('{month}') "
                              f"TO ('{next_month(month)}') WITH (fillfactor = {FILLFACTOR})"))
        else:  # a partition cannot be created over rows the default one holds: move them
            conn.execute(text(f"CREATE TABLE {name} (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
                              f"WITH (fillfactor = {FILLFACTOR})"))
            conn.execute(text(f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE planned_month >= :lo "
                              f"AND planned_month < :hi RETURNING *) INSERT INTO {name} SELECT * FROM moved"), bounds)
            conn.execute(text(f"ALTER TABLE deliveries ATTACH PARTITION {name} FOR VALUES FROM ('{month}') "
                              f"TO ('{next_month(month)}')"))
        created.append(month)
    return created


def drop_month_partition(conn: Connection, month: date) -> bool:
    """Drop the month's partition (its rows with it); False when there is none."""
    if not is_partitioned(conn):
        return False
    _lock(conn)
    if month not in month_partitions(conn):
        return False
    conn.execute(text(f"DROP TABLE {partition_name(month)}"))
    return True


def _columns(conn: Connection, table: str) -> list[str]:
    return list(conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = :t ORDER BY ordinal_position"), {"t": table}).scalars())


def partition_deliveries(conn: Connection, this_month: date, *, months_ahead: int = 2) -> None:
    """Convert a plain `deliveries` into the partitioned table, rows and all: a new table
    partitioned by planned_month (filled from each row's edition when the old table has no
    such column), a partition for every month with rows, this one and `months_ahead` more,
    the default partition; the rows copied; the old table dropped; the constraints and
    indexes built on the full partitions (faster than keeping them up during the copy).
    Runs in the caller's transaction: on failure nothing changed. PostgreSQL only."""
    old = "deliveries_unpartitioned"
    conn.execute(text(f"ALTER TABLE deliveries RENAME TO {old}"))
    sequence = conn.execute(text(f"SELECT pg_get_serial_sequence('{old}', 'id')")).scalar_one()
    if sequence:  # owned by the old table's id, it would go with it
        conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    columns = [c for c in _columns(conn, old) if c != "planned_month"]
    has_month = "planned_month" in _columns(conn, old)
    month_expr = "d.planned_month" if has_month else _MONTH_OF_EDITION
    extra = "" if has_month else ", planned_month date NOT NULL"
    conn.execute(text(f"CREATE TABLE deliveries (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS{extra}) "
                      "PARTITION BY RANGE (planned_month)"))
    if has_month:
        conn.execute(text("ALTER TABLE deliveries ALTER COLUMN planned_month SET NOT NULL"))
    conn.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF deliveries DEFAULT "
                      f"WITH (fillfactor = {FILLFACTOR})"))
    months = set(conn.execute(text(
        f"SELECT DISTINCT {month_expr} FROM {old} d JOIN editions e ON e.id = d.edition_id")).scalars())
    ahead = [this_month]
    for _ in range(months_ahead):
        ahead.append(next_month(ahead[-1]))
    ensure_month_partitions(conn, sorted(months | set(ahead)))
    listed = ", ".join(columns)
    conn.execute(text(
        f"INSERT INTO deliveries ({listed}, planned_month) "
        f"SELECT {', '.join('d.' + c for c in columns)}, {month_expr} FROM {old} d JOIN editions e ON e.id = d.edition_id"))
    conn.execute(text(f"DROP TABLE {old}"))
    for statement in _CONSTRAINTS:
        conn.execute(text(statement))
    if sequence:
        conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY deliveries.id"))


def unpartition_deliveries(conn: Connection) -> None:
    """The other way: one plain table with the same columns, constraints and indexes (the
    migration's downgrade, and the benchmark's baseline layout). PostgreSQL only."""
    old = "deliveries_partitioned"
    conn.execute(text(f"ALTER TABLE deliveries RENAME TO {old}"))
    sequence = conn.execute(text(f"SELECT pg_get_serial_sequence('{old}', 'id')")).scalar_one()
    if sequence:
        conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    conn.execute(text(f"CREATE TABLE deliveries (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
                      f"WITH (fillfactor = {FILLFACTOR})"))
    conn.execute(text(f"INSERT INTO deliveries SELECT * FROM {old}"))
    conn.execute(text(f"DROP TABLE {old}"))  # its partitions with it
    for statement in _CONSTRAINTS:
        conn.execute(text(statement.replace("PRIMARY KEY (id, planned_month)", "PRIMARY KEY (id)")))
    if sequence:
        conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY deliveries.id"))
