"""`digest subscribers`: add, import, export and list readers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from digest import actions, readers
from digest.cli.common import ACTOR, UserError, deps, out, print_json, require_database, table
from digest.store import Subscriber, SubscriberStatus, session_scope

app = typer.Typer(no_args_is_help=True, help="Readers: add, import, export, list.")


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


FILE_READ_BYTES = 1024 * 1024


def _count_lines(file: Path) -> int:
    """Lines in the file, read a megabyte at a time: the progress bar's total, roughly the rows."""
    lines = 0
    with file.open("rb") as stream:
        while block := stream.read(FILE_READ_BYTES):
            lines += block.count(b"\n")
    return max(0, lines - 1)


@app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="A subscriber export: digest's CSV (email,name,topics) or another service's.")],
    source: Annotated[str | None, typer.Option("--from", help="mailchimp, substack, ghost, listmonk, beehiiv, csv or json (digest's own); "
                                                             "detected from the header row when left out.")] = None,
    status: Annotated[str | None, typer.Option(help="The status of rows whose file says none (a Mailchimp "
                                                    "per-status file): subscribed, pending, unsubscribed, cleaned, …")] = None,
    confirmed: Annotated[bool, typer.Option(help="digest's CSV without a status column: import as active readers.")] = False,
    send_confirmations: Annotated[bool, typer.Option(help="Send pending readers a confirmation now.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (the API's answer), "
                                                         "bad rows included, instead of lines.")] = False,
) -> None:
    """Import readers from a subscriber export, with their statuses; bad rows are reported
    by line, the rest imported. Departed addresses go to the suppression list."""
    world = deps()
    if source is not None and source not in readers.SERVICES:
        raise UserError(f"unknown --from {source!r}; use one of {', '.join(readers.SERVICES)}")
    if status is not None and status not in readers.IMPORT_STATUSES:
        raise UserError(f"unknown --status {status!r}; use one of {', '.join(readers.IMPORT_STATUSES)}")
    err = Console(stderr=True)
    try:
        # The bar's total costs a read of the whole file: only when there is a bar to show.
        total = _count_lines(file) if err.is_terminal else 0
        stream = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    # A bar only on a terminal: piped stderr gets the "line N:" errors and nothing else.
    progress = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    try:
        with stream, progress:
            task = progress.add_task("import", total=total or None)
            report = actions.readers.import_readers(
                world, ACTOR, stream, confirmed=confirmed, service=source, status=status, file_name=file.name,
                send_confirmations=send_confirmations, progress=lambda n: progress.advance(task, n), read_aside=True)
    except UnicodeDecodeError:
        raise UserError(f"{file} is not UTF-8 text") from None
    if as_json:
        print_json(actions.import_json(report))
        return
    for line, message in report.errors:
        err.print(f"line {line}: {message}", markup=False, highlight=False, soft_wrap=True)
    if report.unmatched_tags:
        err.print("tags that are neither a topic nor a newsletter, left out: "
                  + ", ".join(f"{tag} ({n})" for tag, n in sorted(report.unmatched_tags.items())),
                  markup=False, highlight=False, soft_wrap=True)
    statuses = ", ".join(f"{name} {report.statuses[name]}" for name in readers.IMPORT_STATUSES if name in report.statuses)
    out.print(f"{report.service}: imported {report.imported}" + (f" ({statuses})" if statuses else "")
              + f", already subscribed {report.duplicates}, suppressed {report.suppressed}, "
              f"rejected {len(report.errors) - report.suppressed}"
              + (f", confirmations sent {len(report.notice_ids)}" if send_confirmations else "")
              + (f", left as the file says {len(report.left)}" if report.left else ""),
              markup=False, highlight=False, soft_wrap=True)


@app.command("export")
def subscribers_export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    status: Annotated[str | None, typer.Option(help="Only readers in this status.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of to stdout.")] = None,
) -> None:
    """Every reader with status, topics, newsletters and consent times, as CSV or JSON:
    `digest subscribers import` (or another service) reads it back."""
    if fmt not in readers.EXPORT_FORMATS:
        raise UserError(f"unknown --format {fmt!r}; use csv or json")
    world = deps()
    which = readers.ReaderFilter(status=status)
    actions.readers.export_readers(world, ACTOR, which, fmt=fmt)
    try:
        target = out_file.open("w", encoding="utf-8", newline="") if out_file else None
    except OSError as exc:
        raise UserError(f"cannot write {out_file}: {exc.strerror}") from None
    with session_scope() as session:
        if target is None:
            for text in readers.export_lines(session, which, fmt):
                sys.stdout.write(text)
            sys.stdout.flush()
            return
        with target:
            for text in readers.export_lines(session, which, fmt):
                target.write(text)


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
