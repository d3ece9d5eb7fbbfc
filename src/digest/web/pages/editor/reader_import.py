"""Importing readers from a CSV in the browser (/editor/readers/import), by the command
line's rules (digest.readers.roster through actions.readers.import_readers): valid rows
in, bad and suppressed ones refused, addresses already on the list left as they are, each
reported by its line in the file.

The progress bar: the request itself streams it. With JavaScript the page posts the file
with `stream=1` and reads the answer as it comes, one JSON object a line
(application/x-ndjson): `{"read": 0, "total"}` once the file is read and checked, `{"read",
"total"}` after each chunk of rows written, and last `{"done": true, …counts, "html"}` (the
report) or `{"error"}`. Without JavaScript the same form posts plainly and gets the report page.

The import runs in a thread of its own, as one transaction: nothing is committed until
the whole file is in, so a server killed half-way leaves nothing behind, and there is no
queued job for a dying worker to lose. A browser that goes away half-way does not stop
it; the import finishes and is in the audit log (`readers.import`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from digest import actions, readers
from digest.errors import DigestError
from digest.store import User
from digest.web.deps import EditorUser, actor, services_of
from digest.web.forms import Upload, read_upload, require_csrf
from digest.web.pages.editor.common import editor_page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/editor")
REPORT_ROWS_SHOWN = 500  # per list; the API answers every row
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # no proxy buffering


async def _csv_upload(request: Request) -> Upload:
    """The uploaded file and the fields around it, checked for CSRF (reading is async)."""
    upload = await read_upload(request, readers.CSV_UPLOAD_MAX_BYTES, "file")
    require_csrf(request, upload.form, services_of(request).settings.secret_key)
    return upload


SERVICE_LABELS = {"mailchimp": "Mailchimp", "substack": "Substack", "ghost": "Ghost", "listmonk": "listmonk",
                  "beehiiv": "beehiiv", "csv": "digest CSV", "json": "digest JSON"}


def _import_page(request: Request, *, report: readers.ImportReport | None = None, error: str | None = None,
                 confirmed: bool = False, source: str | None = None, status: int = 200) -> Response:
    return editor_page(request, "editor/readers_import.html", "readers", {
        **_report_context(report), "error": error, "confirmed": confirmed, "source": source,
        "services": list(SERVICE_LABELS.items()),
        "max_mb": readers.CSV_UPLOAD_MAX_BYTES // (1024 * 1024)}, status)


def _report_context(report: readers.ImportReport | None) -> dict[str, Any]:
    if report is None:
        return {"report": None}
    refused = sorted(report.errors)
    statuses = [(name, report.statuses[name]) for name in readers.IMPORT_STATUSES if name in report.statuses]
    return {"report": report, "statuses": statuses, "departed": readers.DEPARTED,
            "service_label": SERVICE_LABELS.get(report.service, report.service), "refused": refused[:REPORT_ROWS_SHOWN], "refused_more": len(refused) - REPORT_ROWS_SHOWN,
            "skipped": report.skipped[:REPORT_ROWS_SHOWN], "skipped_more": len(report.skipped) - REPORT_ROWS_SHOWN,
            "rejected": len(report.errors) - report.suppressed}


@router.get("/readers/import")
def import_form(request: Request, user: EditorUser) -> Response:
    return _import_page(request)


@router.post("/readers/import")
def import_file(request: Request, user: EditorUser,
                upload: Annotated[Upload, Depends(_csv_upload)]) -> Response:
    form, data, file_name = upload
    confirmed = form.get("confirmed") == "yes"
    source = form.get("from") or None
    if source is not None and source not in SERVICE_LABELS:
        return _import_page(request, error="Choose a service from the list.", confirmed=confirmed, status=400)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _import_page(request, error="The file is not UTF-8 text: save it from your spreadsheet as "
                                           "“CSV UTF-8” and try again.", confirmed=confirmed, source=source, status=400)
    try:
        total = readers.count_csv_rows(text, source)  # the header and the file's shape, checked before anything starts
    except readers.InvalidReader as exc:
        return _import_page(request, error=f"Nothing was imported: {exc}.", confirmed=confirmed, source=source,
                            status=400)
    if form.get("stream") == "1":
        return StreamingResponse(_stream(request, user, text, confirmed, total, source, file_name),
                                 media_type="application/x-ndjson", headers=STREAM_HEADERS)
    report = actions.readers.import_readers(services_of(request).deps(), actor(user, "web"), text,
                                            confirmed=confirmed, service=source, file_name=file_name)
    return _import_page(request, report=report, confirmed=confirmed, source=source)


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value) + "\n").encode("utf-8")


def _stream(request: Request, user: User, text: str, confirmed: bool, total: int,
            source: str | None, file_name: str | None) -> Iterator[bytes]:
    """Progress lines while the import runs in its own thread (a plain iterator: Starlette
    runs each step in its thread pool, never on the event loop)."""
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    deps = services_of(request).deps()
    templates = request.app.state.templates

    def run() -> None:
        try:
            report = actions.readers.import_readers(deps, actor(user, "web"), text, confirmed=confirmed,
                                                    service=source, file_name=file_name,
                                                    progress=lambda n: events.put({"read": n}))
            html = templates.get_template("editor/_import_report.html").render(_report_context(report))
            events.put({"done": True, **actions.import_json(report), "html": html})
        except DigestError as exc:
            events.put({"error": f"Nothing was imported: {exc.message}"})
        except Exception:
            log.exception("reader import failed")
            events.put({"error": "The import failed and nothing was imported. Please try again in a minute."})
        finally:
            events.put(None)

    threading.Thread(target=run, name="readers-import").start()
    yield _line({"read": 0, "total": total})
    read = 0
    while (event := events.get()) is not None:
        if "read" in event:
            read += event["read"]
            yield _line({"read": read, "total": total})
        else:
            # The whole report is for the API; the page needs the counts and the table.
            yield _line({k: v for k, v in event.items() if k not in ("errors", "skipped")})
