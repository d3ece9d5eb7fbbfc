"""The readers list (/editor/readers): search by address or name, filter by status,
newsletter and topic, a page at a time; and the same filter as a CSV download.

Editors and admins see and change readers; ops see them read-only (no export, no
buttons, and a 403 for any change: digest.web.pages.editor.reader_profile).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse

from digest import actions, readers
from digest.editions import list_newsletters
from digest.store import Role, SubscriberStatus, User, utcnow
from digest.web.deps import EditorUser, actor, page_user, services_of
from digest.web.errors import EditorError
from digest.web.pages.editor.common import editor_page

router = APIRouter(prefix="/editor")
READERS_PAGE_SIZE = 50
PAGE_MAX = 1_000_000
CHANGING_ROLES = (Role.EDITOR, Role.ADMIN)
STATUSES = [s.value for s in SubscriberStatus]

# Editors and admins, and ops read-only: the list and each reader's page.
ReaderViewer = Annotated[User, Depends(page_user(Role.EDITOR, Role.OPS))]
# A reader's id in a path: past BIGINT it is a 400, never a query the database refuses.
ReaderId = Annotated[int, Path(le=2**63 - 1)]


def may_change(user: User) -> bool:
    return user.role in CHANGING_ROLES


def reader_filter(q: str, status: str, newsletter: str, topic: str, page: int = 1) -> readers.ReaderFilter:
    """The list's query string as a filter (a 400 page for a value no form offers)."""
    if status and status not in STATUSES:
        raise EditorError(400, "Bad filter", "Choose a status from the list.", "/editor/readers")
    if newsletter and not (newsletter.isdigit() and len(newsletter) <= 18):
        raise EditorError(400, "Bad filter", "Choose a newsletter from the list.", "/editor/readers")
    return readers.ReaderFilter(q=q.strip() or None, status=status or None,
                                newsletter_id=int(newsletter) if newsletter else None, topic=topic or None,
                                limit=READERS_PAGE_SIZE, offset=(min(max(1, page), PAGE_MAX) - 1) * READERS_PAGE_SIZE)


def _query(filters: dict[str, str], **extra: Any) -> str:
    shown = {k: v for k, v in {**filters, **extra}.items() if v not in ("", None, 1)}
    return f"?{urlencode(shown)}" if shown else ""


@router.get("/readers")
def readers_page(request: Request, user: ReaderViewer, q: str = "", status: str = "", newsletter: str = "",
                 topic: str = "", page: int = 1) -> Response:
    filters = {"q": q.strip()[:200], "status": status, "newsletter": newsletter, "topic": topic}
    which = reader_filter(**filters, page=page)
    page = which.offset // READERS_PAGE_SIZE + 1
    with services_of(request).factory() as session:
        rows, total = readers.search_readers(session, which)
        taken = readers.newsletters_of(session, [s.id for s in rows])
        newsletters = list_newsletters(session)
    names = {n.id: n.name for n in newsletters}
    return editor_page(request, "editor/readers.html", "readers", {
        "readers": [{"row": s, "newsletters": [names[n] for n in taken[s.id] if n in names]} for s in rows],
        "total": total, "filters": filters, "statuses": STATUSES,
        "newsletters": newsletters, "topics": services_of(request).settings.topic_list,
        "may_change": may_change(user),
        "export_url": "/editor/readers/export.csv" + _query(filters),
        "moving_csv_url": "/editor/readers/export.csv" + _query({**filters, "consent": "1"}),
        "moving_json_url": "/editor/readers/export.json" + _query(filters),
        "prev_url": f"/editor/readers{_query(filters, page=page - 1)}" if page > 1 else None,
        "next_url": f"/editor/readers{_query(filters, page=page + 1)}" if page * READERS_PAGE_SIZE < total else None,
        "first": which.offset + 1, "last": which.offset + len(rows),
    })


@router.get("/readers/export.csv")
def export(request: Request, user: EditorUser, q: str = "", status: str = "", newsletter: str = "",
           topic: str = "", consent: str = "") -> Response:
    """Every reader the filter matches, as CSV (email,name,status,topics,newsletters,
    created_at; with `consent=1` the moving-out columns too: confirmed_at, unsubscribed_at,
    opt_in_ip, consent_source); written to the audit log first (`readers.export`: who,
    which filter, how many), since the file takes readers' addresses out of digest."""
    return _export(request, user, reader_filter(q, status, newsletter, topic), "csv", full=consent == "1")


@router.get("/readers/export.json")
def export_json(request: Request, user: EditorUser, q: str = "", status: str = "", newsletter: str = "",
                topic: str = "") -> Response:
    """The moving-out export as a JSON array, one reader a line (as `digest subscribers
    export --format json`), audited like the CSV."""
    return _export(request, user, reader_filter(q, status, newsletter, topic), "json", full=True)


def _export(request: Request, user: User, which: readers.ReaderFilter, fmt: str, *, full: bool) -> Response:
    services = services_of(request)
    actions.readers.export_readers(services.deps(), actor(user, "web"), which, fmt=fmt)

    def lines() -> Iterator[bytes]:
        with services.factory() as session:
            chunks = readers.export_lines(session, which, fmt) if full else readers.export_csv(session, which)
            for text in chunks:
                yield text.encode("utf-8")

    filename = f"readers-{utcnow():%Y%m%d-%H%M}.{fmt}"
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(lines(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})
