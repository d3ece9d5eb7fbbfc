"""What every editor page shares: the page frame with its notice, the create forms, whole
numbers from form fields, times in the page's zone, the redirect back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from digest.editions import get_edition
from digest.errors import Invalid
from digest.observe import edition_counts
from digest.web.deps import services_of, staff_page
from digest.web.forms import Form
from digest.zones import zone_choices

ZONES = zone_choices()  # the picker's list: UTC, then real zones by region

# What a redirect's ?done= says on the page it lands on; fixed text, never echoed input.
NOTICES = {
    "story-updated": "Story updated.",
    "story-added": "Story saved.",
    "story-retracted": "Story retracted: it leaves every edition not yet sent.",
    "newsletter-added": "Newsletter created. Its editions appear here as their dates come near.",
    "edition-added": "Draft edition created. Curate it below, then schedule it.",
    "pinned": "Story pinned to this edition.",
    "pinned-hidden": "Story pinned, but it does not show: the edition is full of pins, the story was in an "
                     "earlier edition, or it is published after the send time.",
    "excluded": "Story left out of this edition.",
    "cleared": "Story restored to the automatic choice.",
    "unpinned": "Story unpinned.",
    "moved": "Order saved.",
    "override": "Headline and summary saved for this edition.",
    "note": "Editor's note saved.",
    "duplicated": "A copy of that edition, as a draft: its stories, note and limits as they were. Check it, then schedule it.",
    "test-sent": "Test sent.",
    "schedule": "Edition scheduled: it goes out at its send time.",
    "schedule-now": "Edition scheduled: its time has come, so it is going out now.",
    "edited": "Edition saved.",
    "edited-now": "Edition saved: its new time has come, so it is going out now.",
    "unschedule": "Edition back to draft: it will not go out until scheduled again.",
    "cancel": "Edition cancelled.",
    "unchanged": "Nothing to change: it was already so.",
    "token-revoked": "Token revoked.",
    "token-unknown": "That token was already revoked.",
    "password-changed": "Password changed. Other browsers signed in as you were signed out.",
}


def _readable(value: datetime) -> str:
    return f"{value:%a} {value.day} {value:%b %Y, %H:%M} {value:%Z}"


@pass_context
def when(context: Context, value: datetime | None, zone: str | None = None) -> str:
    """A template filter: a time as an editor reads it, in one zone named after it (`zone`;
    else the page's `zone`: an edition's newsletter's; else DIGEST_TIMEZONE), in a <time>
    element that carries the instant and shows it in UTC on hover."""
    if value is None:
        return "—"
    name = zone or context.get("zone") or context.get("site_zone") or "UTC"
    utc = value.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        f"{utc:%Y-%m-%dT%H:%M:%SZ}", _readable(utc), _readable(value.astimezone(ZoneInfo(name))))


def local_input(value: datetime, zone: str) -> str:
    """A time as a datetime-local field shows it: to the minute, in `zone`."""
    return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%dT%H:%M}"


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def editor_page(request: Request, name: str, active: str, context: dict[str, Any], status: int = 200,
                done: str | None = None) -> Response:
    return staff_page(request, name, {"active": active, "notice": NOTICES.get(done or ""), "error": None,
                                      **context}, status)


def editor_form_page(request: Request, name: str, active: str, values: dict[str, Any], error: str | None,
                     status: int, **extra: Any) -> Response:
    """A create form (newsletter, edition) with what was entered, the error if any, and the
    topics and time zones to choose from."""
    return editor_page(request, name, active, {
        "values": values, "topics": services_of(request).settings.topic_list, "zones": ZONES,
        "error": error, **extra}, status)


def int_field(form: Form, name: str, default: int, label: str) -> int:
    raw = form.get(name).strip()
    if not raw:
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 6:
        raise Invalid(f"{label} must be a whole number")
    return int(raw)


def cancel_question(request: Request, edition_id: int, action_url: str, back: str,
                    fields: dict[str, str]) -> Response:
    """Cancelling cannot be undone: the page that asks first, naming the edition and who it
    would still reach. Shared with /ops."""
    with services_of(request).factory() as session:
        edition = get_edition(session, edition_id)
        [counts] = edition_counts(session, [edition_id])
        return editor_page(request, "editor/edition_cancel.html", "", {
            "edition": edition, "counts": counts, "action_url": action_url, "back": back, "fields": fields})
