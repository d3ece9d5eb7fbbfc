"""Editor pages for editions: create a one-off edition (for every active reader or one
newsletter's), then curate it: pin, leave out and order stories, rewrite a headline or
summary for this edition only, write the note, preview it at desktop and phone width, send
a test, change its subject, send time and limits, schedule, unschedule or cancel.

Every change is a digest.actions call, as in the JSON API and the command line. An edition
that has started sending is frozen: changing it is a 409 page saying so (digest.web.errors).
Times show in the edition's zone: its newsletter's, else DIGEST_TIMEZONE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from digest import actions
from digest.clicks import edition_stats, stats_csv
from digest.delivery import left_out
from digest.editions import (
    EDITABLE,
    EditionChanges,
    ab,
    EditionFrozen,
    InvalidEdition,
    NewsletterNotFound,
    clip_warning,
    edition_picks,
    explain_order,
    get_edition,
    lifecycle,
    list_newsletters,
    parse_send_at,
    preview_edition,
)
from digest.editions import edition_view as view_of
from digest.errors import Invalid, NotFound
from digest.mail import SendError, make_transport
from digest.observe import edition_counts, edition_deliveries, edition_health, hour_clicks_chart, story_clicks_chart
from digest.readers import normalise_email, subscriber_counts
from digest.store import Edition, EditionCuration, EditionStatus, Story, Subscriber, utcnow
from digest.stories import StoryFilter, search_stories
from digest.web.deps import CheckedForm, EditorUser, actor, services_of, staff_page
from digest.web.errors import EditorError
from digest.web.forms import Form
from digest.web.pages.editor.common import (
    NOTICES,
    cancel_question,
    editor_form_page,
    editor_page,
    int_field,
    local_input,
    see_other,
)

router = APIRouter(prefix="/editor")
CANDIDATES_SHOWN = 15
EDITOR_ACTIONS = ("schedule", "unschedule", "cancel")
# Which section of the edition page says what an action did (the one the redirect lands on).
NOTICE_SECTIONS = {"note": "note", "test-sent": "test", "override": "story", "pinned": "stories",
                   "pinned-hidden": "stories", "excluded": "stories", "cleared": "stories", "unpinned": "stories",
                   "moved": "stories"}


# ------------------------------------------------------------------ editions: create

# Form fields by the input an InvalidEdition names (its `fields`).
FORM_FIELDS = {"tz": "timezone", "newsletter": "newsletter_id"}


def _zone_of(request: Request, edition: Edition) -> str:
    """The zone an edition's times show in: its newsletter's, else the site's."""
    return edition.newsletter.timezone if edition.newsletter else services_of(request).settings.timezone


def _newsletters(request: Request) -> list[dict[str, Any]]:
    """What the newsletter picker offers: every newsletter not archived, with its active readers."""
    with services_of(request).factory() as session:
        counts = subscriber_counts(session)
        return [{"id": n.id, "name": n.name, "readers": counts.get(n.id, 0)} for n in list_newsletters(session)
                if n.archived_at is None]


def _field_errors(exc: InvalidEdition) -> dict[str, str]:
    return {FORM_FIELDS.get(name, name): message for name, message in exc.fields.items()}


def _newsletter_field(form: Form, errors: dict[str, str]) -> int | None:
    raw = form.get("newsletter_id").strip()
    if raw and not (raw.isdigit() and len(raw) <= 18):
        errors["newsletter_id"] = "Choose a newsletter from the list"
        return None
    return int(raw) if raw else None


def _edition_form_page(request: Request, values: dict[str, Any], error: str | None = None,
                       status: int = 200, errors: dict[str, str] | None = None) -> Response:
    return editor_form_page(request, "editor/edition_new.html", "edition", values, error, status,
                            newsletters=_newsletters(request), errors=errors or {})


@router.get("/editions/new")
def new_edition(request: Request, user: EditorUser) -> Response:
    settings = services_of(request).settings
    return _edition_form_page(request, {"subject": "", "send_at": "", "timezone": settings.timezone, "topics": [],
                                        "max_stories": settings.max_stories, "window_hours": settings.window_hours,
                                        "newsletter_id": "", "ab_subject": "",
                                        "ab_share": ab.AB_SHARE_DEFAULT_PERCENT,
                                        "ab_wait": ab.AB_WAIT_DEFAULT_MINUTES})


