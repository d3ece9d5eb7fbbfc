"""Celery tasks: thin. Unpack JSON arguments, call the library, enqueue follow-ups.

Payload format v1: send_batch(edition_id: int, first_id: int, last_id: int).
Every task is safe to run twice: the database decides what is left to do.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter

from celery import Task

from digest import actions
from digest.clicks import flush_clicks as flush_clicks_now
from digest.clicks import flush_opens
from digest.config import get_settings
from digest.delivery import compact_deliveries, release_due, schedule
from digest.delivery import send_batch as send_batch_now
from digest.delivery import send_notice as send_notice_now
from digest.delivery import sweep as sweep_work
from digest.feeds import FeedNotFound, due_feeds
from digest.feeds import poll_feed as poll_feed_now
from digest.infra import process_client
from digest.feedback import process_bounce_maildir, process_mailto_maildir, unsubscribe_by_mail
from digest.mail import SendError, make_transport
from digest.store import session_factory, utcnow
from digest.worker.app import VISIBILITY_TIMEOUT_SECONDS, app

MAX_COUNTDOWN_SECONDS = VISIBILITY_TIMEOUT_SECONDS // 4
log = logging.getLogger(__name__)


def enqueue_batch(edition_id: int, first_id: int, last_id: int) -> None:
    """The enqueue function digest.delivery and digest.actions are handed in production."""
    send_batch.delay(edition_id, first_id, last_id)


def enqueue_notice(notice_id: int) -> None:
    send_notice.delay(notice_id)


def enqueue_inbound(raw: bytes) -> None:
    process_inbound.delay(base64.b64encode(raw).decode("ascii"))


def release_now() -> None:
    """What digest.actions are handed to have due editions released at once (an edition
    scheduled for now starts sending within a second, not at beat's next tick).

    One attempt, on a connection of its own: with the broker away this logs one warning and
    returns, having waited for nothing (the command line must not hang on a broker that is
    down). The action has committed by then, and beat releases the edition once the broker
    is back; so this never raises."""
    if app.conf.task_always_eager:  # the demo without a broker: run it here
        release_due_editions.apply()
        return
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
            release_due_editions.apply_async(retry=False, connection=connection)
    except Exception as exc:  # noqa: BLE001 - a broker that is away: beat releases it later
        log.warning("could not ask for the edition's release now (%s): beat releases it within %.0f s "
                    "of the broker being reachable", " ".join(str(exc).split()),
                    get_settings().release_every_seconds)


_enqueue = enqueue_batch
_enqueue_notice = enqueue_notice


@app.task(name="digest.release_due_editions")
def release_due_editions() -> list[int]:
    settings = get_settings()
    return release_due(session_factory(), utcnow(), settings.batch_size, _enqueue,
                       settings.missed_edition_limit_minutes, ab_minute_seconds=settings.ab_wait_unit_seconds)


@app.task(name="digest.schedule_editions")
def schedule_editions() -> int:
    """Create the editions of recurring newsletters' coming occurrences (idempotent)."""
    return schedule(session_factory(), utcnow(), get_settings().schedule_ahead_hours)


@app.task(name="digest.sweep")
def sweep() -> list[int]:
    settings = get_settings()
    return sweep_work(session_factory(), utcnow(), settings.batch_size, settings.lease_seconds, _enqueue,
                      _enqueue_notice)


@app.task(name="digest.compact_deliveries")
def compact_old_deliveries() -> dict[str, object]:
    """Retention: partitions ahead, old months compacted and dropped (digest.delivery.retention)."""
    return compact_deliveries(session_factory(), utcnow(), get_settings().delivery_retention_days).as_json()


@app.task(name="digest.flush_clicks")
def flush_clicks() -> int:
    """Beat's tick: click counts (and the open pixel's) from Redis into the database (safe
    to run twice)."""
    settings = get_settings()
    client = process_client(settings.redis_url or settings.broker_url, timeout=5.0)
    moved = flush_clicks_now(session_factory(), client)
    flush_opens(session_factory(), client)
    return moved


@app.task(name="digest.decide_ab_tests")
def decide_ab_tests() -> list[int]:
    """Beat's tick: subject tests whose wait is over are decided and the rest sent (safe to
    run twice, and on two workers at once: digest.actions.ab_tests)."""
    settings = get_settings()
    deps = actions.Deps(session_factory(), settings, _enqueue, _enqueue_notice, release_now)
    return actions.ab_tests.decide_due(deps, process_client(settings.redis_url or settings.broker_url, timeout=5.0),
                                       utcnow())


@app.task(name="digest.poll_feeds")
def poll_feeds() -> int:
    """Beat's tick: one poll task per due feed, so a slow feed holds up no other and the
    polls spread over the workers. A feed enqueued twice (two beats) is polled once: the
    first task claims it and moves its next poll on; the second finds it not due."""
    with session_factory()() as session:
        due = due_feeds(session, utcnow())
    for feed_id in due:
        poll_feed.delay(feed_id)
    return len(due)


@app.task(name="digest.poll_feed")
def poll_feed(feed_id: int, force: bool = False) -> str:
    try:
        return poll_feed_now(session_factory(), feed_id, force=force).outcome
    except FeedNotFound:
        return "removed"  # removed between beat's look and this task


@app.task(name="digest.send_batch", bind=True, acks_late=True, max_retries=None)
def send_batch(self: Task, edition_id: int, first_id: int, last_id: int) -> dict[str, int]:
    settings = get_settings()
    transport = make_transport(settings)
    outcome = send_batch_now(session_factory(), edition_id, first_id, last_id, transport, settings)
    if (outcome.retry_in_seconds is not None and outcome.retry_in_seconds <= MAX_COUNTDOWN_SECONDS
            and not app.conf.task_always_eager):
        # Retries wait in the broker for minutes at most; longer waits (a reader's local
        # hour, long backoffs) stay in the database and the sweeper enqueues them when due,
        # since Redis would redeliver a long-delayed task (kombu#337, celery#4400).
        raise self.retry(countdown=outcome.retry_in_seconds)
    return outcome.counts


@app.task(name="digest.send_notice", bind=True, acks_late=True, max_retries=8)
def send_notice(self: Task, notice_id: int) -> str:
    """A confirmation or welcome email; sends at most once (the notice row is claimed)."""
    settings = get_settings()
    transport = make_transport(settings)
    try:
        return send_notice_now(session_factory(), notice_id, transport, settings)
    except SendError as exc:
        countdown = min(MAX_COUNTDOWN_SECONDS, settings.retry_base_seconds * 2**self.request.retries)
        raise self.retry(countdown=countdown, exc=exc) from None


@app.task(name="digest.process_inbound")
def process_inbound(raw_base64: str) -> str:
    """One inbound message (base64 of its RFC 5322 bytes) to the unsubscribe address."""
    with session_factory().begin() as session:
        return unsubscribe_by_mail(session, base64.b64decode(raw_base64)).outcome


@app.task(name="digest.poll_unsubscribe_maildir")
def poll_unsubscribe_maildir() -> int:
    folder = get_settings().unsubscribe_maildir
    if folder is None:
        return 0
    return len(process_mailto_maildir(session_factory(), folder))


@app.task(name="digest.poll_bounce_maildir")
def poll_bounce_maildir() -> dict[str, int]:
    """Bounce (RFC 3464) and complaint (RFC 5965) reports mailed to the envelope sender,
    from DIGEST_BOUNCE_MAILDIR; returns how many events ended how."""
    settings = get_settings()
    if settings.bounce_maildir is None:
        return {}
    results = process_bounce_maildir(session_factory(), settings.bounce_maildir,
                                     soft_bounce_limit=settings.soft_bounce_limit)
    return dict(Counter(result.outcome for result in results))
