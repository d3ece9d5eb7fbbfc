"""Forgetting a reader forgets them in the ledger too: mail servers quote the address in
their error replies, and those replies stay in deliveries.last_error."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import actions
from digest.config import get_settings
from digest.delivery import erase_reader
from digest.readers import RequestContext, add_subscriber
from digest.store import (
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ErrorCode,
    Subscriber,
    session_factory,
    utcnow,
)


def bounced_reader(session: Session, address: str) -> tuple[int, int]:
    reader = add_subscriber(session, address, confirmed=True, allowed_topics=[])
    edition = Edition(subject="S", send_at=utcnow(), status=EditionStatus.SENT, max_stories=5, window_hours=48)
    session.add(edition)
    session.flush()
    delivery = Delivery(edition_id=edition.id, subscriber_id=reader.id, status=DeliveryStatus.BOUNCED,
                        last_error=f"550 5.1.1 <{address}>: no such user", error_code=ErrorCode.HARD_BOUNCE)
    session.add(delivery)
    session.commit()
    return reader.id, delivery.id


def test_a_reader_forgetting_themselves_leaves_no_address_in_the_ledger(session: Session) -> None:
    reader_id, delivery_id = bounced_reader(session, "ann@example.org")
    erase_reader(session, session.get_one(Subscriber, reader_id), RequestContext(channel="preferences"))
    session.commit()
    row = session.get_one(Delivery, delivery_id)
    assert row.last_error is None and row.error_code == ErrorCode.HARD_BOUNCE
    assert session.get_one(Subscriber, reader_id).email == f"erased-{reader_id}@erased.invalid"


def test_staff_erasing_a_reader_takes_the_same_path(session: Session) -> None:
    reader_id, delivery_id = bounced_reader(session, "bob@example.org")
    deps = actions.Deps(session_factory(), get_settings(), lambda *a: None, lambda *a: None, lambda: None)
    assert actions.readers.erase_reader(deps, actions.Actor.command_line(), reader_id).changed
    session.expire_all()
    assert session.scalar(select(Delivery.last_error).where(Delivery.id == delivery_id)) is None
