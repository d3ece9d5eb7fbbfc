"""Orchestration between the store and the queue: release due editions, sweep lost work.

The enqueue function is passed in (a Celery task's .delay in production, a list's append
in tests), and is only ever called after the transaction it depends on has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import ledger
from digest.delivery.notices import stale_notice_ids
from digest.delivery.planner import (
    due_edition_ids,
    editions_needing_sweep,
    release_edition,
    sending_edition_ids,
)
from digest.editions import lifecycle, schedule_editions, trigger_editions
from digest.store import month_of

log = logging.getLogger(__name__)

Enqueue = Callable[[int, int, int], None]  # (edition_id, first_delivery_id, last_delivery_id)


def enqueue_batches(factory: sessionmaker[Session], edition_id: int, batch_size: int,
                    enqueue: Enqueue) -> int:
    with factory() as session:
        ranges = ledger.batch_ranges(session, edition_id, batch_size)
    for first_id, last_id in ranges:
        enqueue(edition_id, first_id, last_id)
    return len(ranges)


def release_due(factory: sessionmaker[Session], now: datetime, batch_size: int,
                enqueue: Enqueue, missed_limit_minutes: int | None = None,
                ab_minute_seconds: float = 60.0) -> list[int]:
    """Release every due edition this process wins; returns their ids. Editions later than
    `missed_limit_minutes` are skipped first (sent late within it, never twice)."""
    if missed_limit_minutes is not None:
        with factory.begin() as session:
            skipped = lifecycle.skip_missed(session, now, missed_limit_minutes)
        if skipped:
            log.warning("%s scheduled edition(s) skipped as missed", skipped)
    with factory() as session:
        due = due_edition_ids(session, now)
    released = []
    for edition_id in due:
        with factory.begin() as session:
            won = release_edition(session, edition_id, now, ab_minute_seconds=ab_minute_seconds)
        if not won:
            continue  # another beat or worker got there first
        released.append(edition_id)
        with factory.begin() as session:
            ledger.refresh_statistics(session, month_of(now))
        batches = enqueue_batches(factory, edition_id, batch_size, enqueue)
        log.info("edition %s released: %s batches", edition_id, batches,
                 extra={"edition_id": edition_id})
        if batches == 0:
            with factory.begin() as session:
                lifecycle.finish_if_complete(session, edition_id, now)
    return released


def sweep(factory: sessionmaker[Session], now: datetime, batch_size: int, lease_seconds: int,
          enqueue: Enqueue, enqueue_notice: Callable[[int], None] | None = None) -> list[int]:
    """Re-enqueue work whose worker died or whose task Redis lost; finish done editions.
    Notices (confirm, welcome) still queued a lease after they were created go out again."""
    if enqueue_notice is not None:
        with factory() as session:
            for notice_id in stale_notice_ids(session, now, lease_seconds):
                enqueue_notice(notice_id)
    with factory.begin() as session:
        ledger.skip_cancelled(session, None, now)
        for edition_id in sending_edition_ids(session):
            lifecycle.finish_if_complete(session, edition_id, now)
        stale = editions_needing_sweep(session, now, lease_seconds)
        for edition_id in stale:
            lifecycle.mark_enqueued(session, edition_id, now)
    for edition_id in stale:
        count = enqueue_batches(factory, edition_id, batch_size, enqueue)
        log.warning("edition %s: re-enqueued %s batches of unclaimed work", edition_id, count,
                    extra={"edition_id": edition_id})
    return stale


def schedule(factory: sessionmaker[Session], now: datetime, ahead_hours: int) -> int:
    """Beat's tick (every release_every_seconds): the cron editions ahead, then the
    editions whose story trigger is met, so an alert is made within a tick of its stories
    arriving. Two transactions: a failing trigger does not hold up the schedule."""
    with factory.begin() as session:
        made = schedule_editions(session, now, ahead_hours)
    with factory.begin() as session:
        return made + trigger_editions(session, now)