@router.post("/editions/new")
def add_edition(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    settings = services_of(request).settings
    values: dict[str, Any] = {name: form.get(name) for name in
                              ("subject", "send_at", "timezone", "max_stories", "window_hours", "newsletter_id",
                               *AB_FIELDS)}
    values["topics"] = form.get_all("topics")
    errors: dict[str, str] = {}
    newsletter = _newsletter_field(form, errors)
    if errors:
        return _edition_form_page(request, values, errors["newsletter_id"], 400, errors)
    try:
        edition = actions.editions.create_edition(
            services_of(request).deps(), actor(user, "web"), subject=values["subject"],
            send_at=parse_send_at(values["send_at"].strip() or None, values["timezone"].strip() or None, utcnow()),
            topics=",".join(values["topics"]) or None,
            max_stories=int_field(form, "max_stories", settings.max_stories, "Max stories"),
            window_hours=int_field(form, "window_hours", settings.window_hours, "Story window"), draft=True,
            newsletter=newsletter, **_ab_fields(form))
    except NewsletterNotFound as exc:
        return _edition_form_page(request, values, str(exc), 404, {"newsletter_id": str(exc)})
    except InvalidEdition as exc:
        return _edition_form_page(request, values, str(exc), 400, _field_errors(exc))
    except Invalid as exc:
        return _edition_form_page(request, values, str(exc), 400)
    return see_other(f"/editor/editions/{edition['id']}?done=edition-added")


AB_FIELDS = ("ab_subject", "ab_share", "ab_wait")


def _ab_fields(form: Any) -> dict[str, Any]:
    """The subject test's fields as the action takes them: no second subject, no test (the
    share and wait the form always shows then mean nothing)."""
    alternative = form.get("ab_subject").strip()
    if not alternative:
        return {"ab_subject": None}
    return {"ab_subject": alternative,
            "ab_share": _ab_number(form, "ab_share", ab.AB_SHARE_DEFAULT_PERCENT, "Readers in the test"),
            "ab_wait": _ab_number(form, "ab_wait", ab.AB_WAIT_DEFAULT_MINUTES, "Wait before deciding")}


def _ab_number(form: Any, name: str, default: int, label: str) -> int:
    try:
        return int_field(form, name, default, label)
    except Invalid as exc:
        exc.field = name  # type: ignore[attr-defined]
        raise


# ------------------------------------------------------------------ editions: edit


def _editable(session: Any, edition_id: int) -> Edition:
    edition = get_edition(session, edition_id)
    if edition.status not in EDITABLE:
        raise EditionFrozen(f"Edition {edition_id} is {edition.status.value}: it can no longer be changed.")
    return edition


def _edit_page(request: Request, edition: Edition, values: dict[str, Any], errors: dict[str, str] | None = None,
               status: int = 200) -> Response:
    error = "Check the fields marked below." if errors else None
    return editor_form_page(request, "editor/edition_edit.html", "", values, error, status,
                            edition=edition, zone=_zone_of(request, edition), errors=errors or {},
                            newsletters=_newsletters(request) if edition.occurrence_at is None else [])


@router.get("/editions/{edition_id}/edit")
def edit_page(request: Request, user: EditorUser, edition_id: int) -> Response:
    with services_of(request).factory() as session:
        edition = _editable(session, edition_id)
        zone = _zone_of(request, edition)
        test = ab.get_ab(session, edition_id)
        values = {"subject": edition.subject, "send_at": local_input(edition.send_at, zone), "timezone": zone,
                  "max_stories": edition.max_stories, "window_hours": edition.window_hours,
                  "newsletter_id": str(edition.newsletter_id or ""),
                  "ab_subject": test.alternative if test else "",
                  "ab_share": test.share if test else ab.AB_SHARE_DEFAULT_PERCENT,
                  "ab_wait": test.wait_minutes if test else ab.AB_WAIT_DEFAULT_MINUTES}
        return _edit_page(request, edition, values)


@router.post("/editions/{edition_id}/edit")
def save_edition(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    """Only what the editor changed is sent on: a send time left as shown (to the minute, in
    the zone shown) stays exactly what it was."""
    values: dict[str, Any] = {name: form.get(name) for name in
                              ("subject", "send_at", "timezone", "max_stories", "window_hours", "newsletter_id",
                               *AB_FIELDS)}
    with services_of(request).factory() as session:
        edition = _editable(session, edition_id)
    errors: dict[str, str] = {}
    zone, typed, now = values["timezone"].strip() or _zone_of(request, edition), values["send_at"].strip(), utcnow()
    send_at = None
    try:
        parse_send_at(None, zone, now)  # the zone on its own first: the comparison below reads times in it
        if not typed:
            errors["send_at"] = "Give a send time (a time that has passed: as soon as possible)"
        elif typed != local_input(edition.send_at, zone):
            send_at = parse_send_at(typed, zone, now)
    except InvalidEdition as exc:
        errors.update(_field_errors(exc))
    numbers: dict[str, Any] = {}
    for name, label in (("max_stories", "Most stories"), ("window_hours", "Story window")):
        try:
            numbers[name] = int_field(form, name, getattr(edition, name), label)
        except Invalid as exc:
            errors[name] = str(exc)
    if edition.occurrence_at is None and "newsletter_id" in form:  # a newsletter's own edition keeps it
        numbers["newsletter"] = _newsletter_field(form, errors)
    if "ab_subject" in form:
        try:
            numbers.update(_ab_fields(form))
        except Invalid as exc:
            errors[getattr(exc, "field", "ab_share")] = str(exc)
    if errors:
        return _edit_page(request, edition, values, errors, 400)
    changes = EditionChanges(subject=values["subject"], send_at=send_at, **numbers)
    try:
        outcome = actions.editions.edit(services_of(request).deps(), actor(user, "web"), edition_id, changes)
    except NewsletterNotFound as exc:
        return _edit_page(request, edition, values, {"newsletter_id": str(exc)}, 404)
    except InvalidEdition as exc:
        return _edit_page(request, edition, values, _field_errors(exc), 400)
    done = "edited-now" if outcome.data["sending_now"] else "edited" if outcome.changed else "unchanged"
    return _back(edition_id, done)


# ------------------------------------------------------------------ editions: curate


@router.get("/editions/{edition_id}")
def edition_page(request: Request, user: EditorUser, edition_id: int, q: str = "", email: str = "",
                 done: str = "", test_to: str = "", test_as: str = "", story: int = 0) -> Response:
    # The test form keeps the addresses it was sent with (our redirect's own parameters,
    # shown only as the fields' values); `story`: the story whose headline was just saved.
    return _edition_page(request, edition_id, q=q, email=email, done=done, story=story,
                         forms={"test": {"email": test_to[:320], "as_email": test_as[:320]}})


def _edition_page(request: Request, edition_id: int, *, q: str = "", email: str = "", done: str = "",
                  story: int = 0, forms: dict[str, dict[str, str]] | None = None, errors: dict[str, str] | None = None,
                  status: int = 200) -> Response:
    """The edition page; after a refused test, with `forms` as typed, `errors` by field
    (test_email, test_as) and `status` 4xx/5xx."""
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
        clicks = edition_stats(session, edition_id) if counts.planned else None
        click_charts = None
        if clicks:
            click_charts = (story_clicks_chart([(s.title, s.clicks) for s in clicks.stories]),
                            hour_clicks_chart([(datetime.fromisoformat(h.hour), h.clicks, h.machine_clicks)
                                               for h in clicks.hours], edition.started_at))
        left_out = None
        try:
            subject, body_html, body_text = preview_edition(session, edition_id, email.strip() or None)
            if email.strip() and edition.status in EDITABLE:
                left_out = _left_out(session, edition, email.strip())
        except (NotFound, Invalid) as exc:
            preview_error = str(exc)
            subject, body_html, body_text = preview_edition(session, edition_id, None)
        context = {
            "edition": edition, "view": view, "zone": _zone_of(request, edition), "rows": rows, "originals": originals, "excluded": excluded,
            "candidates": candidates, "q": q, "email": email, "counts": counts, "overflow": overflow,
            "ab_test": ab.get_ab(session, edition_id),
            "clicks": clicks, "click_charts": click_charts, "order_note": explain_order(session, edition),
            "most_clicks": max([s.clicks for s in clicks.stories], default=0) if clicks else 0,
            "editable": edition.status in EDITABLE,
            "actions": [a for a in EDITOR_ACTIONS if edition.status in lifecycle.ALLOWED_FROM[a]],
            "preview": {"subject": subject, "html": body_html, "text": body_text, "error": preview_error,
                        "left_out": left_out, "clip_warning": clip_warning(body_html)},
            "status": edition.status.value,
            "overdue": edition.status == EditionStatus.DRAFT and edition.send_at < utcnow(),
            "delivery": delivery_context(session, edition) if edition.started_at else None,
            # A copy is offered for an edition that ended without reaching anyone.
            "can_duplicate": (edition.status in (EditionStatus.CANCELLED, EditionStatus.SKIPPED)
                              and not counts.sent and not counts.bounced),
            "forms": forms or {}, "errors": errors or {},
        }
        if section := NOTICE_SECTIONS.get(done):
            # Said beside the control that did it, where the page lands (#note, #test, #stories, #story-N),
            # not at the top, out of view.
            context.update(notice=None, local_notice=NOTICES.get(done), notice_at=section, notice_story=story)
        return editor_page(request, "editor/edition.html", "", context,
                           404 if preview_error and status == 200 else status, done=done)


@router.get("/editions/{edition_id}/stats.csv")
def edition_stats_csv(request: Request, user: EditorUser, edition_id: int) -> Response:
    """The edition's clicks per story as CSV (the same as /api/v1/editions/{id}/stats.csv)."""
    with services_of(request).factory() as session:
        body = stats_csv(edition_stats(session, edition_id))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="edition-{edition_id}-stats.csv"'})


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
    return see_other(f"/editor/editions/{edition_id}?done=override&story={story_id}#story-{story_id}")


@router.post("/editions/{edition_id}/note")
def save_note(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    actions.editions.note(services_of(request).deps(), actor(user, "web"), edition_id, form.get("note"))
    return _back(edition_id, "note", "#note")


@router.post("/editions/{edition_id}/test")
def send_test(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    """One [TEST] copy. A bad address or a mail server's refusal comes back as the page with
    the addresses as typed and the reason at the field (the form posts to #test, so the
    browser lands there); a sent test lands at #test with the addresses kept."""
    services = services_of(request)
    typed = {"email": form.get("email").strip()[:320], "as_email": form.get("as_email").strip()[:320]}
    errors: dict[str, str] = {}
    status = 400
    for name, field in (("email", "test_email"), ("as_email", "test_as")):
        if typed[name] or name == "email":
            try:
                normalise_email(typed[name])
            except Invalid as exc:
                errors[field] = str(exc) if typed[name] else "Give an address to send the test to"
    if not errors:
        try:
            actions.editions.test_send(services.deps(), actor(user, "web"), edition_id, typed["email"],
                                       make_transport(services.settings), typed["as_email"] or None)
        except SendError as exc:
            errors["test_email"] = f"The test was not sent: the mail server did not take it ({exc})"
            status = 502
        except Invalid as exc:
            errors["test_email"] = str(exc)
    if errors:
        return _edition_page(request, edition_id, forms={"test": typed}, errors=errors, status=status)
    query = urlencode({"done": "test-sent", "test_to": typed["email"], "test_as": typed["as_email"]})
    return see_other(f"/editor/editions/{edition_id}?{query}#test")


@router.post("/editions/{edition_id}/duplicate")
def duplicate_edition(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    """One click from a cancelled (or skipped) edition to a new draft like it."""
    copy = actions.editions.duplicate(services_of(request).deps(), actor(user, "web"), edition_id)
    return see_other(f"/editor/editions/{copy['id']}?done=duplicated")


# While an edition sends, its page follows it: htmx asks for this fragment every few seconds
# and stops (HTTP 286, htmx's "stop polling") once it has finished.
DELIVERY_POLL_SECONDS = 3
LIVE_STATUSES = (EditionStatus.SENDING, EditionStatus.PAUSED)


def delivery_context(session: Any, edition: Edition) -> dict[str, Any]:
    """What the edition page's Delivery section shows: progress, figures, ETA, the chart."""
    now = utcnow()
    [health] = edition_health(session, [edition], now)
    return {"edition": edition, "health": health, "live": edition.status in LIVE_STATUSES,
            "chart": edition_deliveries(session, edition, now), "poll_seconds": DELIVERY_POLL_SECONDS}


@router.get("/editions/{edition_id}/delivery")
def delivery_fragment(request: Request, user: EditorUser, edition_id: int) -> Response:
    with services_of(request).factory() as session:
        context = delivery_context(session, get_edition(session, edition_id))
    response = staff_page(request, "editor/_delivery.html",
                          {**context, "deliveries_chart": context["chart"], "fragment": True})
    if not context["live"]:
        response.status_code = 286
    return response


@router.get("/editions/{edition_id}/cancel")
def cancel_page(request: Request, user: EditorUser, edition_id: int) -> Response:
    return cancel_question(request, edition_id, f"/editor/editions/{edition_id}/status",
                           f"/editor/editions/{edition_id}", {"action": "cancel"})


@router.post("/editions/{edition_id}/status")
def change_status(request: Request, user: EditorUser, edition_id: int, form: CheckedForm) -> Response:
    action = form.get("action")
    back = f"/editor/editions/{edition_id}"
    if action not in EDITOR_ACTIONS:
        raise EditorError(400, "Unknown action", "Choose schedule, unschedule or cancel.", back)
    if action == "cancel" and form.get("confirm") != "yes":  # one stray click never cancels
        return see_other(f"/editor/editions/{edition_id}/cancel")
    if action == "schedule" and form.get("anyway") != "yes":
        with services_of(request).factory() as session:
            get_edition(session, edition_id)
            [counts] = edition_counts(session, [edition_id])
        if not counts.audience and counts.status in ("draft", "scheduled"):
            raise EditorError(409, "This edition goes to nobody",
                              "No reader would get it now. Tick “Schedule it anyway” to schedule it regardless: "
                              "released to nobody, it ends skipped, never sent.", back)
    outcome = actions.editions.act(services_of(request).deps(), actor(user, "web"), edition_id, action)
    if outcome.data.get("sending_now"):
        return _back(edition_id, "schedule-now")
    return _back(edition_id, action if outcome.changed else "unchanged")
