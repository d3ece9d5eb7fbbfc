"""Editor pages for editions: create a one-off edition, then curate it: pin, leave out and
order stories, rewrite a headline or summary for this edition only, write the note, preview
it at desktop and phone width, send a test, schedule, unschedule or cancel.

Curation goes through `curation`, state changes through `lifecycle`, as in the JSON API.
An edition that has started sending is frozen: changing it is a 409 page saying so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from digest import curation, lifecycle, staff
from digest.content import edition_view
from digest.editions import (
    EditionError,
    create_edition,
    edition_counts,
    parse_send_at,
    preview_edition,
)
from digest.mail import SendError, make_transport
from digest.readers import InvalidReader
from digest.selector import curation as edition_curation
from digest.store import Edition, EditionCuration, EditionStatus, Story, utcnow
from digest.stories import StoryFilter, search_stories
from digest.web.editor_pages import (
    Editor,
    EditorError,
    checked_form,
    editor_form_page,
    editor_page,
    int_field,
    see_other,
    services_of,
)

router = APIRouter(prefix="/editor")
CANDIDATES_SHOWN = 15
EDITOR_ACTIONS = ("schedule", "unschedule", "cancel")


# ------------------------------------------------------------------ editions: create


def _edition_form_page(request: Request, values: dict[str, Any], error: str | None = None,
                       status: int = 200) -> Response:
    return editor_form_page(request, "editor/edition_new.html", "edition", values, error, status)


@router.get("/editions/new")
async def new_edition(request: Request, user: Editor) -> Response:
    settings = services_of(request).settings
    return _edition_form_page(request, {"subject": "", "send_at": "", "timezone": "UTC", "topics": [],
                                        "max_stories": settings.max_stories, "window_hours": settings.window_hours})


@router.post("/editions/new")
async def add_edition(request: Request, user: Editor) -> Response:
    services = services_of(request)
    settings = services.settings
    form = await checked_form(request)
    values = {name: form.get(name) for name in ("subject", "send_at", "timezone", "max_stories", "window_hours")}
    values["topics"] = form.get_all("topics")
    try:
        send_at = parse_send_at(values["send_at"].strip() or None, values["timezone"].strip() or None, utcnow())
        with services.factory.begin() as session:
            edition = create_edition(
                session, subject=values["subject"], send_at=send_at,
                topics=",".join(values["topics"]) or None, allowed_topics=settings.topic_list,
                max_stories=int_field(form, "max_stories", settings.max_stories, "Max stories"),
                window_hours=int_field(form, "window_hours", settings.window_hours, "Story window"), draft=True)
            staff.audit(session, user, "edition.add", f"edition:{edition.id}", {"draft": True})
            edition_id = edition.id
    except (EditionError, ValueError) as exc:
        message = str(exc)
        return _edition_form_page(request, values, message, 400)
    return see_other(f"/editor/editions/{edition_id}?done=edition-added")


# ------------------------------------------------------------------ editions: curate


def _edition_or_404(session: Session, edition_id: int) -> Edition:
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise EditorError(404, "No such edition", f"There is no edition {edition_id}.")
    return edition


def _editable(session: Session, edition_id: int) -> Edition:
    """The edition, if curation may change it; else a 409 page with the service's reason."""
    _edition_or_404(session, edition_id)
    try:
        return curation.editable_edition(session, edition_id)
    except curation.CurationError as exc:
        message = str(exc)
        raise EditorError(409, "This edition is frozen", message[:1].upper() + message[1:] + ".",
                          f"/editor/editions/{edition_id}") from None


@router.get("/editions/{edition_id}")
async def edition_page(request: Request, user: Editor, edition_id: int, q: str = "", email: str = "",
                       done: str = "") -> Response:
    preview_error = None
    with services_of(request).factory() as session:
        edition = _edition_or_404(session, edition_id)
        view = edition_view(session, edition)
        shown = [s.id for s in view.stories]
        rows = {r.story_id: r for r in session.scalars(
            select(EditionCuration).where(EditionCuration.edition_id == edition_id))}
        excluded_ids = [sid for sid, r in rows.items() if r.action == "exclude"]
        excluded = list(session.scalars(select(Story).where(Story.id.in_(excluded_ids)).order_by(Story.title)))
        found, _ = search_stories(session, StoryFilter(
            q=q.strip()[:200] or None, status="published", limit=CANDIDATES_SHOWN + len(shown) + len(excluded_ids)))
        candidates = [s for s in found if s.id not in shown and s.id not in excluded_ids][:CANDIDATES_SHOWN]
        originals = {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(shown)))}
        counts = edition_counts(session, [edition_id])[0]
        try:
            subject, body_html, body_text = preview_edition(session, edition_id, email.strip() or None)
        except (EditionError, InvalidReader) as exc:
            preview_error = str(exc)
            subject, body_html, body_text = preview_edition(session, edition_id, None)
        status = edition.status.value
        context = {
            "edition": edition, "view": view, "rows": rows, "originals": originals, "excluded": excluded,
            "candidates": candidates, "q": q, "email": email, "counts": counts,
            "editable": edition.status in curation.EDITABLE,
            "actions": [a for a in EDITOR_ACTIONS if edition.status in lifecycle.ALLOWED_FROM[a]],
            "preview": {"subject": subject, "html": body_html, "text": body_text, "error": preview_error},
            "status": status,
            "overdue": edition.status == EditionStatus.DRAFT and edition.send_at < utcnow(),
        }
        return editor_page(request, "editor/edition.html", "", context, 404 if preview_error else 200, done=done)


def _back(edition_id: int, done: str, anchor: str = "") -> RedirectResponse:
    return see_other(f"/editor/editions/{edition_id}?done={done}{anchor}")


