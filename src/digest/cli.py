"""The `digest` command. Bad input ends with one line on stderr and a non-zero exit.

JSON output shapes (stable; add keys, never rename):
  subscribers list --json  [{id, email, name, status, topics, created_at, confirmed_at}]
  stories list --json      [{id, url, title, summary, published_at, topics, featured, pinned,
                             status, author, image_url}]
  editions create --json   {id, status, send_at, subject, topics, max_stories}
  editions list --json     [{id, subject, status, send_at, topics, max_stories}]
  status --json            [{id, subject, status, send_at, started_at, finished_at,
                             status_reason, planned, sent, failed, bounced, skipped, pending}]
                           (an object, not a list, when an EDITION_ID is given)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from digest.config import ConfigError, get_settings
from digest.editions import EditionError, create_edition, get_edition, list_editions, parse_send_at, preview_edition
from digest.readers import AlreadySubscribed, InvalidReader, Suppressed, add_subscriber, import_csv
from digest.shapes import edition_json, newsletter_json, story_json, subscriber_json
from digest.store import (
    Story,
    Subscriber,
    SubscriberStatus,
    current_and_head,
    get_engine,
    is_initialised,
    session_scope,
    upgrade,
    utcnow,
)
from digest.stories import ParseError, ingest_source

try:  # typer >= 0.20 carries its own copy of click: its errors are not click's classes
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Featured-story email digests.")
subscribers_app = typer.Typer(no_args_is_help=True, help="Readers: add, import, list.")
stories_app = typer.Typer(no_args_is_help=True, help="Stories: ingest feeds and articles, list.")
editions_app = typer.Typer(no_args_is_help=True, help="Editions: create, preview, list, release.")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(stories_app, name="stories")
app.add_typer(editions_app, name="editions")
users_app = typer.Typer(no_args_is_help=True, help="Staff accounts: editors, ops, admins.")
newsletters_app = typer.Typer(no_args_is_help=True, help="Recurring newsletters and their schedules.")
app.add_typer(users_app, name="users")
app.add_typer(newsletters_app, name="newsletters")

out = Console()


class UserError(Exception):
    """Shown as one line on stderr; exit status 1."""


def _cells(*values: object) -> list[Text]:
    # Titles and subjects come from feeds and editors: as str, Rich would read "[/b]" in
    # them as markup (and raise) and ":name:" as emoji. Text cells print them as they are.
    return [Text(str(value)) for value in values]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def _require_database() -> None:
    if not is_initialised(get_engine()):
        raise UserError("the database is not initialised: run `digest init` first")
    current, head = current_and_head(get_engine())
    if current != head:
        raise UserError(f"the database schema is at revision {current}, this digest needs {head}: "
                        "run `digest init` to upgrade it")


@app.command()
def init() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    revision = upgrade(get_engine())
    out.print(f"database ready at schema revision {revision}: {get_engine().url.render_as_string()}",
              markup=False)


# ------------------------------------------------------------------ subscribers


@subscribers_app.command("add")
def subscribers_add(
    email: str,
    name: Annotated[str | None, typer.Option(help="The reader's name, used in the greeting.")] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics; none means all.")] = None,
    confirmed: Annotated[bool, typer.Option(help="Active at once (consent gathered elsewhere).")] = False,
) -> None:
    """Add one reader (pending unless --confirmed)."""
    _require_database()
    with session_scope() as session:
        subscriber = add_subscriber(session, email, name=name, topics=topics, confirmed=confirmed,
                                    allowed_topics=get_settings().topic_list)
        out.print(f"added {subscriber.email} ({subscriber.status.value}), id {subscriber.id}")


@subscribers_app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns email,name,topics.")],
    confirmed: Annotated[bool, typer.Option(help="Import as active readers.")] = False,
) -> None:
    """Import readers from CSV; bad rows are reported by line, the rest imported."""
    _require_database()
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{file} is not UTF-8 text") from None
    total = max(0, text.count("\n") - (0 if text.endswith("\n") else -1) - 1)
    err = Console(stderr=True)
    # A bar only on a terminal: piped stderr gets the "line N:" errors and nothing else.
    progress = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    with progress, session_scope() as session:
        task = progress.add_task("import", total=total or None)
        report = import_csv(session, text, allowed_topics=get_settings().topic_list, confirmed=confirmed,
                            progress=lambda n: progress.advance(task, n))
    for line, message in report.errors:
        err.print(f"line {line}: {message}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"imported {report.imported}, already subscribed {report.duplicates}, "
              f"suppressed {report.suppressed}, rejected {len(report.errors) - report.suppressed}")


@subscribers_app.command("list")
def subscribers_list(
    status: Annotated[str | None, typer.Option(help="pending, active, unsubscribed, bounced or complained.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List readers."""
    _require_database()
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        try:
            query = query.where(Subscriber.status == SubscriberStatus(status))
        except ValueError:
            raise UserError(f"unknown status {status!r}; use one of "
                            + ", ".join(s.value for s in SubscriberStatus)) from None
    with session_scope() as session:
        rows = [subscriber_json(s) for s in session.scalars(query)]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "email", "name", "status", "topics")
    for row in rows:
        table.add_row(*_cells(row["id"], row["email"], row["name"] or "", row["status"], ", ".join(row["topics"])))
    out.print(table)


