"""`digest subscribers`: add, import and list readers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from digest import actions
from digest.cli.common import ACTOR, UserError, deps, out, print_json, require_database, table
from digest.store import Subscriber, SubscriberStatus, session_scope

app = typer.Typer(no_args_is_help=True, help="Readers: add, import, list.")


@app.command("add")
def subscribers_add(
    email: str,
    name: Annotated[str | None, typer.Option(help="The reader's name, used in the greeting.")] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics; none means all.")] = None,
    confirmed: Annotated[bool, typer.Option(help="Active at once (consent gathered elsewhere).")] = False,
) -> None:
    """Add one reader (pending unless --confirmed)."""
    reader = actions.readers.add_reader(deps(), ACTOR, email, name=name, topics=topics, confirmed=confirmed)
    out.print(f"added {reader['email']} ({reader['status']}), id {reader['id']}", markup=False)


@app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns email,name,topics.")],
    confirmed: Annotated[bool, typer.Option(help="Import as active readers.")] = False,
) -> None:
    """Import readers from CSV; bad rows are reported by line, the rest imported."""
    world = deps()
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
    with progress:
        task = progress.add_task("import", total=total or None)
        report = actions.readers.import_readers(world, ACTOR, text, confirmed=confirmed,
                                                progress=lambda n: progress.advance(task, n))
    for line, message in report.errors:
        err.print(f"line {line}: {message}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"imported {report.imported}, already subscribed {report.duplicates}, "
              f"suppressed {report.suppressed}, rejected {len(report.errors) - report.suppressed}")


@app.command("list")
def subscribers_list(
    status: Annotated[str | None, typer.Option(help="pending, active, unsubscribed, bounced or complained.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List readers."""
    require_database()
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        try:
            query = query.where(Subscriber.status == SubscriberStatus(status))
        except ValueError:
            raise UserError(f"unknown status {status!r}; use one of "
                            + ", ".join(s.value for s in SubscriberStatus)) from None
    with session_scope() as session:
        rows = [actions.subscriber_json(s) for s in session.scalars(query)]
    if as_json:
        print_json(rows)
        return
    out.print(table(("id", "email", "name", "status", "topics"),
                    ((r["id"], r["email"], r["name"] or "", r["status"], ", ".join(r["topics"])) for r in rows)))
