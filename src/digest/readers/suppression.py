"""Addresses that must never be mailed or re-added silently, and the two rules that put
them there: a hard bounce and a complaint. The send loop and bounce reports both call
`bounce_readers`, so the rule is written once.

The list keeps only a SHA-256 of the address (digest.readers.addresses.email_hash).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest.readers.addresses import email_hash
from digest.store import Subscriber, SubscriberStatus, Suppression

# A reader in one of these states still counts as on the list: a hard bounce ends it.
ON_THE_LIST = (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING)
# Reasons a person's own new consent ends: they erased their data, or another service's
# list said they had unsubscribed. These block imports and silent re-adds, not the person:
# a sign-up asks them to confirm like anyone new, and their confirmation lifts the block.
# A bounce, a complaint or a blocklisting stays: the mailbox or its owner said no.
LIFTED_BY_CONSENT = ("erased", "unsubscribed")


def is_suppressed(session: Session, email_key: str) -> bool:
    return session.get(Suppression, email_hash(email_key)) is not None


def suppression_reason(session: Session, email_key: str) -> str | None:
    row = session.get(Suppression, email_hash(email_key))
    return row.reason if row is not None else None


def lift_for_consent(session: Session, email_key: str) -> bool:
    """The address confirmed a new subscription: a block its owner's own choice put there
    (LIFTED_BY_CONSENT) ends. True if one did."""
    row = session.get(Suppression, email_hash(email_key))
    if row is None or row.reason not in LIFTED_BY_CONSENT:
        return False
    session.delete(row)
    session.flush()
    return True


def suppress(session: Session, email_key: str, reason: str) -> bool:
    """Put the address on the list; True if this call added it or made its reason stronger
    (a complaint over a bounce: spam rates are what mailbox providers watch)."""
    existing = session.get(Suppression, email_hash(email_key))
    if existing is None:
        session.add(Suppression(email_hash=email_hash(email_key), reason=reason))
        session.flush()
        return True
    if reason == "complained" and existing.reason == "bounced":
        existing.reason = reason
        return True
    return False


def bounce_readers(session: Session, subscriber_ids: Collection[int]) -> int:
    """The hard-bounce rule: readers still on the list become `bounced` and every address is
    suppressed. Returns how many readers or addresses this call changed (0: all done
    before, so a report applied twice changes nothing more)."""
    if not subscriber_ids:
        return 0
    ids = list(subscriber_ids)
    changed = session.execute(
        update(Subscriber).where(Subscriber.id.in_(ids), Subscriber.status.in_(ON_THE_LIST))
        .values(status=SubscriberStatus.BOUNCED).execution_options(synchronize_session=False)).rowcount or 0
    for key in session.scalars(select(Subscriber.email_key).where(Subscriber.id.in_(ids))):
        changed += suppress(session, key, "bounced")
    return changed


def complain(session: Session, subscriber_id: int) -> tuple[bool, bool]:
    """A reader's spam complaint: (status changed to `complained`, address newly suppressed
    or its reason made stronger)."""
    changed = session.execute(
        update(Subscriber).where(Subscriber.id == subscriber_id, Subscriber.status != SubscriberStatus.COMPLAINED)
        .values(status=SubscriberStatus.COMPLAINED).execution_options(synchronize_session=False)).rowcount == 1
    key = session.scalar(select(Subscriber.email_key).where(Subscriber.id == subscriber_id))
    return changed, key is not None and suppress(session, key, "complained")


def count_soft_bounce(session: Session, subscriber_id: int, limit: int) -> bool:
    """One more soft bounce for the reader (the caller counts each message once); at `limit`
    it is a hard bounce. True if this call suppressed the reader."""
    session.execute(update(Subscriber).where(Subscriber.id == subscriber_id)
                    .values(soft_bounces=Subscriber.soft_bounces + 1).execution_options(synchronize_session=False))
    count = session.scalar(select(Subscriber.soft_bounces).where(Subscriber.id == subscriber_id)) or 0
    if count >= limit:
        bounce_readers(session, [subscriber_id])
        return True
    return False
