"""`digest deliveries`: the ledger's housekeeping from the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.common import out, print_json, require_database
from digest.config import get_settings
from digest.delivery import compact_deliveries
from digest.store import session_factory, utcnow

app = typer.Typer(no_args_is_help=True, help="Deliveries: retention of the ledger's rows.")


@app.command("compact")
def compact(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What beat does hourly, now: the partitions ahead created; months of deliveries older
    than DIGEST_DELIVERY_RETENTION_DAYS summarised (edition tallies, reader summaries) and
    dropped. Safe to run twice, and beside beat."""
    require_database()
    settings = get_settings()
    report = compact_deliveries(session_factory(), utcnow(), settings.delivery_retention_days)
    if as_json:
        print_json(report.as_json())
        return
    out.print(f"retention {settings.delivery_retention_days} days: rows planned before "
              f"{report.cutoff:%Y-%m-%d} may go")
    for label, months in (("partitions created", report.partitions_created), ("compacted", report.compacted),
                          ("removed", report.removed), ("partitions dropped", report.partitions_dropped)):
        out.print(f"{label}: {', '.join(f'{m:%Y-%m}' for m in months) or 'none'}")
    if report.rows_deleted:
        out.print(f"rows deleted: {report.rows_deleted:,} in {report.delete_batches} batches")
    for month, why in report.held.items():
        out.print(f"kept {month:%Y-%m}: {why}")
