"""Actions on the audit log itself: taking it out of digest as a file."""

from __future__ import annotations

from digest.actions.base import Actor, Deps, audited
from digest.observe import AuditQuery, count_audit_rows


def export_audit(deps: Deps, actor: Actor, query: AuditQuery) -> tuple[int, int]:
    """Record that the audit rows `query` picks are leaving as a file (they name readers and
    staff): who took them, with which filters, how many. Returns (how many, the newest
    row's id): the caller writes exactly those rows (observe.bulk_audit_lines up to it),
    not this record nor any row written meanwhile."""
    with audited(deps, actor, "audit.export", "csv") as (session, row):
        count, newest = count_audit_rows(session, query)
        row.update(count=count, **query.params())
    return count, newest
