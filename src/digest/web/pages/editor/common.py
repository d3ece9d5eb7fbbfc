"""What every editor page shares: the page frame with its notice, the create forms, whole
numbers from form fields, the redirect back."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from digest.errors import Invalid
from digest.web.deps import services_of, staff_page
from digest.web.forms import Form

ZONES = sorted(available_timezones())

# What a redirect's ?done= says on the page it lands on; fixed text, never echoed input.
NOTICES = {
    "story-updated": "Story updated.",
    "story-added": "Story saved.",
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
    "test-sent": "Test sent.",
    "schedule": "Edition scheduled: it goes out at its send time.",
    "unschedule": "Edition back to draft: it will not go out until scheduled again.",
    "cancel": "Edition cancelled.",
    "unchanged": "Nothing to change: it was already so.",
    "token-revoked": "Token revoked.",
    "token-unknown": "That token was already revoked.",
    "password-changed": "Password changed. Other browsers signed in as you were signed out.",
}


def when(value: datetime | None, zone: str = "UTC") -> str:
    """A template filter: a time in `zone`, as an editor reads it."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local:%Z}"


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
