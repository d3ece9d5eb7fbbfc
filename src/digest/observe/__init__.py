"""Watching digest run: the audit log as people read it (named, filtered, paged, as CSV),
the health of the send queue (the ops view and `digest status`) and of the feeds, Prometheus metrics (events counted where they happen, state read from
the ledger at scrape time), and structured logs (one JSON object a line, ids at the top
level).
"""

from digest.observe.audit import (
    ACTION_GROUPS,
    AUDIT_CSV_COLUMNS,
    AUDIT_PAGE_SIZE,
    KIND_LABELS,
    TARGET_KINDS,
    AuditChoices,
    AuditFilterError,
    AuditLine,
    AuditPage,
    AuditQuery,
    audit_choices,
    audit_page,
    bulk_audit_lines,
    count_audit_rows,
    csv_cells,
    name_entries,
    no_formula,
    parse_audit_query,
)
from digest.observe.charts import Chart, edition_deliveries, newsletter_reach, readers_by_day, send_rate
from digest.observe.click_charts import (
    BestStory,
    best_stories,
    best_stories_chart,
    click_rates,
    hour_clicks_chart,
    story_clicks_chart,
)
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
    eta_seconds,
    ops_order,
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
    "Chart", "edition_deliveries", "newsletter_reach", "readers_by_day", "send_rate",
    "BestStory", "best_stories", "best_stories_chart", "click_rates", "hour_clicks_chart", "story_clicks_chart",
    "ACTION_GROUPS", "AUDIT_CSV_COLUMNS", "AUDIT_PAGE_SIZE", "KIND_LABELS", "TARGET_KINDS", "AuditChoices",
    "AuditFilterError", "AuditLine", "AuditPage", "AuditQuery", "audit_choices", "audit_page", "bulk_audit_lines",
    "count_audit_rows", "csv_cells", "name_entries", "no_formula", "parse_audit_query",
    "EditionCounts", "EditionHealth", "ErrorGroup", "FailedNotice", "FeedAlert", "FeedHealth", "ClickPrivacy", "JsonFormatter", "LedgerCollector",
    "QueueSnapshot", "configure", "edition_audiences", "edition_counts", "edition_health", "editions_by_status",
    "error_groups", "eta_seconds", "ops_order", "failed_notices", "feed_health", "mark_process_dead", "oldest_waiting_seconds", "pending_deliveries", "queue_depth",
    "queue_snapshot", "render_metrics", "watched_editions",
]