@router.post("/editions/{edition_id}/stories/{story_id}/{action}")
async def curate_story(request: Request, user: Editor, edition_id: int, story_id: int, action: str) -> Response:
    """pin, exclude, clear (back to automatic), unpin, up and down."""
    if action not in ("pin", "exclude", "clear", "unpin", "up", "down"):
        raise EditorError(404, "Unknown action", f"There is no action {action!r}.", f"/editor/editions/{edition_id}")
    await checked_form(request)
    done = {"pin": "pinned", "exclude": "excluded", "clear": "cleared", "unpin": "unpinned"}.get(action, "moved")
    with services_of(request).factory.begin() as session:
        edition = _editable(session, edition_id)
        try:
            if action in ("pin", "exclude", "clear"):
                curation.curate(session, edition_id, story_id, action)
                detail: dict[str, object] = {"story_id": story_id}
            else:
                order = _new_order(session, edition, story_id, action)
                curation.reorder(session, edition_id, order)
                detail = {"story_id": story_id, "story_ids": order}
        except curation.CurationError as exc:
            raise EditorError(404 if str(exc).startswith("no ") else 400, "Cannot change this edition", str(exc),
                              f"/editor/editions/{edition_id}") from None
        staff.audit(session, user, f"edition.{'reorder' if action in ('up', 'down', 'unpin') else action}",
                       f"edition:{edition_id}", detail)
        if action == "pin":
            session.flush()
            if story_id not in [s.id for s in edition_view(session, edition).stories]:
                done = "pinned-hidden"
    return _back(edition_id, done, "#stories")


def _new_order(session: Session, edition: Edition, story_id: int, action: str) -> list[int]:
    """The pins after unpin, up or down. Moving makes the order shown the edition's pins,
    so what the editor arranged is what goes out."""
    if action == "unpin":
        pinned, _ = edition_curation(session, edition.id)
        return [sid for sid in pinned if sid != story_id]
    order = [s.id for s in edition_view(session, edition).stories]
    if story_id not in order:
        raise curation.CurationError(f"story {story_id} is not in this edition")
    index = order.index(story_id)
    other = index - 1 if action == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    return order


@router.post("/editions/{edition_id}/stories/{story_id}")
async def override_story(request: Request, user: Editor, edition_id: int, story_id: int) -> Response:
    form = await checked_form(request)
    with services_of(request).factory.begin() as session:
        _editable(session, edition_id)
        try:
            curation.override(session, edition_id, story_id, headline=form.get("headline"),
                              summary=form.get("summary"))
        except curation.CurationError as exc:
            raise EditorError(404 if str(exc).startswith("no ") else 400, "Cannot save the override", str(exc),
                              f"/editor/editions/{edition_id}") from None
        staff.audit(session, user, "edition.override", f"edition:{edition_id}", {"story_id": story_id})
    return _back(edition_id, "override", f"#story-{story_id}")


@router.post("/editions/{edition_id}/note")
async def save_note(request: Request, user: Editor, edition_id: int) -> Response:
    form = await checked_form(request)
    with services_of(request).factory.begin() as session:
        _editable(session, edition_id)
        try:
            curation.set_note(session, edition_id, form.get("note"))
        except curation.CurationError as exc:
            raise EditorError(400, "Cannot save the note", str(exc), f"/editor/editions/{edition_id}") from None
        staff.audit(session, user, "edition.note", f"edition:{edition_id}")
    return _back(edition_id, "note", "#note")


@router.post("/editions/{edition_id}/test")
async def send_test(request: Request, user: Editor, edition_id: int) -> Response:
    settings = services_of(request).settings
    form = await checked_form(request)
    address = form.get("email").strip()
    back = f"/editor/editions/{edition_id}"

    def work() -> None:
        transport = make_transport(settings)
        with services_of(request).factory.begin() as session:
            _edition_or_404(session, edition_id)
            curation.send_test(session, edition_id, address, transport, settings)
            staff.audit(session, user, "edition.test", f"edition:{edition_id}", {"to": address})

    try:
        await run_in_threadpool(work)  # SMTP can take seconds; keep the event loop free
    except InvalidReader as exc:
        raise EditorError(400, "Cannot send the test", str(exc), back) from None
    except SendError as exc:
        raise EditorError(502, "The test was not sent", f"The mail server did not take it: {exc}", back) from None
    return _back(edition_id, "test-sent", "#test")


@router.post("/editions/{edition_id}/status")
async def change_status(request: Request, user: Editor, edition_id: int) -> Response:
    form = await checked_form(request)
    action = form.get("action")
    back = f"/editor/editions/{edition_id}"
    if action not in EDITOR_ACTIONS:
        raise EditorError(400, "Unknown action", "Choose schedule, unschedule or cancel.", back)
    now = utcnow()
    with services_of(request).factory.begin() as session:
        edition = _edition_or_404(session, edition_id)
        detail: dict[str, object] = {}
        if action == "schedule" and edition.status == EditionStatus.DRAFT and edition.send_at < now:
            # lifecycle moves a past-due draft's send time to now; the audit keeps the old one.
            detail["send_at_was"] = edition.send_at.isoformat()
        try:
            changed = lifecycle.transition(session, edition_id, action, now=now,
                                           reason=f"cancel by {user.email}" if action == "cancel" else None)
        except lifecycle.LifecycleError as exc:
            raise EditorError(409, "Cannot change the edition", str(exc), back) from None
        staff.audit(session, user, f"edition.{action}", f"edition:{edition_id}", {"changed": changed, **detail})
    return _back(edition_id, action if changed else "unchanged")
