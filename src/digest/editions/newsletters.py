"""Newsletters: recurring digests with their own schedule, audience and format.

The only writer of the `newsletters` table (beat's progress mark, `scheduled_until`, is kept
by `schedules`; the `brand_*` columns by `branding`). A newsletter is created, changed,
paused and resumed, archived and restored here; each change reaches the editions it has
already made and that have not started, so what an editor sets is what the next edition
does:

- a newsletter has a schedule (cron), a story trigger (`digest.editions.triggers`: an
  edition when N new stories have arrived), or both; taking the cron away cancels the
  upcoming cron editions;
- a new schedule cancels the upcoming editions whose occurrence it no longer has, re-times
  the others (local-time delivery on or off) and makes the new ones at once;
- a new subject template, name, topic list, story limit or window reaches each upcoming
  edition where the edition still has the newsletter's old value (an editor's own subject
  for one edition is kept);
- pausing holds the upcoming scheduled editions back as drafts; resuming schedules them
  again (those whose time passed while paused stay drafts) and never makes the editions
  of the occurrences it slept through;
- archiving pauses for good: the editions that have not started are cancelled; history,
  subscriptions and the archive's pages stay. Restoring brings it back paused.

Every check is made before anything is written, and every bad field is reported at once
(`NewsletterError.fields`, keyed by the JSON names).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from digest.editions import lifecycle
from digest.editions.create import MAX_STORIES_LIMIT, WINDOW_MAX_HOURS
from digest.editions.edit import KEEP, Keep  # KEEP: as it is, where None means "none" (every topic)
from digest.editions.schedules import (
    check_cron,
    check_subject_template,
    check_zone,
    local_delivery,
    occurrences,
    render_subject,
    schedule_newsletter,
)
from digest.editions.triggers import TRIGGER_EVERY_MAX_MINUTES, TRIGGER_HOLD_MAX_MINUTES, TRIGGER_STORIES_MAX
from digest.errors import Conflict, Invalid, NotFound
from digest.mail import HeaderInjection, check_header_value
from digest.readers import clean_topics
from digest.store import Edition, EditionStatus, NewEditions, Newsletter

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_SUBJECT = "{{ newsletter }}: {{ weekday }} {{ date }}"
STATE_ACTIONS = ("pause", "resume", "archive", "restore")
NONE_MEANS_NONE = ("sender_name", "topics", "cron", "trigger_stories")  # None: none, not "as it is"
NO_SENDS = "give a schedule (cron) or a story trigger: a newsletter with neither never sends"


class NewsletterError(Invalid):
    """A slug, name, schedule or limit that cannot make a newsletter. `fields` maps each
    bad input (JSON names: `cron`, `timezone`, `min_stories` …) to what is wrong with it."""

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.fields = dict(fields or {})


class SlugTaken(Conflict, NewsletterError):
    """A conflict first (409): the input is fine, the slug is taken."""


class NewsletterArchived(Conflict):
    """An archived newsletter is not changed or resumed until it is restored."""

    default_code = "newsletter_archived"


@dataclass(frozen=True)
class NewsletterChanges:
    """What to change; a field left None (KEEP where None has a meaning) stays as it is."""

    name: str | None = None
    sender_name: str | None | Keep = KEEP
    cron: str | None | Keep = KEEP  # None: no schedule (the story trigger alone)
    timezone: str | None = None
    topics: str | Iterable[str] | None | Keep = KEEP
    max_stories: int | None = None
    min_stories: int | None = None
    window_hours: int | None = None
    subject_template: str | None = None
    local_time: bool | None = None
    new_editions: str | None = None
    utm_tags: bool | None = None  # click redirects add utm_* parameters (digest.clicks)
    engagement_order: bool | None = None  # unpinned stories by their topics' clicks (editions.engagement)
    click_history: bool | None = None  # consenting readers' clicks are remembered (docs/clicks.md)
    open_pixel: bool | None = None  # the HTML carries a 1x1 open-counting image (docs/clicks.md)
    trigger_stories: int | None | Keep = KEEP  # None (or 0): no story trigger
    trigger_every_minutes: int | None = None
    trigger_hold_minutes: int | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None and getattr(self, f.name) is not KEEP
                or (getattr(self, f.name) is None and f.name in NONE_MEANS_NONE)}


def _one_line(value: str, label: str, limit: int = 120) -> str:
    try:
        check_header_value(value, label)  # both become headers (List-Id, From)
    except HeaderInjection as exc:
        raise ValueError(str(exc)) from None
    text = " ".join(value.split())
    if len(text) > limit:
        raise ValueError(f"{label} must be at most {limit} characters")
    return text


def _name(value: str) -> str:
    text = _one_line(value, "name")
    if not text:
        raise ValueError("name must be 1 to 120 characters")
    return text


def _sender(value: str | None) -> str | None:
    return _one_line(value, "sender name") or None if value else None


def _whole(low: int, high: int, label: str) -> Any:
    def check(value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{label} must be a whole number from {low} to {high}")
        return value
    return check


def _cron(value: str | None) -> str | None:
    return check_cron(value) if value and value.strip() else None


def _trigger(value: int | None) -> int | None:
    return _whole(0, TRIGGER_STORIES_MAX, "the number of new stories")(value) or None if value is not None else None


def _new_editions(value: str) -> NewEditions:
    try:
        return NewEditions(value)
    except ValueError:
        raise ValueError("new editions must be 'scheduled' or 'draft'") from None


def _clean(values: dict[str, Any], allowed_topics: list[str], limits: tuple[int, int] = (1, MAX_STORIES_LIMIT),
           errors: dict[str, str] | None = None, sends: tuple[str | None, int | None] = (None, None),
           ) -> dict[str, Any]:
    """Check every field given, fewest ≤ most stories (`limits`: the values a field not
    given keeps) and that a cron or a story trigger remains (`sends`: the cron and trigger
    a field not given keeps); the clean values, or NewsletterError with each bad one
    (`errors` found before are reported with them)."""
    checks: dict[str, Any] = {
        "name": _name, "sender_name": _sender, "cron": _cron, "timezone": lambda z: check_zone(z).key,
        "topics": lambda t: (clean_topics(t, allowed_topics) or None) if t else None,
        "max_stories": _whole(1, MAX_STORIES_LIMIT, "most stories"),
        "min_stories": _whole(1, MAX_STORIES_LIMIT, "fewest stories"),
        "window_hours": _whole(1, WINDOW_MAX_HOURS, "the story window (hours)"),
        "subject_template": check_subject_template, "local_time": bool, "new_editions": _new_editions,
        "utm_tags": bool, "engagement_order": bool, "click_history": bool, "open_pixel": bool,
        "trigger_stories": _trigger,
        "trigger_every_minutes": _whole(1, TRIGGER_EVERY_MAX_MINUTES, "minutes between alerts"),
        "trigger_hold_minutes": _whole(0, TRIGGER_HOLD_MAX_MINUTES, "the hold (minutes)"),
    }
    clean: dict[str, Any] = {}
    errors = dict(errors or {})
    for name, value in values.items():
        try:
            clean[name] = checks[name](value)
        except (Invalid, ValueError) as exc:
            errors[name] = exc.message if isinstance(exc, Invalid) else str(exc)
    if "min_stories" not in errors and "max_stories" not in errors and (
            clean.get("min_stories", limits[0]) > clean.get("max_stories", limits[1])):
        errors["min_stories"] = "fewest stories must not be more than most stories"
    if "cron" not in errors and "trigger_stories" not in errors and (
            clean.get("cron", sends[0]) if "cron" in values else sends[0]) is None and (
            clean.get("trigger_stories", sends[1]) if "trigger_stories" in values else sends[1]) is None:
        errors["cron"] = NO_SENDS
    if errors:
        raise NewsletterError("; ".join(errors.values()), fields=errors)
    return clean


def create_newsletter(
    session: Session,
    *,
    slug: str,
    name: str,
    cron: str | None,
    timezone: str,
    allowed_topics: list[str],
    topics: str | Iterable[str] | None = None,
    max_stories: int = 5,
    min_stories: int = 1,
    window_hours: int = 48,
    subject_template: str = DEFAULT_SUBJECT,
    sender_name: str | None = None,
    local_time: bool = False,
    new_editions: str = NewEditions.SCHEDULED,
    trigger_stories: int | None = None,
    trigger_every_minutes: int = 60,
    trigger_hold_minutes: int = 0,
) -> Newsletter:
    errors: dict[str, str] = {}
    if not SLUG_RE.match(slug):
        errors["slug"] = "slug must be lowercase letters, digits and dashes, e.g. morning-briefing"
    clean = _clean({"name": name, "sender_name": sender_name, "cron": cron, "timezone": timezone,
                    "topics": topics, "max_stories": max_stories, "min_stories": min_stories,
                    "window_hours": window_hours, "subject_template": subject_template,
                    "local_time": local_time, "new_editions": new_editions, "trigger_stories": trigger_stories,
                    "trigger_every_minutes": trigger_every_minutes, "trigger_hold_minutes": trigger_hold_minutes},
                   allowed_topics, errors=errors)
    if session.scalar(select(Newsletter.id).where(Newsletter.slug == slug)) is not None:
        raise SlugTaken(f"a newsletter with slug {slug!r} exists", fields={"slug": "this short name is taken"})
    newsletter = Newsletter(slug=slug, active=True, **clean)
    session.add(newsletter)
    session.flush()
    return newsletter


def edit_newsletter(session: Session, ref: str | int, changes: NewsletterChanges, allowed_topics: list[str],
                    now: datetime) -> dict[str, tuple[Any, Any]]:
    """Apply `changes` (each field checked first, the bad ones reported together) and carry
    them to the upcoming editions (see the module's docstring). Returns each field changed
    as (was, now), JSON-able; NotFound, NewsletterArchived."""
    newsletter = get_newsletter(session, ref)
    if newsletter.archived_at is not None:
        raise NewsletterArchived(f"{newsletter.name} is archived: restore it to change it")
    clean = _clean(changes.given(), allowed_topics, (newsletter.min_stories, newsletter.max_stories),
                   sends=(newsletter.cron, newsletter.trigger_stories))
    old = {name: getattr(newsletter, name) for name in clean}
    changed = {name: (old[name], value) for name, value in clean.items() if old[name] != value}
    if not changed:
        return {}
    before = _snapshot(newsletter)
    for name, (_, value) in changed.items():
        setattr(newsletter, name, value)
    session.flush()
    _carry_to_upcoming(session, newsletter, before, now)
    return {name: (_json(was), _json(value)) for name, (was, value) in changed.items()}


@dataclass(frozen=True)
class _Before:
    """A newsletter's values before a change, to tell which upcoming editions still hold them."""

    name: str
    cron: str | None
    timezone: str
    topics: list[str] | None
    max_stories: int
    window_hours: int
    subject_template: str
    local_time: bool


def _snapshot(newsletter: Newsletter) -> _Before:
    return _Before(**{f.name: getattr(newsletter, f.name) for f in fields(_Before)})


def _carry_to_upcoming(session: Session, newsletter: Newsletter, before: _Before, now: datetime) -> None:
    # Its cron editions still to come, and a story-triggered one in its hold (which keeps
    # its send time: a new schedule does not move or cancel it).
    upcoming = list(session.scalars(select(Edition).where(
        Edition.newsletter_id == newsletter.id, Edition.status.in_(lifecycle.EDITABLE), or_(
            Edition.story_triggered.is_(False) & Edition.occurrence_at.is_not(None) & (Edition.occurrence_at > now),
            Edition.story_triggered.is_(True) & (Edition.send_at > now)))
        .execution_options(populate_existing=True)))  # as stored now
    retimed = (before.cron, before.timezone, before.local_time) != (
        newsletter.cron, newsletter.timezone, newsletter.local_time)
    if retimed:
        scheduled = [e for e in upcoming if not e.story_triggered]
        horizon = max([e.occurrence_at for e in scheduled if e.occurrence_at] + [now])
        keep = set(occurrences(newsletter.cron, newsletter.timezone, now, horizon)) if newsletter.cron else set()
        gone = [e.id for e in scheduled if e.occurrence_at not in keep]
        lifecycle.drop_occurrences(session, gone, now)
        upcoming = [e for e in upcoming if e.id not in gone]
        newsletter.scheduled_until = now  # the new schedule's editions are made from now on
    for edition in upcoming:
        assert edition.occurrence_at is not None
        # A triggered edition's subject was written for its send time (digest.editions.triggers).
        when = edition.send_at if edition.story_triggered else edition.occurrence_at
        values: dict[str, Any] = (local_delivery(newsletter, when) if retimed and not edition.story_triggered
                                  else {})
        was_subject = render_subject(before.subject_template, newsletter=before.name, when=when,
                                     zone=before.timezone)
        if edition.subject == was_subject:  # not one an editor wrote for this edition
            values["subject"] = render_subject(newsletter.subject_template, newsletter=newsletter.name,
                                               when=when, zone=newsletter.timezone)
        for name in ("topics", "max_stories", "window_hours"):
            if getattr(edition, name) == getattr(before, name):
                values[name] = getattr(newsletter, name)
        values = {name: value for name, value in values.items() if getattr(edition, name) != value}
        if values:
            lifecycle.change_while_editable(session, edition.id, values)
    # Flushed first: expiring would otherwise drop the new scheduled_until (set above, unflushed
    # when no edition was left to change), and the new schedule's editions before the old
    # horizon would never be made.
    session.flush()
    session.expire_all()
    if newsletter.active:
        schedule_newsletter(session, newsletter, now)


def change_state(session: Session, ref: str | int, action: str, now: datetime) -> tuple[bool, int]:
    """pause, resume, archive or restore: (this call changed the newsletter, how many of its
    editions it moved). Doing it twice changes nothing more; resuming an archived one is a
    NewsletterArchived conflict."""
    if action not in STATE_ACTIONS:
        raise Invalid(f"unknown action {action!r}; use one of {', '.join(STATE_ACTIONS)}")
    newsletter = get_newsletter(session, ref)
    archived = newsletter.archived_at is not None
    if action in ("pause", "resume") and archived:
        raise NewsletterArchived(f"{newsletter.name} is archived: restore it first")
    moved = 0
    if action == "pause":
        if not newsletter.active:
            return False, 0
        newsletter.active = False
        moved = lifecycle.hold_upcoming(session, newsletter.id, now, newsletter.name)
    elif action == "resume":
        if newsletter.active:
            return False, 0
        newsletter.active = True
        # Not the occurrences it slept through: those would all go out at once.
        newsletter.scheduled_until = max(newsletter.scheduled_until or newsletter.created_at, now)
        moved = lifecycle.release_held(session, newsletter.id, now)
        session.flush()
        moved += schedule_newsletter(session, newsletter, now)
    elif action == "archive":
        if archived:
            return False, 0
        newsletter.active = False
        newsletter.archived_at = now
        moved = lifecycle.retire_upcoming(session, newsletter.id, now, newsletter.name)
    else:  # restore: back, paused, for an editor to look over before resuming
        if not archived:
            return False, 0
        newsletter.archived_at = None
    session.flush()
    return True, moved


def newsletter_state(newsletter: Newsletter) -> str:
    """active, paused or archived: the one word the pages, the API and the CLI show."""
    if newsletter.archived_at is not None:
        return "archived"
    return "active" if newsletter.active else "paused"


def _json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return value.isoformat() if isinstance(value, datetime) else value


def get_newsletter(session: Session, slug_or_id: str | int) -> Newsletter:
    query = select(Newsletter)
    if isinstance(slug_or_id, int) or str(slug_or_id).isdigit():
        query = query.where(Newsletter.id == int(slug_or_id))
    else:
        query = query.where(Newsletter.slug == slug_or_id)
    newsletter = session.scalar(query)
    if newsletter is None:
        raise NotFound(f"no newsletter {slug_or_id!r}", code="newsletter_not_found")
    return newsletter


def list_newsletters(session: Session, active_only: bool = False) -> list[Newsletter]:
    query = select(Newsletter).order_by(Newsletter.name)
    if active_only:
        query = query.where(Newsletter.active.is_(True))
    return list(session.scalars(query))


def last_editions(session: Session) -> dict[int, Edition]:
    """Each newsletter's most recent edition that went (or tried to go) out."""
    done = (EditionStatus.SENT, EditionStatus.SENDING, EditionStatus.PAUSED, EditionStatus.SKIPPED)
    return _edition_by_newsletter(session, Edition.status.in_(done), latest=True)


def next_editions(session: Session, now: datetime) -> dict[int, Edition]:
    """Each newsletter's next edition still to go (scheduled or draft)."""
    return _edition_by_newsletter(session, Edition.status.in_(lifecycle.EDITABLE) & (Edition.send_at > now),
                                  latest=False)


def _edition_by_newsletter(session: Session, where: ColumnElement[bool], latest: bool) -> dict[int, Edition]:
    """One edition per newsletter among those `where` picks: the latest or the earliest
    send time (one grouped query, however many editions there are)."""
    edge = (func.max if latest else func.min)(Edition.send_at).label("edge")
    picked = (select(Edition.newsletter_id, edge).where(where, Edition.newsletter_id.is_not(None))
              .group_by(Edition.newsletter_id).subquery())
    rows = session.scalars(select(Edition).join(picked, (Edition.newsletter_id == picked.c.newsletter_id)
                                                & (Edition.send_at == picked.c.edge)).where(where)
                           .order_by(Edition.id))
    return {edition.newsletter_id: edition for edition in rows if edition.newsletter_id is not None}


def upcoming_count(session: Session, newsletter_id: int) -> int:
    """How many of a newsletter's editions have not started (what archiving would cancel)."""
    return session.scalar(select(func.count()).select_from(Edition).where(
        Edition.newsletter_id == newsletter_id, Edition.status.in_(lifecycle.EDITABLE))) or 0
