"""One reader (/editor/readers/{id}): their profile, newsletters and topics, frequency and
pause, consent events, every delivery, notices, bounces and complaints; and what staff do
on the reader's behalf: unsubscribe (after a confirmation step), change newsletters or
topics, send a fresh confirmation, erase (after a confirmation step).

Every change is a digest.actions call (consent channel `admin`, the audit row naming the
staff member), then a redirect back to the reader. Ops may look, not change: their POSTs
are 403 (EditorUser).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from digest import actions, readers
from digest.editions import list_newsletters
from digest.errors import Invalid
from digest.store import SubscriberStatus
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.errors import EditorError
from digest.web.forms import Form
from digest.web.pages.editor.common import editor_page, see_other
from digest.web.pages.editor.readers import ReaderId, ReaderViewer, may_change

router = APIRouter(prefix="/editor")
DELIVERIES_PAGE_SIZE = 50
PAGE_MAX = 1_000_000
STILL_ON_THE_LIST = (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING)

# What a redirect's ?done= says on the reader's page; fixed text, never echoed input.
READER_NOTICES = {
    "unsubscribed": "Unsubscribed: they get nothing more, from this moment.",
    "already-left": "Nothing to change: they had already left.",
    "newsletters": "Newsletters saved.",
    "topics": "Topics saved.",
    "unchanged": "Nothing to change: it was already so.",
    "confirmation-sent": "A fresh confirmation email is on its way.",
    "confirmation-recent": "A confirmation was sent less than a minute ago; no second one was sent.",
    "erased": "Erased: their address, name and choices are gone; the address stays blocked from re-adding.",
    "already-erased": "Nothing to change: they were erased already.",
}


def _back(reader_id: int, done: str) -> RedirectResponse:
    return see_other(f"/editor/readers/{reader_id}?done={done}")


@router.get("/readers/{reader_id}")
def reader_page(request: Request, user: ReaderViewer, reader_id: ReaderId, page: int = 1, done: str = "") -> Response:
    page = min(max(1, page), PAGE_MAX)
    settings = services_of(request).settings
    with services_of(request).factory() as session:
        history = readers.reader_history(session, reader_id, deliveries_limit=DELIVERIES_PAGE_SIZE,
                                         deliveries_offset=(page - 1) * DELIVERIES_PAGE_SIZE)
        taken = {n.id for n in history.newsletters}
        # Those a reader can choose (not archived; one they take that was archived is kept).
        choices = [n for n in list_newsletters(session) if n.archived_at is None]
    subscriber = history.subscriber
    here = f"/editor/readers/{reader_id}"
    return editor_page(request, "editor/reader.html", "readers", {
        "h": history, "s": subscriber, "may_change": may_change(user), "choices": choices, "taken": taken,
        "topics": settings.topic_list, "notice": READER_NOTICES.get(done),
        "erased": subscriber.erased_at is not None, "on_the_list": subscriber.status in STILL_ON_THE_LIST,
        "pending": subscriber.status == SubscriberStatus.PENDING,
        "prev_url": f"{here}?page={page - 1}#deliveries" if page > 1 else None,
        "next_url": (f"{here}?page={page + 1}#deliveries"
                     if page * DELIVERIES_PAGE_SIZE < history.deliveries_total else None),
    })


def _confirm_page(request: Request, reader_id: int, what: str) -> Response:
    with services_of(request).factory() as session:
        subscriber = readers.get_reader(session, reader_id)
    return editor_page(request, "editor/reader_confirm.html", "readers", {"s": subscriber, "what": what})


def _confirmed(form: Form, reader_id: int) -> None:
    if form.get("confirm") != "yes":
        raise EditorError(400, "Please confirm", "Confirm on the page before this is done.",
                          f"/editor/readers/{reader_id}")


@router.get("/readers/{reader_id}/unsubscribe")
def confirm_unsubscribe(request: Request, user: EditorUser, reader_id: ReaderId) -> Response:
    return _confirm_page(request, reader_id, "unsubscribe")


@router.post("/readers/{reader_id}/unsubscribe")
def unsubscribe(request: Request, user: EditorUser, reader_id: ReaderId, form: CheckedForm) -> Response:
    _confirmed(form, reader_id)
    outcome = actions.readers.unsubscribe_reader(services_of(request).deps(), actor(user, "web"), reader_id)
    return _back(reader_id, "unsubscribed" if outcome.changed else "already-left")


@router.get("/readers/{reader_id}/erase")
def confirm_erase(request: Request, user: EditorUser, reader_id: ReaderId) -> Response:
    return _confirm_page(request, reader_id, "erase")


@router.post("/readers/{reader_id}/erase")
def erase(request: Request, user: EditorUser, reader_id: ReaderId, form: CheckedForm) -> Response:
    _confirmed(form, reader_id)
    outcome = actions.readers.erase_reader(services_of(request).deps(), actor(user, "web"), reader_id)
    return _back(reader_id, "erased" if outcome.changed else "already-erased")


@router.post("/readers/{reader_id}/newsletters")
def set_newsletters(request: Request, user: EditorUser, reader_id: ReaderId, form: CheckedForm) -> Response:
    raw = form.get_all("newsletters")
    if not all(value.isdigit() and len(value) <= 18 for value in raw):
        raise Invalid("unknown newsletter")
    outcome = actions.readers.set_newsletters(services_of(request).deps(), actor(user, "web"), reader_id,
                                              [int(value) for value in raw])
    return _back(reader_id, "newsletters" if outcome.changed else "unchanged")


@router.post("/readers/{reader_id}/topics")
def set_topics(request: Request, user: EditorUser, reader_id: ReaderId, form: CheckedForm) -> Response:
    outcome = actions.readers.set_topics(services_of(request).deps(), actor(user, "web"), reader_id,
                                         form.get_all("topics"))
    return _back(reader_id, "topics" if outcome.changed else "unchanged")


@router.post("/readers/{reader_id}/confirm")
def send_confirmation(request: Request, user: EditorUser, reader_id: ReaderId, form: CheckedForm) -> Response:
    outcome = actions.readers.send_confirmation(services_of(request).deps(), actor(user, "web"), reader_id)
    return _back(reader_id, "confirmation-sent" if outcome.changed else "confirmation-recent")
