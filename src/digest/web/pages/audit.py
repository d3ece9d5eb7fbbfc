"""The audit log for ops (/ops/audit) and its CSV (/ops/audit.csv): who did what to which
thing, named and linked (digest.observe.audit), filtered by who, what, kind of thing and
when, 50 rows a page newest first; the CSV holds every filtered row, with cells that a
spreadsheet would run as formulas defused.

A filter value that is not one (a date that is not a date, an unknown kind) is a 400: the
page again with the filters as typed and the message at the field; never a 500.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from digest import actions
from digest.observe import (
    ACTION_GROUPS,
    AUDIT_CSV_COLUMNS,
    KIND_LABELS,
    AuditFilterError,
    AuditPage,
    AuditQuery,
    audit_choices,
    audit_page,
    bulk_audit_lines,
    csv_cells,
    parse_audit_query,
)
from digest.store import Role, User
from digest.web.deps import OpsUser, actor, services_of, staff_page
from digest.web.forms import BadRequest

router = APIRouter()
FILTER_PARAMS = ("who", "what", "kind", "from", "to")
# Who may open the pages the log links to, as those pages' own dependencies say (admins
# open all): a name links only for someone it would not answer 403.
LINKED_PAGE_ROLES: tuple[tuple[str, tuple[Role, ...]], ...] = (
    ("/editor/readers", (Role.EDITOR, Role.OPS)), ("/editor/users", ()), ("/editor", (Role.EDITOR,)))


def _opener(user: User) -> Callable[[str | None], bool]:
    def opens(href: str | None) -> bool:
        if href is None:
            return False
        roles = next((r for prefix, r in LINKED_PAGE_ROLES if href.startswith(prefix)), ())
        return user.role == Role.ADMIN or user.role in roles

    return opens


def _typed(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "")[:400] for name in FILTER_PARAMS}


def _page_number(raw: str) -> int:
    return int(raw) if raw.isdigit() and len(raw) <= 9 else 1


@router.get("/ops/audit")
def audit_log(request: Request, user: OpsUser) -> Response:
    typed = _typed(request)
    errors: dict[str, str] = {}
    try:
        query = parse_audit_query(typed)
    except AuditFilterError as exc:
        errors[exc.field] = exc.message
        query = AuditQuery()
    with services_of(request).factory() as session:
        choices = audit_choices(session)
        # A bad filter shows no rows rather than all of them.
        page = (AuditPage([], 0, 1, 1) if errors
                else audit_page(session, query, _page_number(request.query_params.get("page", "1"))))
    return staff_page(request, "ops/audit.html", {
        "active": "ops", "typed": typed, "errors": errors, "choices": choices, "groups": ACTION_GROUPS,
        "kinds": KIND_LABELS, "page": page, "query": query, "opens": _opener(user),
        "csv_url": query.url("/ops/audit.csv"),
        "prev_url": query.url("/ops/audit", page=page.page - 1) if page.page > 1 else None,
        "next_url": query.url("/ops/audit", page=page.page + 1) if page.page < page.pages else None,
    }, 400 if errors else 200)


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


@router.get("/ops/audit.csv")
def audit_csv(request: Request, user: OpsUser) -> Response:
    """Every row the page's filters pick (not only one page), newest first, streamed; the
    export itself is audited."""
    try:
        query = parse_audit_query(_typed(request))
    except AuditFilterError as exc:
        raise BadRequest(400, "Bad filter", exc.message) from None
    services = services_of(request)
    # Recorded first (`audit.export`: who, which filters, how many): the file names readers.
    _, newest = actions.audit_log.export_audit(services.deps(), actor(user, "ops"), query)
    factory = services.factory

    def lines() -> Iterator[str]:
        yield _csv_line(list(AUDIT_CSV_COLUMNS))
        with factory() as session:
            for chunk in bulk_audit_lines(session, query, upto=newest):
                yield "".join(_csv_line(csv_cells(line)) for line in chunk)

    name = f"audit-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})
