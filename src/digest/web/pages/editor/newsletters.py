"""Newsletter pages: the list (readers, schedule in words, next and last edition, state),
the create and edit forms (every field, each error at its field, the next five sends and a
sample subject shown as the editor types), and pause, resume, archive and restore.

The forms work without script; /static/newsletter-form.js asks /editor/newsletters/schedule
for the preview as fields change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select

from digest import actions
from digest.editions import (
    DEFAULT_SUBJECT,
    STATE_ACTIONS,
    NewsletterArchived,
    NewsletterChanges,
    NewsletterError,
    SlugTaken,
    check_cron,
    check_zone,
    get_newsletter,
    last_editions,
    list_newsletters,
    newsletter_state,
    next_editions,
    next_sends,
    render_subject,
    schedule_in_words,
    sends_in_words,
    upcoming_count,
)
from digest.errors import Invalid
from digest.observe import click_rates, newsletter_reach, readers_by_day
from digest.readers import subscriber_counts
from digest.store import Newsletter, Subscriber, SubscriberStatus, utcnow
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.forms import Form
from digest.mail import BrandError
from digest.web.pages.editor.brand import brand_context, read_brand_form
from digest.web.pages.editor.common import editor_form_page, editor_page, see_other

router = APIRouter(prefix="/editor")
TEXT_FIELDS = ("slug", "name", "sender_name", "cron", "timezone", "subject_template", "new_editions")
NUMBER_FIELDS = ("max_stories", "min_stories", "window_hours", "trigger_every_minutes", "trigger_hold_minutes")
STATE_NOTICES = {
    "pause": "Newsletter paused: it makes no editions, and its upcoming ones wait as drafts.",
    "resume": "Newsletter resumed: its schedule runs again from now.",
    "archive": "Newsletter archived: its upcoming editions were cancelled; its history stays.",
    "restore": "Newsletter restored. It is paused: resume it when it should send again.",
    "edited": "Newsletter saved. Its upcoming editions follow the changes.",
    "unchanged": "Nothing to change: it was already so.",
    "added": "Newsletter created. Its editions appear as their dates come near.",
    "already": "Nothing to change: it was already so.",
    "branded": "Brand saved. Its next messages and its archive pages use it.",
}


# ------------------------------------------------------------------ the list


@router.get("/newsletters")
def newsletters_page(request: Request, user: EditorUser, done: str = "") -> Response:
    now = utcnow()
    with services_of(request).factory() as session:
        counts = subscriber_counts(session)
        last, upcoming = last_editions(session), next_editions(session, now)
        rows = [{"newsletter": n, "state": newsletter_state(n), "subscribers": counts.get(n.id, 0),
                 "schedule": sends_in_words(n), "next": upcoming.get(n.id),
                 "last": last.get(n.id)} for n in list_newsletters(session)]
        # Archived ones last: they are history.
        rows.sort(key=lambda r: (r["state"] == "archived", r["newsletter"].name.lower()))
        return editor_page(request, "editor/newsletters.html", "newsletter",
                           {"rows": rows, "notice": STATE_NOTICES.get(done)})


# ------------------------------------------------------------------ create


def _active_readers(request: Request) -> int:
    with services_of(request).factory() as session:
        return session.scalar(select(func.count()).select_from(Subscriber)
                              .where(Subscriber.status == SubscriberStatus.ACTIVE)) or 0


def _form_page(request: Request, name: str, values: dict[str, Any], errors: dict[str, str] | None = None,
               status: int = 200, **extra: Any) -> Response:
    error = "Check the fields marked below." if errors else None
    return editor_form_page(request, name, "newsletter", values, error, status, errors=errors or {},
                            preview=_preview(values), **extra)


def _preview(values: dict[str, Any]) -> dict[str, Any]:
    """What the schedule and subject fields mean, for the page as first drawn (the script
    redraws it as they change)."""
    return schedule_preview(str(values.get("cron", "")), str(values.get("timezone", "")),
                            str(values.get("subject_template", "")), str(values.get("name", "")) or "Newsletter",
                            utcnow())


def schedule_preview(cron: str, zone: str, template: str, name: str, now: datetime) -> dict[str, Any]:
    """{words, next: [readable times], subject, errors: {field: message}}."""
    result: dict[str, Any] = {"words": "", "next": [], "subject": "", "errors": {}}
    if not cron.strip():  # no schedule: sent by its stories alone (or the save says a trigger is needed)
        cron = ""
        result["words"] = "No schedule: only when stories arrive (below)"
    for field, check, value in (("cron", check_cron, cron), ("timezone", check_zone, zone)):
        if field == "cron" and not cron:
            continue
        try:
            check(value)
        except Invalid as exc:
            result["errors"][field] = exc.message
    first = now
    if not result["errors"] and cron:
        sends = next_sends(cron, zone, now)
        result["words"] = schedule_in_words(cron, zone)
        result["next"] = [f"{t:%a} {t.day} {t:%b %Y, %H:%M} {t:%Z}" for t in sends]
        first = sends[0] if sends else now
    try:
        result["subject"] = render_subject(template, newsletter=name, when=first,
                                           zone=zone if "timezone" not in result["errors"] else "UTC")
    except Invalid as exc:
        result["errors"]["subject_template"] = exc.message
    return result


@router.get("/newsletters/schedule")
def schedule_json(request: Request, user: EditorUser, cron: str = "", timezone: str = "UTC",
                  subject_template: str = "", name: str = "") -> Response:
    """The live preview of the form's schedule and subject: never an error status, the
    errors are what it shows."""
    return JSONResponse(schedule_preview(cron[:200], timezone[:64], subject_template[:300],
                                         name[:120] or "Newsletter", utcnow()))


@router.get("/newsletters/new")
def new_newsletter(request: Request, user: EditorUser) -> Response:
    return _form_page(request, "editor/newsletter_new.html", {
        "slug": "", "name": "", "sender_name": "", "cron": "0 7 * * *",
        "timezone": services_of(request).settings.timezone, "topics": [], "max_stories": 5, "min_stories": 1,
        "window_hours": 48, "subject_template": DEFAULT_SUBJECT, "local_time": False, "new_editions": "scheduled",
        "subscribe_existing": False, "trigger_stories": "", "trigger_every_minutes": 60, "trigger_hold_minutes": 0},
        active_readers=_active_readers(request))


def _read_form(form: Form) -> tuple[dict[str, Any], dict[str, Any]]:
    """What was typed (to show again), and the numbers given as numbers (one that is not a
    whole number is passed on as typed, for the check to report beside the other fields)."""
    values: dict[str, Any] = {name: form.get(name).strip() if name != "subject_template" else form.get(name)
                              for name in TEXT_FIELDS}
    values["topics"] = form.get_all("topics")
    values["local_time"] = form.get("local_time") == "yes"
    values["utm_tags"] = form.get("utm_tags") == "yes"
    values["engagement_order"] = form.get("engagement_order") == "yes"
    values["click_history"] = form.get("click_history") == "yes"
    values["open_pixel"] = form.get("open_pixel") == "yes"
    numbers: dict[str, Any] = {}
    for name in NUMBER_FIELDS:
        raw = values[name] = form.get(name).strip()
        if raw:  # empty: the default (a new newsletter) or as it was (a change)
            numbers[name] = _number(raw)
    # Always given: empty (or 0) is "no story trigger".
    raw = values["trigger_stories"] = form.get("trigger_stories").strip()
    numbers["trigger_stories"] = _number(raw) if raw else None
    return values, numbers


def _number(raw: str) -> Any:
    return int(raw) if raw.lstrip("-").isdigit() and len(raw) <= 7 else raw


@router.post("/newsletters/new")
def add_newsletter(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    values, numbers = _read_form(form)
    values["subscribe_existing"] = form.get("subscribe_existing") == "yes"
    try:
        created = actions.newsletters.add_newsletter(
            services_of(request).deps(), actor(user, "web"), slug=values["slug"], name=values["name"],
            cron=values["cron"] or None, timezone=values["timezone"], topics=values["topics"] or None,
            subject_template=values["subject_template"], sender_name=values["sender_name"] or None,
            local_time=values["local_time"], new_editions=values["new_editions"] or "scheduled",
            subscribe_existing=values["subscribe_existing"], **numbers)
    except NewsletterError as exc:
        return _form_page(request, "editor/newsletter_new.html", values, exc.fields or {"slug": exc.message},
                          409 if isinstance(exc, SlugTaken) else 400, active_readers=_active_readers(request))
    return see_other(f"/editor/newsletters/{created['id']}?done=added")


# ------------------------------------------------------------------ edit, pause, archive


def _values_of(newsletter: Newsletter) -> dict[str, Any]:
    return {"slug": newsletter.slug, "name": newsletter.name, "sender_name": newsletter.sender_name or "",
            "cron": newsletter.cron or "", "timezone": newsletter.timezone, "topics": newsletter.topics or [],
            "max_stories": newsletter.max_stories, "min_stories": newsletter.min_stories,
            "window_hours": newsletter.window_hours, "subject_template": newsletter.subject_template,
            "local_time": newsletter.local_time, "new_editions": newsletter.new_editions.value,
            "trigger_stories": newsletter.trigger_stories or "",
            "trigger_every_minutes": newsletter.trigger_every_minutes,
            "trigger_hold_minutes": newsletter.trigger_hold_minutes, "utm_tags": newsletter.utm_tags,
            "engagement_order": newsletter.engagement_order,
            "click_history": newsletter.click_history, "open_pixel": newsletter.open_pixel}


def _edit_page(request: Request, ref: int, values: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, status: int = 200, done: str = "",
               brand: tuple[dict[str, str], dict[str, str]] | None = None) -> Response:
    """The newsletter's page; `brand`: the Brand section's typed values and their errors."""
    now = utcnow()
    with services_of(request).factory() as session:
        newsletter = get_newsletter(session, ref)
        context = {"newsletter": newsletter, "state": newsletter_state(newsletter),
                   "subscribers": subscriber_counts(session).get(newsletter.id, 0),
                   "next": next_editions(session, now).get(newsletter.id),
                   "last": last_editions(session).get(newsletter.id), "zone": newsletter.timezone,
                   "notice": STATE_NOTICES.get(done),
                   "reach": newsletter_reach(session, newsletter.id),
                   "click_rate_chart": click_rates(session, newsletter.id),
                   "readers_chart": readers_by_day(session, newsletter.id, now),
                   **brand_context(session, newsletter, *(brand or (None, None)))}
        return _form_page(request, "editor/newsletter_edit.html", values or _values_of(newsletter), errors,
                          status, **context)


@router.get("/newsletters/{newsletter_id}")
def edit_newsletter_page(request: Request, user: EditorUser, newsletter_id: int, done: str = "") -> Response:
    return _edit_page(request, newsletter_id, done=done)


@router.post("/newsletters/{newsletter_id}")
def save_newsletter(request: Request, user: EditorUser, newsletter_id: int, form: CheckedForm) -> Response:
    values, numbers = _read_form(form)
    with services_of(request).factory() as session:
        values["slug"] = get_newsletter(session, newsletter_id).slug  # not changed here: links and the archive use it
    changes = NewsletterChanges(
        name=values["name"], cron=values["cron"] or None, timezone=values["timezone"],
        subject_template=values["subject_template"], local_time=values["local_time"],
        utm_tags=values["utm_tags"], engagement_order=values["engagement_order"], click_history=values["click_history"],
        open_pixel=values["open_pixel"], new_editions=values["new_editions"] or None, sender_name=values["sender_name"] or None,
        topics=values["topics"] or None, **numbers)
    try:
        outcome = actions.newsletters.edit(services_of(request).deps(), actor(user, "web"), newsletter_id, changes)
    except NewsletterArchived:  # archived in another tab: the page says so, and offers Restore
        return see_other(f"/editor/newsletters/{newsletter_id}")
    except NewsletterError as exc:
        return _edit_page(request, newsletter_id, values, exc.fields or {"name": exc.message}, 400)
    return see_other(f"/editor/newsletters/{newsletter_id}?done={'edited' if outcome.changed else 'unchanged'}")


@router.get("/newsletters/{newsletter_id}/archive")
def archive_confirm(request: Request, user: EditorUser, newsletter_id: int) -> Response:
    """Archiving cancels editions: it is asked for twice, with what it will do."""
    now = utcnow()
    with services_of(request).factory() as session:
        newsletter = get_newsletter(session, newsletter_id)
        upcoming = upcoming_count(session, newsletter.id)
        return editor_page(request, "editor/newsletter_archive.html", "newsletter",
                           {"newsletter": newsletter, "upcoming": upcoming, "zone": newsletter.timezone,
                            "next": next_editions(session, now).get(newsletter.id)})


# Before /newsletters/{newsletter_id}/{action}, which would take "brand" for an action.
@router.post("/newsletters/{newsletter_id}/brand")
def save_brand(request: Request, user: EditorUser, newsletter_id: int, form: CheckedForm) -> Response:
    values = read_brand_form(form)
    try:
        outcome = actions.newsletters.brand(services_of(request).deps(), actor(user, "web"), newsletter_id, values)
    except NewsletterArchived:  # archived in another tab: the page says so, and offers Restore
        return see_other(f"/editor/newsletters/{newsletter_id}")
    except BrandError as exc:
        return _edit_page(request, newsletter_id, status=400, brand=(values, exc.fields))
    return see_other(f"/editor/newsletters/{newsletter_id}?done={'branded' if outcome.changed else 'unchanged'}")


@router.post("/newsletters/{newsletter_id}/{action}")
def newsletter_state_action(request: Request, user: EditorUser, newsletter_id: int, action: str,
                            form: CheckedForm) -> Response:
    if action not in STATE_ACTIONS:
        raise Invalid(f"unknown action {action!r}")
    outcome = actions.newsletters.set_state(services_of(request).deps(), actor(user, "web"), newsletter_id, action)
    return see_other(f"/editor/newsletters/{newsletter_id}?done={action if outcome.changed else 'already'}")
