"""Recurring schedules: newsletters' cron expressions become editions, once per occurrence.

The schedule lives in the database, not in beat: a periodic task creates the editions of
every occurrence up to SCHEDULE_AHEAD_HOURS ahead (so editors can curate them) with an
INSERT … ON CONFLICT DO NOTHING on (newsletter_id, occurrence_at). Any number of beat
and worker processes can run it at once and each occurrence still yields one edition.

Times: cron expressions are read in the newsletter's IANA zone (croniter), so "07:00
Europe/Kyiv" stays 07:00 local across DST. On the autumn change a wall-clock time that
happens twice (03:30 on the night clocks go back) counts once: the first.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cron_descriptor import ExpressionDescriptor, FormatException, Options
from croniter import CroniterBadCronError, croniter
from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from digest.editions.subjects import SubjectTemplates, subject_problem
from digest.zones import UnknownZone, load_zone
from digest.errors import Invalid
from digest.store import Edition, EditionStatus, NewEditions, Newsletter

log = logging.getLogger(__name__)
SCHEDULE_AHEAD_HOURS = 48
MAX_OCCURRENCES_PER_RUN = 200
_subjects = SubjectTemplates()  # documented names only: digest.editions.subjects


class ScheduleError(Invalid):
    """A cron expression, zone or subject template that cannot make a schedule."""


def check_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    if len(expression) > 100:  # the column's length
        raise ScheduleError("a cron expression must be at most 100 characters")
    if len(expression.split(" ")) != 5:
        raise ScheduleError(f"cron expression {expression!r} must have 5 fields (minute hour day month weekday)")
    try:
        croniter(expression)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise ScheduleError(f"bad cron expression {expression!r}: {exc}") from None
    return expression


def check_zone(name: str) -> ZoneInfo:
    try:
        return load_zone(name)
    except UnknownZone as exc:
        raise ScheduleError(str(exc)) from None


def occurrences(expression: str, zone: str, after: datetime, until: datetime,
                limit: int = MAX_OCCURRENCES_PER_RUN) -> list[datetime]:
    """UTC instants of the schedule in (after, until], at most `limit`."""
    tz = check_zone(zone)
    iterator = croniter(check_cron(expression), after.astimezone(tz))
    found: list[datetime] = []
    while len(found) < limit:
        local: datetime = iterator.get_next(datetime)
        if local.astimezone(UTC) > until:
            break
        if _is_repeated_wall_time(local, tz):
            continue
        found.append(local.astimezone(UTC))
    return found


def _is_repeated_wall_time(local: datetime, tz: ZoneInfo) -> bool:
    """True for the second pass through an hour the clocks went back over."""
    naive = local.replace(tzinfo=None)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    return first.utcoffset() != second.utcoffset() and local.utcoffset() == second.utcoffset()


def render_subject(template: str, *, newsletter: str, when: datetime, zone: str) -> str:
    local = when.astimezone(check_zone(zone))
    try:
        subject = _subjects.from_string(template).render(
            # `date` leaves the weekday to `weekday`, so "{{ weekday }}, {{ date }}" reads once each.
            newsletter=newsletter, date=f"{local.day} {local:%B %Y}", weekday=f"{local:%A}")
    except TemplateError as exc:
        raise ScheduleError(f"subject template: {exc}") from None
    subject = " ".join(subject.split())
    if not subject:
        raise ScheduleError("the subject template renders empty")
    return subject[:300]


def check_subject_template(template: str) -> str:
    if "\r" in template or "\n" in template:
        raise ScheduleError("the subject template must be one line")
    if len(template) > 300:  # the column's length
        raise ScheduleError("the subject template must be at most 300 characters")
    render_subject(template, newsletter="Test", when=datetime.now(UTC), zone="UTC")
    return template


def schedule_editions(session: Session, now: datetime, ahead_hours: int = SCHEDULE_AHEAD_HOURS) -> int:
    """Create the editions of every active newsletter's occurrences up to `ahead_hours`
    from now. Returns how many rows this call inserted (0 when another process did)."""
    active = session.scalars(select(Newsletter).where(Newsletter.active.is_(True)))
    return sum(schedule_newsletter(session, newsletter, now, ahead_hours) for newsletter in active)


def schedule_newsletter(session: Session, newsletter: Newsletter, now: datetime,
                        ahead_hours: int = SCHEDULE_AHEAD_HOURS) -> int:
    """One newsletter's share of schedule_editions: beat calls it for each, and changing or
    resuming a newsletter calls it at once, so its next editions show straight away."""
    if newsletter.cron is None:  # sent by its stories alone (digest.editions.triggers)
        return 0
    until = now + timedelta(hours=ahead_hours)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    if (problem := subject_problem(newsletter.subject_template)) is not None:
        # Stored before templates were checked as they are now: its editions wait for a fix.
        log.warning("newsletter %s: editions not scheduled: subject template: %s", newsletter.slug, problem)
        return 0
    start = newsletter.scheduled_until or newsletter.created_at
    status = EditionStatus.DRAFT if newsletter.new_editions == NewEditions.DRAFT else EditionStatus.SCHEDULED
    rows = [
        {
            "newsletter_id": newsletter.id,
            "occurrence_at": when,
            **local_delivery(newsletter, when),
            "subject": render_subject(newsletter.subject_template, newsletter=newsletter.name,
                                      when=when, zone=newsletter.timezone),
            "topics": newsletter.topics,
            "max_stories": newsletter.max_stories,
            "window_hours": newsletter.window_hours,
            "status": status,
            "planned_count": 0,
            "created_at": now,
        }
        for when in occurrences(newsletter.cron, newsletter.timezone, start, until)
    ]
    if not rows:
        return 0
    statement = insert(Edition).values(rows).on_conflict_do_nothing(index_elements=["newsletter_id", "occurrence_at"])
    created = session.execute(statement).rowcount or 0
    newsletter.scheduled_until = rows[-1]["occurrence_at"]
    return created


def next_sends(expression: str, zone: str, now: datetime, count: int = 5) -> list[datetime]:
    """The next `count` occurrences of a schedule after `now`, in its zone (for a page that
    shows an editor what a cron expression means before they save it)."""
    tz = check_zone(zone)
    return [when.astimezone(tz) for when in occurrences(expression, zone, now, now + timedelta(days=3660), count)]


def schedule_in_words(expression: str, zone: str) -> str:
    """"At 07:00, Monday through Friday, Kyiv time": a cron expression as an editor reads it."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        words = ExpressionDescriptor(check_cron(expression), options).get_description()
    except (FormatException, ValueError, KeyError, IndexError):
        words = expression
    if expression.split()[2:] == ["*", "*", "*"] and not words.startswith("Every"):
        words += ", every day"
    place = zone.rsplit("/", 1)[-1].replace("_", " ")
    return f"{words}, {'UTC' if zone in ('UTC', 'Etc/UTC') else place + ' time'}"


# The earliest zone on Earth (UTC+14): a local-time edition is planned when its hour
# arrives there, and each reader's copy waits in the database for their own zone.
EARLIEST_OFFSET = timedelta(hours=14)


def local_delivery(newsletter: Newsletter, when: datetime) -> dict[str, object]:
    """send_at (and the local-time fields) for an occurrence of `newsletter` at `when`."""
    if not newsletter.local_time:
        return {"send_at": when, "local_time": None, "local_date": None, "local_zone": None}
    local = when.astimezone(check_zone(newsletter.timezone))
    wall = local.replace(tzinfo=None)
    return {
        "send_at": wall.replace(tzinfo=UTC) - EARLIEST_OFFSET,
        "local_time": f"{local:%H:%M}",
        "local_date": f"{local:%Y-%m-%d}",
        "local_zone": newsletter.timezone,
    }


def local_instant(local_date: str, local_time: str, zone: str) -> datetime:
    """The UTC instant of a wall-clock date and time in `zone`."""
    wall = datetime.fromisoformat(f"{local_date}T{local_time}")
    return wall.replace(tzinfo=check_zone(zone)).astimezone(UTC)
