"""Which newsletters each reader takes: per newsletter, by the reader's id, so leaving one
never touches the others (Ghost PR #29605 unsubscribed readers from all)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from digest.readers.addresses import InvalidReader
from digest.store import Newsletter, NewsletterSubscription, Subscriber


def active_newsletters(session: Session) -> list[Newsletter]:
    """The newsletters a reader can choose from, by name."""
    return list(session.scalars(select(Newsletter).where(Newsletter.active.is_(True)).order_by(Newsletter.name)))


def subscribed_ids(session: Session, subscriber_id: int) -> set[int]:
    return set(session.scalars(select(NewsletterSubscription.newsletter_id)
                               .where(NewsletterSubscription.subscriber_id == subscriber_id)))


def set_subscriptions(session: Session, subscriber: Subscriber, newsletter_ids: Iterable[int]) -> None:
    """Replace a reader's newsletters with exactly these (unknown ids are refused)."""
    wanted = set(newsletter_ids)
    known = set(session.scalars(select(Newsletter.id).where(Newsletter.id.in_(wanted)))) if wanted else set()
    if wanted - known:
        raise InvalidReader("unknown newsletter")
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
