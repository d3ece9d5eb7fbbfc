"""Celery tasks: thin. Unpack JSON arguments, call the library, enqueue follow-ups.

Payload format v1: send_batch(edition_id: int, first_id: int, last_id: int).
Every task is safe to run twice: the database decides what is left to do.
"""

from __future__ import annotations

from celery import Task

from digest.celery_app import VISIBILITY_TIMEOUT_SECONDS, app
from digest.config import get_settings
from digest.mailer.transport import transport_for
from digest.pipeline import release_due, sweep as sweep_work
from digest.sender import send_batch as send_batch_now
from digest.store.engine import session_factory
from digest.store.models import utcnow

MAX_COUNTDOWN_SECONDS = VISIBILITY_TIMEOUT_SECONDS // 4


def _enqueue(edition_id: int, first_id: int, last_id: int) -> None:
    send_batch.delay(edition_id, first_id, last_id)


@app.task(name="digest.release_due_editions")
def release_due_editions() -> list[int]:
    return release_due(session_factory(), utcnow(), get_settings().batch_size, _enqueue)


@app.task(name="digest.sweep")
def sweep() -> list[int]:
    settings = get_settings()
    return sweep_work(session_factory(), utcnow(), settings.batch_size, settings.lease_seconds, _enqueue)


@app.task(name="digest.send_batch", bind=True, acks_late=True, max_retries=None)
def send_batch(self: Task, edition_id: int, first_id: int, last_id: int) -> dict[str, int]:
    settings = get_settings()
    transport = transport_for(settings.smtp, settings.smtp_timeout_seconds, settings.smtp_helo)
    outcome = send_batch_now(session_factory(), edition_id, first_id, last_id, transport, settings)
    if outcome.retry_in_seconds is not None and not app.conf.task_always_eager:
        # Retries wait in the broker for minutes at most; anything longer is the
        # sweeper's job, since Redis would redeliver a long-delayed task (NOTES.md).
        raise self.retry(countdown=min(outcome.retry_in_seconds, MAX_COUNTDOWN_SECONDS))
    return outcome.counts
