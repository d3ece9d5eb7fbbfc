"""The editor dashboard: each newsletter with its next edition, the editions coming up and
the ones lately finished, with their numbers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions import ScheduleError, list_newsletters, occurrences, sends_in_words
from digest.observe import best_stories, best_stories_chart, edition_counts, readers_by_day
from digest.readers import subscriber_counts
from digest.store import Edition, EditionStatus, utcnow
from digest.web.deps import EditorUser, services_of, staff_page
from digest.web.pages.editor.common import editor_page

router = APIRouter(prefix="/editor")
UPCOMING_EDITIONS_SHOWN = 20
RECENT_EDITIONS_SHOWN = 10
NEXT_OCCURRENCE_LOOKAHEAD_DAYS = 400
UPCOMING = (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.SENDING, EditionStatus.PAUSED)
FINISHED = (EditionStatus.SENT, EditionStatus.CANCELLED, EditionStatus.SKIPPED)
# The upcoming editions follow a send live: htmx asks for them again every few seconds while
# there are any (HTTP 286, htmx's "stop polling", when none is left).
UPCOMING_POLL_SECONDS = 5
READER_CHARTS_SHOWN = 4  # newsletters with a chart of their own; past that, one for everyone


def upcoming_context(session: Session) -> dict[str, Any]:
    upcoming = list(session.scalars(select(Edition).where(Edition.status.in_(UPCOMING))
                                    .order_by(Edition.send_at, Edition.id).limit(UPCOMING_EDITIONS_SHOWN)))
    counts = {c.id: c for c in edition_counts(session, [e.id for e in upcoming])}
    return {"upcoming": upcoming, "upcoming_counts": counts, "poll_seconds": UPCOMING_POLL_SECONDS}


@router.get("/upcoming")
def upcoming_fragment(request: Request, user: EditorUser) -> Response:
    with services_of(request).factory() as session:
        context = upcoming_context(session)
    response = staff_page(request, "editor/_upcoming.html", context)
    if not context["upcoming"]:
        response.status_code = 286
    return response


@router.get("")
def dashboard(request: Request, user: EditorUser, done: str = "") -> Response:
    now = utcnow()
    with services_of(request).factory() as session:
        live = upcoming_context(session)
        recent = list(session.scalars(select(Edition).where(Edition.status.in_(FINISHED))
                                      .order_by(Edition.send_at.desc(), Edition.id.desc())
                                      .limit(RECENT_EDITIONS_SHOWN)))
        counts = {c.id: c for c in edition_counts(session, [e.id for e in recent])}
        newsletters = []
        subscribers = subscriber_counts(session)
        for newsletter in list_newsletters(session):
            if newsletter.archived_at is not None:  # history: on /editor/newsletters
                continue
            next_edition = session.scalar(
                select(Edition).where(Edition.newsletter_id == newsletter.id,
                                      Edition.status.in_((EditionStatus.DRAFT, EditionStatus.SCHEDULED)))
                .order_by(Edition.send_at).limit(1))
            next_time = next_edition.send_at if next_edition else (
                _next_occurrence(newsletter.cron, newsletter.timezone, now)
                if newsletter.active and newsletter.cron else None)
            newsletters.append({"row": newsletter, "next_edition": next_edition, "next_time": next_time,
                                "schedule": sends_in_words(newsletter),
                                "subscribers": subscribers.get(newsletter.id, 0)})
        shown = [n["row"] for n in newsletters]
        reader_charts = ([readers_by_day(session, n.id, now) for n in shown]
                         if 0 < len(shown) <= READER_CHARTS_SHOWN else [readers_by_day(session, None, now)])
        for newsletter, reader_chart in zip(shown, reader_charts, strict=False):
            reader_chart.title = f"{newsletter.name}: readers per day" if len(shown) == len(reader_charts) else \
                "All readers per day"
        best = best_stories(session, now)
    return editor_page(request, "editor/dashboard.html", "dashboard", {
        **live, "newsletters": newsletters, "recent": recent, "counts": counts, "reader_charts": reader_charts,
        "best": best, "best_chart": best_stories_chart(best)},
        done=done)


def _next_occurrence(cron: str, zone: str, now: datetime) -> datetime | None:
    try:
        found = occurrences(cron, zone, now, now + timedelta(days=NEXT_OCCURRENCE_LOOKAHEAD_DAYS), limit=1)
    except ScheduleError:
        return None
    return found[0] if found else None
