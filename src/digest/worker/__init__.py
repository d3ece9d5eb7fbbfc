"""The Celery worker: the app, its beat schedule and its tasks. The only code in digest that
knows Celery; everything below it takes an enqueue function.

    celery -A worker worker      # send batches, notices; poll maildirs
    celery -A worker beat        # schedule, release and sweep on a clock

Tasks are thin: unpack JSON arguments, call digest.delivery or digest.feedback, return.
"""

from digest.worker.app import VISIBILITY_TIMEOUT_SECONDS, app, make_app
from digest.worker.embedded import broker_reachable, in_process_worker, publisher
from digest.worker.inspect import workers_asked, workers_online
from digest.worker.tasks import (
    enqueue_batch,
    enqueue_inbound,
    enqueue_notice,
    flush_clicks,
    process_inbound,
    release_due_editions,
    release_now,
    send_batch,
    send_notice,
)

__all__ = [
    "VISIBILITY_TIMEOUT_SECONDS", "app", "broker_reachable", "enqueue_batch", "enqueue_inbound", "enqueue_notice",
    "flush_clicks", "in_process_worker", "make_app", "process_inbound", "publisher", "release_due_editions", "release_now", "send_batch",
    "send_notice", "workers_asked", "workers_online",
]
