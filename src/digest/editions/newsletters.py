"""Newsletters: recurring digests with their own schedule, audience and format."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions.schedules import check_cron, check_subject_template, check_zone
from digest.errors import Conflict, Invalid, NotFound
from digest.readers import clean_topics
from digest.store import Newsletter

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class NewsletterError(Invalid):
    """A slug, name, schedule or limit that cannot make a newsletter."""


class SlugTaken(Conflict, NewsletterError):
    """A conflict first (409): the input is fine, the slug is taken."""


def create_newsletter(
    session: Session,
    *,
    slug: str,
    name: str,
    cron: str,
    timezone: str,
    allowed_topics: list[str],
    topics: str | Iterable[str] | None = None,
    max_stories: int = 5,
    min_stories: int = 1,
    window_hours: int = 48,
    subject_template: str = "{{ newsletter }}: {{ date }}",
    sender_name: str | None = None,
    local_time: bool = False,
) -> Newsletter:
    if not SLUG_RE.match(slug):
        raise NewsletterError("slug must be lowercase letters, digits and dashes, e.g. morning-briefing")
    if session.scalar(select(Newsletter.id).where(Newsletter.slug == slug)) is not None:
        raise SlugTaken(f"a newsletter with slug {slug!r} exists")
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise NewsletterError("name must be 1 to 120 characters")
    if sender_name is not None and ("\r" in sender_name or "\n" in sender_name):
        raise NewsletterError("sender name must be one line")
    if sender_name is not None and len(" ".join(sender_name.split())) > 120:
        raise NewsletterError("sender name must be at most 120 characters")
    if "\x00" in name or "\x00" in (sender_name or ""):  # both become headers (List-Id, From)
        raise NewsletterError("name and sender name must not contain NUL")
    if not 1 <= min_stories <= max_stories <= 50:
        raise NewsletterError("need 1 <= min stories <= max stories <= 50")
    try:
        newsletter = Newsletter(
            slug=slug, name=name, sender_name=" ".join(sender_name.split()) if sender_name else None,
            cron=check_cron(cron), timezone=check_zone(timezone).key,
            topics=clean_topics(topics, allowed_topics) or None if topics else None,
            max_stories=max_stories, min_stories=min_stories, window_hours=window_hours,
            subject_template=check_subject_template(subject_template), active=True, local_time=local_time,
        )
    except ValueError as exc:
        raise NewsletterError(str(exc)) from None
    session.add(newsletter)
    session.flush()
    return newsletter


def get_newsletter(session: Session, slug_or_id: str | int) -> Newsletter:
    query = select(Newsletter)
    if isinstance(slug_or_id, int) or str(slug_or_id).isdigit():
        query = query.where(Newsletter.id == int(slug_or_id))
    else:
        query = query.where(Newsletter.slug == slug_or_id)
    newsletter = session.scalar(query)
    if newsletter is None:
        raise NotFound(f"no newsletter {slug_or_id!r}")
    return newsletter


def list_newsletters(session: Session, active_only: bool = False) -> list[Newsletter]:
    query = select(Newsletter).order_by(Newsletter.name)
    if active_only:
        query = query.where(Newsletter.active.is_(True))
    return list(session.scalars(query))
