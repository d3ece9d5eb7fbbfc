"""Celery in this process, for `digest demo`: a solo worker on a private queue of the
broker, or, without a reachable broker, the same tasks run eagerly in-process."""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import redis
from celery import Celery

from digest.worker.app import app


def broker_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def in_process_worker(use_broker: bool) -> AbstractContextManager[object]:
    if not use_broker:
        app.conf.task_always_eager = True
        return nullcontext()
    # Celery's testing machinery, loaded only here: web and worker processes never need it.
    from celery.contrib.testing.worker import start_worker

    # A private queue: no other worker on this broker can take the demo's batches.
    app.conf.task_default_queue = f"digest-demo-{uuid.uuid4().hex[:8]}"
    return start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                        loglevel="WARNING", shutdown_timeout=10,
                        queues=[app.conf.task_default_queue])


def publisher(broker_url: str, queue: str) -> Any:
    """A bare Celery client that publishes what `send_batch.delay` publishes, on `queue`
    (digest bench: another process's worker takes the tasks)."""
    client = Celery("digest-bench", broker=broker_url)
    client.conf.update(task_serializer="json", accept_content=["json"], task_default_queue=queue,
                       broker_connection_retry_on_startup=False)
    return client
