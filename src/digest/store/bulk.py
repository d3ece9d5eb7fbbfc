"""Writing many rows at once: COPY on PostgreSQL, a batched INSERT elsewhere.

An import of a million readers writes four or five rows per reader. An INSERT, even
batched, costs the client about 60 µs a row on PostgreSQL (building and sending the
parameters statement by statement); COPY streams the rows in the server's text format for
a few µs each. The rows pass through each column's own bind processing (enums to their
values, JSON to text, aware datetimes to UTC), and the columns' Python-side defaults are
filled in, so a row written here reads back exactly as one the ORM wrote.

Ids: COPY returns none, so a caller that needs the new rows' ids takes them from the
table's sequence first (`reserve_ids`) and writes them itself. SQLite has no sequence:
`reserve_ids` answers None there and the caller reads the ids back after the insert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, Table, any_, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(session: Session, column: InstrumentedAttribute[str], values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` for a text column, as `= ANY(:array)` on PostgreSQL: one bound
    array instead of thousands of parameters, each cast and rendered (about 10 µs a value
    of SQLAlchemy's time at an import's chunk sizes), and a statement compiled once."""
    if is_postgresql(session):
        return column == any_(bindparam(f"{column.key}_values", list(values), type_=ARRAY(String)))
    return column.in_(list(values))


def reserve_ids(session: Session, table: Table, count: int) -> list[int] | None:
    """`count` new ids for `table` from its sequence (PostgreSQL), in ascending order; None
    on a database without sequences."""
    if not is_postgresql(session):
        return None
    if count == 0:
        return []
    sequence = func.pg_get_serial_sequence(table.name, "id")
    return list(session.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, count))))


def write_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table`, in the session's transaction."""
    if not rows:
        return
    plan = copy_plan(session, table, list(rows[0]))
    if plan is None:
        session.execute(insert(table), list(rows))
        return
    plan.write(session, [plan.text_row(row) for row in rows])


@dataclass(frozen=True)
class CopyPlan:
    """Rows with `keys` going into `table` by COPY, worked out once where the session is
    (it reads the dialect) and usable anywhere after, a forked reading process included:
    `text_row` turns one row's dict into the plain tuple COPY takes (each value through its
    column's bind processing, times as ISO text, JSON as text, the Python-side defaults
    appended), which pickles in a few µs; `write` copies such tuples, each after its `lead`
    values (the ids the writer knows and the reader does not)."""

    table: Table
    keys: tuple[str, ...]
    lead: tuple[str, ...]
    columns: tuple[str, ...]
    defaults: tuple[Any, ...]
    processors: tuple[Callable[[Any], Any], ...]

    def text_row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return (*(process(values[key]) for key, process in zip(self.keys, self.processors, strict=True)),
                *self.defaults)

    def write(self, session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = ", ".join(session.get_bind().dialect.identifier_preparer.quote(c) for c in self.columns)
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {self.table.name} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)


def copy_plan(session: Session, table: Table, keys: Sequence[str], lead: Sequence[str] = ()) -> CopyPlan | None:
    """A CopyPlan on PostgreSQL; None elsewhere (write_rows inserts there)."""
    if not is_postgresql(session):
        return None
    dialect = session.get_bind().dialect
    given = {*lead, *keys}
    # The columns with a Python-side default the rows leave out, filled in as the ORM would.
    missing = [c for c in table.columns if c.key not in given and c.default is not None and not c.primary_key]
    defaults = tuple(_as_text(c, dialect)(c.default.arg(None) if c.default.is_callable else c.default.arg)  # type: ignore[union-attr]
                     for c in missing)
    processors = tuple(_as_text(table.columns[key], dialect) for key in keys)
    columns = (*(table.columns[k].name for k in (*lead, *keys)), *(c.name for c in missing))
    return CopyPlan(table, tuple(keys), tuple(lead), columns, defaults, processors)


def _as_text(column: Any, dialect: Any) -> Callable[[Any], Any]:
    """The column's bind processing, then a form COPY's text format reads as the column's
    type: JSON as its text, times in ISO 8601 (with their offset)."""
    if isinstance(column.type, JSON):
        return lambda value: None if value is None else json.dumps(value)
    process = column.type.dialect_impl(dialect).bind_processor(dialect)

    def as_text(value: Any) -> Any:
        if process is not None:
            value = process(value)
        return value.isoformat() if isinstance(value, datetime) else value

    return as_text