# ------------------------------------------------------------------ stories


@stories_app.command("ingest")
def stories_ingest(
    source: Annotated[str, typer.Argument(help="Path or http(s) URL of an RSS/Atom feed, a JSON list or a plain-text article.")],
    url: Annotated[str | None, typer.Option(help="Canonical URL for a plain-text article.")] = None,
) -> None:
    """Add or update stories (matched by URL, never duplicated)."""
    _require_database()
    with session_scope() as session:
        result = ingest_source(session, source, url=url)
    out.print(f"{result.added} added, {result.updated} updated from {source}", markup=False)


@stories_app.command("list")
def stories_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List stories, newest first."""
    _require_database()
    with session_scope() as session:
        rows = [story_json(s) for s in session.scalars(
            select(Story).order_by(Story.published_at.desc(), Story.id.desc()))]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "published", "title", "topics", "featured")
    for row in rows:
        table.add_row(*_cells(row["id"], row["published_at"][:16], row["title"], ", ".join(row["topics"]),
                              "★" if row["featured"] else ""))
    out.print(table)


# ------------------------------------------------------------------ editions


@editions_app.command("create")
def editions_create(
    subject: Annotated[str, typer.Option(help="The email subject.")],
    at: Annotated[str | None, typer.Option(help="When to send, ISO 8601; default now.")] = None,
    tz: Annotated[str | None, typer.Option(help="IANA zone for a naive --at, e.g. Europe/Kyiv.")] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics; default all.")] = None,
    max_stories: Annotated[int, typer.Option(help="Most stories in the digest.")] = 5,
    window_hours: Annotated[int, typer.Option(help="Non-pinned stories must be this recent.")] = 48,
    draft: Annotated[bool, typer.Option(help="Create as a draft instead of scheduling it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Create an edition; prints its id. Without --at it is due at once."""
    _require_database()
    send_at = parse_send_at(at, tz, utcnow())
    with session_scope() as session:
        edition = create_edition(session, subject=subject, send_at=send_at, topics=topics,
                                 allowed_topics=get_settings().topic_list, max_stories=max_stories,
                                 window_hours=window_hours, draft=draft)
        data = edition_json(edition)
    if as_json:
        _print_json(data)
    else:
        sys.stdout.write(f"{data['id']}\n")


