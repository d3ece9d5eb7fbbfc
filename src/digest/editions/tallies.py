"""A sent edition's deliveries by status, kept in edition_tallies: counted once, in the
transaction that finishes the edition, then kept true by the two things that change a sent
edition's rows (a bounce report moves one from sent to bounced; reopening it to retry the
failed or send to the missing drops the tally, and its rows are counted live until it
finishes again). Readers (digest.observe) take a tally where there is one and count the
rows of every other edition, so what they show never depends on a tally being there.

The only writer of edition_tallies.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from digest.store import Delivery, EditionTally, ts

COUNTED = ("sent", "failed", "bounced", "skipped", "queued")  # DeliveryStatus values, as stored


# One statement on both databases (PostgreSQL and SQLite share the upsert syntax; SQLite
# wants the SELECT to have a WHERE, which it does).
_WRITE = text(
    "INSERT INTO edition_tallies (edition_id, sent, failed, bounced, skipped, queued, counted_at) "
    "SELECT :e, " + ", ".join(f"coalesce(sum(CASE WHEN status = '{status}' THEN 1 ELSE 0 END), 0)" for status in COUNTED)
    + ", :now FROM deliveries WHERE edition_id = :e "
    "ON CONFLICT (edition_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in (*COUNTED, "counted_at"))
).bindparams(ts("now"))


def write(session: Session, edition_id: int, now: datetime) -> None:
    """Count the edition's deliveries and keep the count (an edition that just finished)."""
    session.execute(_WRITE, {"e": edition_id, "now": now})


def drop(session: Session, edition_id: int) -> None:
    """The edition sends again: its rows change, so they are counted live until it finishes."""
    session.execute(delete(EditionTally).where(EditionTally.edition_id == edition_id))


def bounced(session: Session, delivery_id: int) -> None:
    """A sent delivery just became bounced: its edition's tally (if any) says so too."""
    edition_id = select(Delivery.edition_id).where(Delivery.id == delivery_id).scalar_subquery()
    session.execute(update(EditionTally).where(EditionTally.edition_id == edition_id)
                    .values(sent=EditionTally.sent - 1, bounced=EditionTally.bounced + 1)
                    .execution_options(synchronize_session=False))


def read(session: Session, edition_ids: list[int]) -> dict[int, Counter[str]]:
    """The tallies there are for these editions, as {edition id: counts by status}."""
    if not edition_ids:
        return {}
    return {row.edition_id: Counter({k: getattr(row, k) for k in COUNTED})
            for row in session.scalars(select(EditionTally).where(EditionTally.edition_id.in_(edition_ids)))}
