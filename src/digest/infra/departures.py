"""Unsubscribes reach running send loops within milliseconds, not at the next chunk.

When an unsubscribe commits, its reader id is published on a Redis channel. Each worker
process keeps a listener thread that collects the ids into a local set, and the send loop
looks there before every message: a set lookup, not a query. The database re-check every
chunk stays as the safety net (a Redis outage, a process that started late).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from digest.config import get_settings
from digest.infra.ratelimit import process_client

CHANNEL_PREFIX = "digest:departures"
FORGET_AFTER_SECONDS = 6 * 3600
log = logging.getLogger(__name__)


def _client() -> redis.Redis:
    settings = get_settings()
    return process_client(settings.redis_url or settings.broker_url)


def channel() -> str:
    # Per deployment (its task queue): two deployments on one Redis never skip each other's
    # readers by id.
    return f"{CHANNEL_PREFIX}:{get_settings().task_queue}"


def announce_after_commit(session: Session, subscriber_id: int) -> None:
    """Publish the departure once the session's transaction has committed."""

    def publish(_session: Any) -> None:
        try:
            _client().publish(channel(), str(subscriber_id))
        except (redis.RedisError, OSError) as exc:  # the chunk re-check still catches it
            log.warning("departure of reader %s not published: %s", subscriber_id, exc)

    event.listen(session, "after_commit", publish, once=True)


class DepartureWatch:
    """Reader ids announced as gone, kept by a listener thread of this process."""

    def __init__(self) -> None:
        self._left: dict[int, float] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._listen, name="digest-departures", daemon=True)
        self._thread.start()

    def has_left(self, subscriber_id: int, since: float) -> bool:
        """Announced gone after `since` (time.monotonic()): the moment the caller read the
        reader's status. Anything older the database already told it, and a reader who
        left and came back since must not be skipped."""
        return self._left.get(subscriber_id, float("-inf")) > since

    def _listen(self) -> None:
        while True:
            try:
                pubsub = _client().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel())
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message and isinstance(message.get("data"), bytes) and message["data"].isdigit():
                        with self._lock:
                            self._left[int(message["data"])] = time.monotonic()
                    self._forget_old()
            except Exception as exc:  # noqa: BLE001 - keep listening through Redis restarts
                log.debug("departure listener reconnecting: %s", exc)
                time.sleep(1.0)

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - FORGET_AFTER_SECONDS
        if self._left and next(iter(self._left.values())) < cutoff:
            with self._lock:
                self._left = {k: v for k, v in self._left.items() if v >= cutoff}


_watch: DepartureWatch | None = None
_watch_pid = 0


def watch() -> DepartureWatch:
    """This process's watch (started on first use; a forked child starts its own)."""
    global _watch, _watch_pid
    if _watch is None or _watch_pid != os.getpid():
        _watch, _watch_pid = DepartureWatch(), os.getpid()
    return _watch
