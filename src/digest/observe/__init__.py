"""Watching digest run: the health of the send queue (the ops view and `digest status`)
and of the feeds, Prometheus metrics (events counted where they happen, state read from
the ledger at scrape time), and structured logs (one JSON object a line, ids at the top
level).
"""

from digest.observe.feeds import FeedAlert, FeedHealth, feed_health
from digest.observe.health import (
    EditionCounts,
    EditionHealth,
    ErrorGroup,
    QueueSnapshot,
    edition_audiences,
    edition_counts,
    edition_health,
    editions_by_status,
    error_groups,
    oldest_waiting_seconds,
    pending_deliveries,
    queue_depth,
    queue_snapshot,
    watched_editions,
)
from digest.observe.logs import ClickPrivacy, JsonFormatter, configure
from digest.observe.notices import FailedNotice, failed_notices
from digest.observe.metrics import LedgerCollector, mark_process_dead
from digest.observe.metrics import render as render_metrics

__all__ = [
    "EditionCounts", "EditionHealth", "ErrorGroup", "FailedNotice", "FeedAlert", "FeedHealth", "ClickPrivacy", "JsonFormatter", "LedgerCollector",
    "QueueSnapshot", "configure", "edition_audiences", "edition_counts", "edition_health", "editions_by_status",
    "error_groups", "failed_notices", "feed_health", "mark_process_dead", "oldest_waiting_seconds", "pending_deliveries", "queue_depth",
    "queue_snapshot", "render_metrics", "watched_editions",
]
