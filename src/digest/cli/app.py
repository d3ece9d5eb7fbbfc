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
  users list --json        [{id, email, role, status, must_change_password, created_at,
                             last_login_at, disabled_at}]
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import uvicorn
from rich.console import Console
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from digest import actions
from digest.bench import (
    DEFAULT_PLAN_SIZES,
    DEFAULT_READERS,
    QUICK_PLAN_SIZES,
    QUICK_READERS,
    BenchError,
    BenchOptions,
    run_bench,
)
from digest.bench import table as bench_table
from digest.cli import deliveries, editions, feeds, newsletters, readers, stories, users
from digest.cli.common import UserError, deps, out, require_database
from digest.cli.demo import DemoError, run_demo
from digest.cli.status import status
from digest.config import ConfigError, Settings, get_settings
from digest.errors import DigestError, cli_exit
from digest.observe import configure
from digest.store import get_engine, upgrade

try:  # typer >= 0.20 carries its own copy of click: its errors are not click's classes
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Featured-story email digests.")
app.add_typer(readers.app, name="subscribers")
app.add_typer(stories.app, name="stories")
app.add_typer(editions.app, name="editions")
app.add_typer(users.app, name="users")
app.add_typer(newsletters.app, name="newsletters")
app.add_typer(feeds.app, name="feeds")
app.add_typer(deliveries.app, name="deliveries")
app.command()(status)


@app.command()
def embed(
    newsletter: Annotated[str | None, typer.Option(help="Sign up for this newsletter (its slug); default: every "
                                                        "newsletter a new reader gets.")] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics to offer as choices; default: "
                                                    "no choice, every topic.")] = None,
    script: Annotated[bool, typer.Option("--script", help="Add digest's /embed.js: the form is sent in place, "
                                                          "the answer shown beside it.")] = False,
    iframe: Annotated[bool, typer.Option("--iframe", help="An <iframe> of digest's own form instead, for a site "
                                                          "that allows no script and no form posting elsewhere.")]
    = False,
) -> None:
    """Print the HTML sign-up form to paste into your own pages (list their origins in
    DIGEST_EMBED_ORIGINS). It needs no JavaScript."""
    if script and iframe:
        raise UserError("choose --script or --iframe, not both")
    sys.stdout.write(actions.embed.embed_snippet(deps(), newsletter=newsletter, topics=topics, script=script,
                                                 iframe=iframe))


@app.command()
def init() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    revision = upgrade(get_engine())
    out.print(f"database ready at schema revision {revision}: {get_engine().url.render_as_string()}",
              markup=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the web app (reader pages, /healthz) with uvicorn."""
    require_database()
    settings = get_settings()
    configure(settings.log_format, settings.log_level)
    uvicorn.run("digest.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", log_config=None, **proxy_options(settings))


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For: believed only from DIGEST_FORWARDED_ALLOW_IPS
    (uvicorn's own default trusts 127.0.0.1, and so anyone who reaches the app through a
    local process: sign-in limits keyed by address would be a header away)."""
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips}


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
    history_days: Annotated[str | None, typer.Option(
        metavar="N[,N…]", help="Also send end to end on a database holding N days of daily editions to the same "
                               "readers (e.g. 90 or 90,365), against the fresh run.")] = None,
    history_plain: Annotated[bool, typer.Option(
        help="With --history-days, also run each history on one plain deliveries table (no monthly "
             "partitions): the baseline for the partitioned figures and the retention job's drop.")] = False,
) -> None:
    """Measure the send path (message build, SMTP ceiling, end to end, planning, unsubscribe,
    pages during sign-ins, SQL per batch) against real services on loopback, and print one
    table."""
    try:
        sizes = tuple(int(part) for part in plan_sizes.split(",") if part.strip()) if plan_sizes else (
            QUICK_PLAN_SIZES if quick else DEFAULT_PLAN_SIZES)
    except ValueError:
        raise UserError(f"--plan-sizes must be comma-separated numbers, got {plan_sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise UserError("--plan-sizes needs at least one positive number")
    try:
        days = tuple(int(part) for part in history_days.split(",") if part.strip()) if history_days else ()
    except ValueError:
        raise UserError(f"--history-days must be comma-separated numbers of days, got {history_days!r}") from None
    if any(d < 1 or d > 3650 for d in days):
        raise UserError("--history-days takes days from 1 to 3650")
    options = BenchOptions(readers=readers or (QUICK_READERS if quick else DEFAULT_READERS),
                           plan_sizes=sizes, quick=quick, pg_url=pg_url, redis_url=redis_url, history_days=days,
                           history_plain=history_plain)
    try:
        results = run_bench(options, Console(stderr=True))
    except BenchError as exc:
        raise UserError(str(exc)) from None
    (out if out.is_terminal else Console(width=150)).print(bench_table(results))  # a log or a pipe: no wrapping
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
    try:
        run_demo(folder, readers, out)
    except DemoError as exc:
        raise UserError(str(exc)) from None


def _fail(message: str, code: int) -> None:
    # One line, whatever the message holds: scripts read the first line of stderr.
    sys.stderr.write(f"digest: error: {' '.join(message.split())}\n")
    sys.exit(code)


def main() -> None:
    """Entry point: Click's own errors and ours become one line on stderr; the exit status
    is chosen by the error's class (digest.errors), never by its text."""
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
    except DigestError as exc:
        _fail(str(exc), cli_exit(exc))
    except ConfigError as exc:
        _fail(str(exc), 1)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        _fail(f"database unavailable: {reason}", 1)
    except SQLAlchemyError as exc:
        _fail(f"database error: {str(exc).splitlines()[0]}", 1)
    sys.exit(code if isinstance(code, int) else 0)
