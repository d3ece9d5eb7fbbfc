"""A reader's click history: kept only where a newsletter offers it (`click_history`) AND the
reader said yes to "Remember which stories I click" on their preferences page.

The one writer of `click_history_consents` (the consent in force) and `click_history` (the
clicks). Each yes and each no is also a consent event. Saying no deletes that newsletter's
history at once; erasure deletes all of it. A click is written only if, when the flush
writes it, the newsletter still offers the history and the reader's consent still stands,
so a click that arrives after a no (or after an erasure) is dropped. Which clicks arrive
here is the click counter's business (digest.clicks.history: people's clicks only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from digest.readers.consent import RequestContext, record
from digest.store import (
    ClickHistory,
    ClickHistoryConsent,
    Edition,
    Newsletter,
    NewsletterSubscription,
    Story,
    Subscriber,
)

CLICK_HISTORY_TEXT = "Remember which stories I click"
CONSENT_KIND = "click-history"


@dataclass(frozen=True)
class HistoryChoice:
    newsletter_id: int
    name: str
    consented: bool


@dataclass(frozen=True)
class RememberedClick:
    subscriber_id: int
    edition_id: int
    story_id: int
    clicked_at: datetime


def history_choices(session: Session, subscriber_id: int) -> list[HistoryChoice]:
    """The newsletters that offer a click history to this reader (those they take), and any
    they consented to before (so a yes can always be taken back)."""
    consented = set(session.scalars(select(ClickHistoryConsent.newsletter_id)
                                    .where(ClickHistoryConsent.subscriber_id == subscriber_id)))
    taken = set(session.scalars(select(NewsletterSubscription.newsletter_id)
                                .where(NewsletterSubscription.subscriber_id == subscriber_id)))
    offered = session.execute(select(Newsletter.id, Newsletter.name).where(
        Newsletter.click_history, Newsletter.archived_at.is_(None)).order_by(Newsletter.name))
    choices = [HistoryChoice(nid, name, nid in consented) for nid, name in offered if nid in taken or nid in consented]
    shown = {c.newsletter_id for c in choices}
    for nid, name in session.execute(select(Newsletter.id, Newsletter.name)
                                     .where(Newsletter.id.in_(consented - shown))):
        choices.append(HistoryChoice(nid, name, True))
    return choices


def set_click_history(session: Session, subscriber: Subscriber, remember: Iterable[int], ctx: RequestContext) -> None:
    """The reader's answer for every newsletter offered to them (history_choices): yes for
    those in `remember`, no for the rest. A no deletes that newsletter's history."""
    wanted = set(remember)
    for choice in history_choices(session, subscriber.id):
        if choice.newsletter_id in wanted and not choice.consented:
            session.add(ClickHistoryConsent(subscriber_id=subscriber.id, newsletter_id=choice.newsletter_id))
            record(session, subscriber, CONSENT_KIND, ctx, detail={
                "newsletter_id": choice.newsletter_id, "remember_clicks": True, "text": CLICK_HISTORY_TEXT})
        elif choice.newsletter_id not in wanted and choice.consented:
            session.execute(delete(ClickHistoryConsent).where(
                ClickHistoryConsent.subscriber_id == subscriber.id,
                ClickHistoryConsent.newsletter_id == choice.newsletter_id))
            session.execute(delete(ClickHistory).where(
                ClickHistory.subscriber_id == subscriber.id,
                ClickHistory.edition_id.in_(select(Edition.id).where(Edition.newsletter_id == choice.newsletter_id)))
                .execution_options(synchronize_session=False))
            record(session, subscriber, CONSENT_KIND, ctx, detail={
                "newsletter_id": choice.newsletter_id, "remember_clicks": False, "text": CLICK_HISTORY_TEXT})
    session.flush()


def remember_clicks(session: Session, clicks: list[RememberedClick]) -> int:
    """Write the clicks whose reader consented, in a newsletter that still offers the
    history; the rest are dropped. Written twice (a flush retried), a click is kept once."""
    if not clicks:
        return 0
    allowed = {(row[0], row[1]) for row in session.execute(
        select(ClickHistoryConsent.subscriber_id, Edition.id)
        .join(Edition, Edition.newsletter_id == ClickHistoryConsent.newsletter_id)
        .join(Newsletter, Newsletter.id == ClickHistoryConsent.newsletter_id)
        .where(Newsletter.click_history,
               ClickHistoryConsent.subscriber_id.in_({c.subscriber_id for c in clicks}),
               Edition.id.in_({c.edition_id for c in clicks})))}
    rows = [{"subscriber_id": c.subscriber_id, "edition_id": c.edition_id, "story_id": c.story_id,
             "clicked_at": c.clicked_at} for c in clicks if (c.subscriber_id, c.edition_id) in allowed]
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(ClickHistory).values(rows).on_conflict_do_nothing())
    return len(rows)


def forget_click_history(session: Session, subscriber_id: int) -> None:
    """Everything about the reader's clicks and their consents to keep them: erasure."""
    session.execute(delete(ClickHistory).where(ClickHistory.subscriber_id == subscriber_id)
                    .execution_options(synchronize_session=False))
    session.execute(delete(ClickHistoryConsent).where(ClickHistoryConsent.subscriber_id == subscriber_id)
                    .execution_options(synchronize_session=False))


def click_history_of(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """The reader's remembered clicks, oldest first, for their data export."""
    found = session.execute(
        select(ClickHistory.edition_id, ClickHistory.story_id, ClickHistory.clicked_at, Story.title, Story.url)
        .outerjoin(Story, Story.id == ClickHistory.story_id)
        .where(ClickHistory.subscriber_id == subscriber_id).order_by(ClickHistory.clicked_at, ClickHistory.id))
    return [{"edition_id": edition_id, "story_id": story_id, "title": title, "url": url,
             "clicked_at": clicked_at.isoformat()} for edition_id, story_id, clicked_at, title, url in found]


def counting_opens(session: Session, subscriber_id: int) -> list[str]:
    """The names of the reader's newsletters that count opens (the open pixel), for the
    preferences page to say so."""
    return list(session.scalars(
        select(Newsletter.name).join(NewsletterSubscription, NewsletterSubscription.newsletter_id == Newsletter.id)
        .where(NewsletterSubscription.subscriber_id == subscriber_id, Newsletter.open_pixel).order_by(Newsletter.name)))
