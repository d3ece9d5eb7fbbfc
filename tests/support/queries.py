"""What the database holds now, read for assertions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.models import Base, Delivery, Story, Subscriber

if TYPE_CHECKING:
    from tests.support.stack import Stack


def count_rows(session: Session, model: type[Base]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def count(live: Stack, model: type, *where: object) -> int:
    with live.factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def story_ids(live: Stack) -> dict[str, int]:
    """Story id by title."""
    with live.factory() as session:
        return {s.title: s.id for s in session.scalars(select(Story))}


def reader_by_email(live: Stack, address: str) -> Subscriber | None:
    with live.factory() as session:
        return session.scalar(select(Subscriber).where(Subscriber.email_key == address.lower()))


def reader_by_id(live: Stack, subscriber_id: int) -> Subscriber:
    with live.factory() as session:
        return session.get_one(Subscriber, subscriber_id)


def statuses(live: Stack, edition_id: int) -> dict[str, str]:
    with live.factory() as session:
        rows = session.execute(select(Subscriber.email, Delivery.status)
                               .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                               .where(Delivery.edition_id == edition_id))
        return {email: status.value for email, status in rows}
