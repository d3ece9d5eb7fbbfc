"""`digest status`: the send queue as ops see it on /ops, in the terminal."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from digest.cli.common import UserError, out, print_json, require_database, table
from digest.config import get_settings
from digest.editions import get_edition, list_editions
from digest.infra import process_client
from digest.observe import FeedHealth, QueueSnapshot, feed_health, queue_snapshot
from digest.store import session_scope, utcnow

STATUS_ERROR_GROUPS = 8


def status(
    edition_id: Annotated[int | None, typer.Argument(metavar="[EDITION_ID]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Redraw every 2 s until Ctrl-C.")] = False,
) -> None:
    """Per edition: planned, sent, failed, bounced, skipped, pending, send rate and ETA;
    the queue and the most common errors; without an id, the feeds' health in one line
    (`--json` prints the editions only: `digest feeds list --json` has the feeds)."""
    require_database()
    if watch and as_json:
        raise UserError("--watch draws tables; use --json without it")
    if not watch:
        current = snapshot(edition_id)
        if as_json:
            editions = [h.as_dict() for h in current.editions]
            print_json(editions[0] if edition_id is not None else editions)
        else:
            out.print(view(current, edition_id))
        return
    with Live(view(snapshot(edition_id), edition_id), console=out, refresh_per_second=1) as live:
        try:
            while True:
                time.sleep(2)
                live.update(view(snapshot(edition_id), edition_id))
        except KeyboardInterrupt:
            pass


def snapshot(edition_id: int | None) -> QueueSnapshot:
    settings = get_settings()
    with session_scope() as session:
        editions = [get_edition(session, edition_id)] if edition_id is not None else list_editions(session)
        return queue_snapshot(session, editions, utcnow(), process_client(settings.redis_url or settings.broker_url),
                              settings.task_queue, error_limit=STATUS_ERROR_GROUPS)


def feeds_line(health: FeedHealth) -> Text:
    """feeds: 3 polled and well, 1 failing, 1 paused; and each one not well, with why."""
    lines = [f"feeds: {health.active} polled and well, {health.failing} failing, {health.paused} paused"]
    lines += [f"  feed {a.id} {a.state}: {a.url}: {a.reason}" for a in health.alerts]
    return Text("\n".join(lines))


def view(current: QueueSnapshot, edition_id: int | None) -> Any:
    """The tables; for the whole queue, the feeds' line after them."""
    if edition_id is not None:
        return tables(current)
    with session_scope() as session:
        health = feed_health(session)
    return Group(tables(current), feeds_line(health))


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def tables(current: QueueSnapshot) -> Any:
    parts: list[Any] = [table(
        ("id", "newsletter", "status", "subject", "planned", "sent", "failed", "bounced", "skipped", "pending",
         "/min", "ETA"),
        ((e.id, e.newsletter or "", e.status, e.subject, e.planned, e.sent, e.failed, e.bounced, e.skipped,
          e.pending, e.rate_per_minute, _duration(e.eta_seconds) if e.pending else "") for e in current.editions),
        title="Editions")]
    depth = current.queue_depth
    queue = Table.grid(padding=(0, 2))
    queue.add_row(Text(f"queue {current.queue}: {'broker unreachable' if depth is None else f'{depth} waiting'}"),
                  f"oldest waiting work: {_duration(current.oldest_waiting_seconds)}")
    parts.append(queue)
    for e in current.paused:
        if e.status_reason:
            parts.append(Text(f"edition {e.id} paused: {e.status_reason}"))
    if current.errors:
        parts.append(table(("errors (reason, domain)", "edition", "count"),
                           ((f"{g.reason} ({g.domain})", g.edition_id, g.count) for g in current.errors),
                           title="Recent errors"))
    return Group(*parts)