@editions_app.command("preview")
def editions_preview(
    edition_id: Annotated[int, typer.Argument(metavar="ID")],
    email: Annotated[str | None, typer.Option(help="Preview as this subscriber.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the HTML part here.")] = None,
) -> None:
    """Show what a reader will receive: the subject and text part; the HTML with --out."""
    _require_database()
    with session_scope() as session:
        subject, body_html, body_text = preview_edition(session, edition_id, email)
    if out_file is not None:
        try:
            out_file.write_text(body_html, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {out_file}: {exc.strerror}") from None
    sys.stdout.write(f"Subject: {subject}\n\n{body_text}")
    if out_file is not None:
        sys.stderr.write(f"HTML written to {out_file}\n")


@editions_app.command("list")
def editions_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List editions, latest first."""
    _require_database()
    with session_scope() as session:
        rows = [edition_json(e) for e in list_editions(session)]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "send at (UTC)", "status", "subject", "topics")
    for row in rows:
        table.add_row(*_cells(row["id"], row["send_at"][:16], row["status"], row["subject"], ", ".join(row["topics"])))
    out.print(table)


@editions_app.command("release")
def editions_release() -> None:
    """Release due editions now; their batches go to the broker (beat does this every 15 s)."""
    _require_database()
    from digest.tasks import release_due_editions

    released = release_due_editions()
    out.print(f"released editions: {', '.join(map(str, released))}" if released else "no edition was due")


def _lifecycle(edition_id: int, action: str) -> None:
    _require_database()
    from digest.lifecycle import LifecycleError, transition
    from digest.staff import audit

    try:
        with session_scope() as session:
            changed = transition(session, edition_id, action, reason=f"{action} from the command line")
            if changed:
                audit(session, None, f"edition.{action}", f"edition:{edition_id}", {"via": "cli"})
    except LifecycleError as exc:
        raise UserError(str(exc)) from None
    out.print(f"edition {edition_id}: {action} {'done' if changed else 'was already done'}")


@editions_app.command("schedule")
def editions_schedule(edition_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Schedule a draft edition."""
    _lifecycle(edition_id, "schedule")


@editions_app.command("cancel")
def editions_cancel(edition_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Cancel an edition; deliveries not yet sent are skipped."""
    _lifecycle(edition_id, "cancel")


@editions_app.command("pause")
def editions_pause(edition_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Pause a sending edition (takes effect within a second)."""
    _lifecycle(edition_id, "pause")


@editions_app.command("resume")
def editions_resume(edition_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Resume a paused edition; only deliveries still queued are sent."""
    _require_database()
    from digest.lifecycle import LifecycleError, resume_and_enqueue
    from digest.store import session_factory
    from digest.tasks import enqueue_batch

    try:
        changed = resume_and_enqueue(session_factory(), edition_id, get_settings().batch_size, enqueue_batch,
                                     reason="resumed from the command line")
    except LifecycleError as exc:
        raise UserError(str(exc)) from None
    out.print(f"edition {edition_id}: resume {'done' if changed else 'was already done'}")


# ------------------------------------------------------------------ users


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help="editor, ops or admin.")],
    password_prompt: Annotated[bool, typer.Option("--password-prompt", help="Type the password instead of generating one.")] = False,
) -> None:
    """Add a staff account; prints a one-time password unless --password-prompt."""
    _require_database()
    from digest.staff import AccountError, create_user, generate_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password_prompt \
        else generate_password()
    try:
        with session_scope() as session:
            user = create_user(session, email, role, password)
            summary = f"added {user.email} ({user.role.value})"
    except AccountError as exc:
        raise UserError(str(exc)) from None
    out.print(summary)
    if not password_prompt:
        sys.stdout.write(f"one-time password: {password}\n")


@users_app.command("token")
def users_token(
    email: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token for a user (printed once)."""
    _require_database()
    from digest.staff import create_api_token
    from digest.store import User

    with session_scope() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise UserError(f"no user {email}")
        _, raw = create_api_token(session, user, name)
    sys.stdout.write(raw + "\n")


# ------------------------------------------------------------------ newsletters


@newsletters_app.command("add")
def newsletters_add(
    slug: str,
    name: Annotated[str, typer.Option(help="Shown to readers, e.g. 'Morning Briefing'.")],
    cron: Annotated[str, typer.Option(help="Five-field cron in --tz, e.g. '0 7 * * *'.")],
    tz: Annotated[str, typer.Option(help="IANA zone, e.g. Europe/Kyiv.")] = "UTC",
    topics: Annotated[str | None, typer.Option(help="Comma-separated; default all.")] = None,
    max_stories: Annotated[int, typer.Option(help="Most stories per edition.")] = 5,
    min_stories: Annotated[int, typer.Option(help="Fewer than this and the edition is skipped.")] = 1,
    subject: Annotated[str, typer.Option(help="Subject template: {{ newsletter }}, {{ date }}, {{ weekday }}.")] = "{{ newsletter }}: {{ date }}",
    sender_name: Annotated[str | None, typer.Option(help="From name for this newsletter.")] = None,
    local_time: Annotated[bool, typer.Option("--local-time", help="Deliver at the cron's hour in each reader's zone.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Add a recurring newsletter; its editions are created ahead by beat."""
    _require_database()
    from digest.newsletters import NewsletterError, create_newsletter

    try:
        with session_scope() as session:
            newsletter = create_newsletter(
                session, slug=slug, name=name, cron=cron, timezone=tz, topics=topics,
                allowed_topics=get_settings().topic_list, max_stories=max_stories, min_stories=min_stories,
                subject_template=subject, sender_name=sender_name, local_time=local_time)
            data = newsletter_json(newsletter)
    except NewsletterError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        _print_json(data)
    else:
        out.print(f"newsletter {data['slug']} (id {data['id']}): {data['cron']} {data['timezone']}")


@newsletters_app.command("list")
def newsletters_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List newsletters."""
    _require_database()
    from digest.newsletters import list_newsletters

    with session_scope() as session:
        rows = [newsletter_json(n) for n in list_newsletters(session)]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "slug", "name", "schedule", "topics")
    for row in rows:
        table.add_row(str(row["id"]), row["slug"], row["name"], f"{row['cron']} {row['timezone']}",
                      ", ".join(row["topics"]))
    out.print(table)


@app.command()
def status(
    edition_id: Annotated[int | None, typer.Argument(metavar="[EDITION_ID]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Redraw every 2 s until Ctrl-C.")] = False,
) -> None:
    """Per edition: planned, sent, failed, bounced, skipped, pending, send rate and ETA;
    the queue and the most common errors."""
    _require_database()
    if watch and as_json:
        raise UserError("--watch draws tables; use --json without it")
    if not watch:
        snapshot = _status_snapshot(edition_id)
        if as_json:
            editions = snapshot["editions"]
            _print_json(editions[0] if edition_id is not None else editions)
        else:
            out.print(_status_tables(snapshot))
        return
    from rich.live import Live

    with Live(_status_tables(_status_snapshot(edition_id)), console=out, refresh_per_second=1) as live:
        try:
            while True:
                time.sleep(2)
                live.update(_status_tables(_status_snapshot(edition_id)))
        except KeyboardInterrupt:
            pass


def _status_snapshot(edition_id: int | None) -> dict[str, Any]:
    from digest import ops

    now = utcnow()
    with session_scope() as session:
        if edition_id is not None:
            editions = [get_edition(session, edition_id)]
        else:
            editions = list_editions(session)
        health = ops.edition_health(session, editions, now)
        errors = ops.error_groups(session, [e.id for e in editions][:50], limit=8)
        oldest = ops.oldest_waiting_seconds(session, now)
    import redis

    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url or settings.broker_url, socket_connect_timeout=0.5,
                                  socket_timeout=0.5)
    return {"editions": [h.as_dict() for h in health], "errors": errors, "oldest_waiting_seconds": oldest,
            "queue_depth": ops.queue_depth(client, settings.task_queue), "queue": settings.task_queue}


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _status_tables(snapshot: dict[str, Any]) -> Any:
    from rich.console import Group

    table = Table("id", "newsletter", "status", "subject", "planned", "sent", "failed", "bounced", "skipped",
                  "pending", "/min", "ETA", title="Editions")
    for e in snapshot["editions"]:
        table.add_row(*_cells(e["id"], e["newsletter"] or "", e["status"], e["subject"], e["planned"], e["sent"],
                              e["failed"], e["bounced"], e["skipped"], e["pending"], e["rate_per_minute"],
                              _duration(e["eta_seconds"]) if e["pending"] else ""))
    depth = snapshot["queue_depth"]
    queue = Table.grid(padding=(0, 2))
    queue.add_row(f"queue {snapshot['queue']}: {'broker unreachable' if depth is None else f'{depth} waiting'}",
                  f"oldest waiting work: {_duration(snapshot['oldest_waiting_seconds'])}")
    parts: list[Any] = [table, queue]
    paused = [e for e in snapshot["editions"] if e["status"] == "paused" and e["status_reason"]]
    for e in paused:
        parts.append(Text(f"edition {e['id']} paused: {e['status_reason']}"))
    if snapshot["errors"]:
        errors = Table("errors (reason, domain)", "edition", "count", title="Recent errors")
        for group in snapshot["errors"]:
            errors.add_row(*_cells(f"{group.reason} ({group.domain})", group.edition_id, group.count))
        parts.append(errors)
    return Group(*parts)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the web app (reader pages, /healthz) with uvicorn."""
    import uvicorn

    _require_database()
    from digest.logs import configure

    settings = get_settings()
    configure(settings.log_format, settings.log_level)
    uvicorn.run("digest.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_level="info", log_config=None)


@app.command()
def bench(
    readers: Annotated[int | None, typer.Option(min=1, help="Readers for the end-to-end send (default 20000).")] = None,
    plan_sizes: Annotated[str | None, typer.Option(
        help="Comma-separated reader counts for the planning figure (default 100000,300000,1000000).")] = None,
    quick: Annotated[bool, typer.Option(help="Small sizes and short runs: a smoke test (~1 minute).")] = False,
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write every figure to this file.")] = None,
    pg_url: Annotated[str, typer.Option(envvar="DIGEST_BENCH_PG_URL",
                                        help="PostgreSQL where scratch databases are created and dropped.")]
    = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    redis_url: Annotated[str, typer.Option(envvar="DIGEST_BENCH_REDIS_URL", help="Redis for the Celery broker.")]
    = "redis://127.0.0.1:6379/14",
) -> None:
    """Measure the send path (message build, SMTP ceiling, end to end, planning, unsubscribe,
    SQL per batch) against real services on loopback, and print one table."""
    from datetime import datetime

    from digest.bench import (
        DEFAULT_PLAN_SIZES,
        DEFAULT_READERS,
        QUICK_PLAN_SIZES,
        QUICK_READERS,
        BenchError,
        BenchOptions,
        run_bench,
        table,
    )

    try:
        sizes = tuple(int(part) for part in plan_sizes.split(",") if part.strip()) if plan_sizes else (
            QUICK_PLAN_SIZES if quick else DEFAULT_PLAN_SIZES)
    except ValueError:
        raise UserError(f"--plan-sizes must be comma-separated numbers, got {plan_sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise UserError("--plan-sizes needs at least one positive number")
    options = BenchOptions(readers=readers or (QUICK_READERS if quick else DEFAULT_READERS),
                           plan_sizes=sizes, quick=quick, pg_url=pg_url, redis_url=redis_url)
    try:
        results = run_bench(options, Console(stderr=True))
    except BenchError as exc:
        raise UserError(str(exc)) from None
    (out if out.is_terminal else Console(width=150)).print(table(results))  # a log or a pipe: no wrapping
    if json_file is not None:
        payload = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
                   "command": " ".join(["digest", *sys.argv[1:]]), **results.to_json()}
        json_file.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where to write digest.db and outbox/.")] = Path("."),
    readers: Annotated[int, typer.Option(help="How many sample readers.")] = 36,
) -> None:
    """Run the whole pipeline on embedded defaults and write ./outbox/*.eml."""
    from digest.demo import DemoError, run_demo

    try:
        run_demo(folder, readers, out)
    except DemoError as exc:
        raise UserError(str(exc)) from None


def _fail(message: str, code: int) -> None:
    # One line, whatever the message holds: scripts read the first line of stderr.
    sys.stderr.write(f"digest: error: {' '.join(message.split())}\n")
    sys.exit(code)


def main() -> None:
    """Entry point: Click's own errors and ours become one line on stderr."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="digest", standalone_mode=False)
    except (click.exceptions.NoArgsIsHelpError, click_exceptions.NoArgsIsHelpError) as exc:
        sys.stderr.write(exc.format_message() if hasattr(exc, "format_message") else "")
        sys.exit(2)
    except (click.ClickException, click_exceptions.ClickException) as exc:
        _fail(exc.format_message(), exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        sys.stderr.write("digest: aborted\n")
        sys.exit(130)
    except (UserError, ConfigError, ParseError, InvalidReader, AlreadySubscribed, Suppressed,
            EditionError) as exc:
        _fail(str(exc), 1)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        _fail(f"database unavailable: {reason}", 1)
    except SQLAlchemyError as exc:
        _fail(f"database error: {str(exc).splitlines()[0]}", 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
