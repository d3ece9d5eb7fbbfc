"""Which newsletters each reader takes: per newsletter, by the reader's id, so leaving one
never touches the others (Ghost PR #29605 unsubscribed readers from all)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from digest.readers.addresses import InvalidReader
from digest.readers.consent import RequestContext, consent_values
from digest.store import (
    ConsentEvent,
    Newsletter,
    NewsletterSubscription,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    utcnow,
)

SUBSCRIBE_EXISTING_CHUNK = 5000


def active_newsletters(session: Session) -> list[Newsletter]:
    """The newsletters a reader can choose from, by name: every one not archived (a paused
    one too: its readers get it again when it resumes)."""
    return list(session.scalars(select(Newsletter).where(Newsletter.archived_at.is_(None)).order_by(Newsletter.name)))


def subscribed_ids(session: Session, subscriber_id: int) -> set[int]:
    return set(session.scalars(select(NewsletterSubscription.newsletter_id)
                               .where(NewsletterSubscription.subscriber_id == subscriber_id)))


def set_subscriptions(session: Session, subscriber: Subscriber, newsletter_ids: Iterable[int]) -> None:
    """Replace a reader's newsletters with exactly these, of those they can choose (unknown
    or archived ids are refused). Archived newsletters they take are kept: no form offers
    them, so leaving them out says nothing, and restoring one brings its readers back."""
    wanted = set(newsletter_ids)
    known = set(session.scalars(select(Newsletter.id).where(Newsletter.id.in_(wanted),
                                                            Newsletter.archived_at.is_(None)))) if wanted else set()
    if wanted - known:
        raise InvalidReader("unknown newsletter")
    wanted |= set(session.scalars(
        select(NewsletterSubscription.newsletter_id).join(Newsletter, Newsletter.id == NewsletterSubscription.newsletter_id)
        .where(NewsletterSubscription.subscriber_id == subscriber.id, Newsletter.archived_at.is_not(None))))
    session.execute(delete(NewsletterSubscription).where(NewsletterSubscription.subscriber_id == subscriber.id))
    if wanted:
        session.execute(insert(NewsletterSubscription),
                        [{"newsletter_id": n, "subscriber_id": subscriber.id} for n in sorted(wanted)])


def subscribe_to_all(session: Session, subscriber_ids: Iterable[int]) -> None:
    """New readers get every active newsletter unless they chose otherwise."""
    newsletters = [n.id for n in active_newsletters(session)]
    rows = [{"newsletter_id": n, "subscriber_id": s} for s in subscriber_ids for n in newsletters]
    if rows:
        session.execute(insert(NewsletterSubscription), rows)


def subscriber_counts(session: Session, newsletter_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Active readers per newsletter (who an edition of it would go to, before topics,
    pauses and weekly readers are counted): one grouped query."""
    query = (select(NewsletterSubscription.newsletter_id, func.count())
             .join(Subscriber, Subscriber.id == NewsletterSubscription.subscriber_id)
             .where(Subscriber.status == SubscriberStatus.ACTIVE)
             .group_by(NewsletterSubscription.newsletter_id))
    if newsletter_ids is not None:
        query = query.where(NewsletterSubscription.newsletter_id.in_(list(newsletter_ids)))
    return {newsletter_id: count for newsletter_id, count in session.execute(query)}


def subscribe_existing(session: Session, newsletter: Newsletter, ctx: RequestContext) -> int:
    """A new newsletter's first readers, by a staff member's choice: every active reader
    whose topics match it (a reader who chose none takes everything) and who does not take
    it yet. Each gets a consent event saying so. Readers who are pending, left, bounced or
    complained are never added. Returns how many joined. In chunks: no reader list in memory."""
    query = select(Subscriber.id).where(
        Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.erased_at.is_(None),
        ~select(NewsletterSubscription.subscriber_id).where(
            NewsletterSubscription.subscriber_id == Subscriber.id,
            NewsletterSubscription.newsletter_id == newsletter.id).exists())
    if newsletter.topics:
        chosen = select(SubscriberTopic.subscriber_id).where(SubscriberTopic.subscriber_id == Subscriber.id)
        query = query.where(~chosen.exists() | chosen.where(SubscriberTopic.topic.in_(newsletter.topics)).exists())
    ids = list(session.scalars(query.order_by(Subscriber.id)))
    now = utcnow()
    for start in range(0, len(ids), SUBSCRIBE_EXISTING_CHUNK):
        chunk = ids[start:start + SUBSCRIBE_EXISTING_CHUNK]
        session.execute(insert(NewsletterSubscription),
                        [{"newsletter_id": newsletter.id, "subscriber_id": i, "created_at": now} for i in chunk])
        session.execute(insert(ConsentEvent), [
            {**consent_values(i, "newsletter-added", ctx, detail={"newsletter": newsletter.slug}), "at": now}
            for i in chunk])
    return len(ids)
