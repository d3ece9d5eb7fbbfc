"""Editor pages for editions: create a one-off edition, then curate it: pin, leave out and
order stories, rewrite a headline or summary for this edition only, write the note, preview
it at desktop and phone width, send a test, schedule, unschedule or cancel.

Every change is a digest.actions call, as in the JSON API and the command line. An edition
that has started sending is frozen: changing it is a 409 page saying so (digest.web.errors).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from digest import actions
from digest.delivery import left_out
from digest.editions import EDITABLE, edition_picks, get_edition, lifecycle, parse_send_at, preview_edition
from digest.editions import edition_view as view_of
from digest.errors import Invalid, NotFound
from digest.mail import make_transport
from digest.observe import edition_counts
from digest.readers import normalise_email
from digest.store import EditionCuration, EditionStatus, Story, Subscriber, utcnow
from digest.stories import StoryFilter, search_stories
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.errors import EditorError
from digest.web.pages.editor.common import editor_form_page, editor_page, int_field, see_other

router = APIRouter(prefix="/editor")
CANDIDATES_SHOWN = 15
EDITOR_ACTIONS = ("schedule", "unschedule", "cancel")


# ------------------------------------------------------------------ editions: create


def _edition_form_page(request: Request, values: dict[str, Any], error: str | None = None,
                       status: int = 200) -> Response:
    return editor_form_page(request, "editor/edition_new.html", "edition", values, error, status)


@router.get("/editions/new")
def new_edition(request: Request, user: EditorUser) -> Response:
    settings = services_of(request).settings
    return _edition_form_page(request, {"subject": "", "send_at": "", "timezone": "UTC", "topics": [],
                                        "max_stories": settings.max_stories, "window_hours": settings.window_hours})


@router.post("/editions/new")
def add_edition(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    settings = services_of(request).settings
    values: dict[str, Any] = {name: form.get(name)
                              for name in ("subject", "send_at", "timezone", "max_stories", "window_hours")}
    values["topics"] = form.get_all("topics")
    try:
        edition = actions.editions.create_edition(
            services_of(request).deps(), actor(user, "web"), subject=values["subject"],
            send_at=parse_send_at(values["send_at"].strip() or None, values["timezone"].strip() or None, utcnow()),
            topics=",".join(values["topics"]) or None,
            max_stories=int_field(form, "max_stories", settings.max_stories, "Max stories"),
            window_hours=int_field(form, "window_hours", settings.window_hours, "Story window"), draft=True)
    except Invalid as exc:
        return _edition_form_page(request, values, str(exc), 400)
    return see_other(f"/editor/editions/{edition['id']}?done=edition-added")


# ------------------------------------------------------------------ editions: curate


@router.get("/editions/{edition_id}")
def edition_page(request: Request, user: EditorUser, edition_id: int, q: str = "", email: str = "",
                 done: str = "") -> Response:
    preview_error = None
    with services_of(request).factory() as session:
        edition = get_edition(session, edition_id)
        view = view_of(session, edition)
        shown = [s.id for s in view.stories]
        rows = {r.story_id: r for r in session.scalars(
            select(EditionCuration).where(EditionCuration.edition_id == edition_id))}
        excluded_ids = [sid for sid, r in rows.items() if r.action == "exclude"]
        excluded = list(session.scalars(select(Story).where(Story.id.in_(excluded_ids)).order_by(Story.title)))
        found, _ = search_stories(session, StoryFilter(
            q=q.strip()[:200] or None, status="published", limit=CANDIDATES_SHOWN + len(shown) + len(excluded_ids)))
        candidates = [s for s in found if s.id not in shown and s.id not in excluded_ids][:CANDIDATES_SHOWN]
        originals = {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(shown)))}
        hidden_pins = [sid for sid in edition_picks(session, edition_id)[0] if sid not in shown]
        by_id = {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(hidden_pins)))}
        overflow = [by_id[sid] for sid in hidden_pins if sid in by_id]
        counts = edition_counts(session, [edition_id])[0]
        left_out = None
        try:
            subject, body_html, body_text = preview_edition(session, edition_id, email.strip() or None)
            if email.strip() and edition.status in EDITABLE:
                left_out = _left_out(session, edition, email.strip())
        except (NotFound, Invalid) as exc:
            preview_error = str(exc)
            subject, body_html, body_text = preview_edition(session, edition_id, None)
        context = {
            "edition": edition, "view": view, "rows": rows, "originals": originals, "excluded": excluded,
            "candidates": candidates, "q": q, "email": email, "counts": counts, "overflow": overflow,
            "editable": edition.status in EDITABLE,
            "actions": [a for a in EDITOR_ACTIONS if edition.status in lifecycle.ALLOWED_FROM[a]],
            "preview": {"subject": subject, "html": body_html, "text": body_text, "error": preview_error,
                        "left_out": left_out},
            "status": edition.status.value,
            "overdue": edition.status == EditionStatus.DRAFT and edition.send_at < utcnow(),
        }
        return editor_page(request, "editor/edition.html", "", context, 404 if preview_error else 200, done=done)


def _left_out(session: Any, edition: Any, email: str) -> str | None:
    """Why the reader previewed as would not get this edition if it went out now (or at its
    send time, if later); None when they would."""
    _, key = normalise_email(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
    return left_out(session, edition, subscriber, max(utcnow(), edition.send_at)) if subscriber else None


def _back(edition_id: int, done: str, anchor: str = "") -> RedirectResponse:
    return see_other(f"/editor/editions/{edition_id}?done={done}{anchor}")


@router.post("/editions/{edition_id}/stories/{story_id}/{action}")
def curate_story(request: Request, user: EditorUser, edition_id: int, story_id: int, action: str,
                 form: CheckedForm) -> Response:
    """pin, exclude, clear (back to automatic), unpin, up and down."""
    if action not in actions.editions.CURATION_ACTIONS:
        raise EditorError(404, "Unknown action", f"There is no action {action!r}.", f"/editor/editions/{edition_id}")
    shows = actions.editions.pick(services_of(request).deps(), actor(user, "web"), edition_id, story_id, action)
    done = {"pin": "pinned", "exclude": "excluded", "clear": "cleared", "unpin": "unpinned"}.get(action, "moved")
    if action == "pin" and not shows:
        done = "pinned-hidden"
    return _back(edition_id, done, "#stories")


@router.post("/editions/{edition_id}/stories/{story_id}")
def override_story(request: Request, user: EditorUser, edition_id: int, story_id: int,
                   form: CheckedForm) -> Response:
    actions.editions.rewrite(services_of(request).deps(), actor(user, "web"), edition_id, story_id,
                             headline=form.get("headline"), summary=form.get("summary"))
    return _back(edition_id, "override", f"#story-{story_id}")


@router.post("/editions/{edition_id}/note")
def save_note(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    actions.editions.note(services_of(request).deps(), actor(user, "web"), edition_id, form.get("note"))
    return _back(edition_id, "note", "#note")


@router.post("/editions/{edition_id}/test")
def send_test(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    services = services_of(request)
    actions.editions.test_send(services.deps(), actor(user, "web"), edition_id, form.get("email").strip(),
                               make_transport(services.settings), form.get("as_email").strip() or None)
    return _back(edition_id, "test-sent", "#test")


@router.post("/editions/{edition_id}/status")
def change_status(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    action = form.get("action")
    back = f"/editor/editions/{edition_id}"
    if action not in EDITOR_ACTIONS:
        raise EditorError(400, "Unknown action", "Choose schedule, unschedule or cancel.", back)
    if action == "schedule" and form.get("anyway") != "yes":
        with services_of(request).factory() as session:
            get_edition(session, edition_id)
            [counts] = edition_counts(session, [edition_id])
        if not counts.audience and counts.status in ("draft", "scheduled"):
            raise EditorError(409, "This edition goes to nobody",
                              "No reader would get it now. Tick “Schedule it anyway” to schedule it regardless: "
                              "released to nobody, it ends skipped, never sent.", back)
    outcome = actions.editions.act(services_of(request).deps(), actor(user, "web"), edition_id, action)
    return _back(edition_id, action if outcome.changed else "unchanged")
