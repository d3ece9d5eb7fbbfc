"""Data set-up for integration tests, through the library's own functions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from digest import staff
from digest.readers import add_subscriber, new_token
from digest.store.models import Edition, EditionStatus, Subscriber, SubscriberStatus, utcnow
from digest.stories import ingest_source
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS
from tests.support.web import PASSWORD

if TYPE_CHECKING:
    from tests.support.stack import Stack


def seed_stories(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        ingest_source(session, "sample:sample_feed.json")
        ingest_source(session, "sample:sample_article.txt")


def seed_readers(factory: sessionmaker[Session], count: int, *, prefix: str = "reader",
                 extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    addresses = [f"{prefix}{i}@example.org" for i in range(count)] + list(extra)
    with factory.begin() as session:
        session.add_all(
            Subscriber(email=address, email_key=address.lower(), name=f"Name {i}",
                       status=SubscriberStatus.ACTIVE, token=new_token(), consent_source="test")
            for i, address in enumerate(addresses)
        )
    return addresses


def due_edition(factory: sessionmaker[Session], subject: str = "Today's featured stories",
                newsletter_id: int | None = None) -> int:
    with factory.begin() as session:
        edition = Edition(subject=subject, send_at=utcnow() - timedelta(seconds=1),
                          status=EditionStatus.SCHEDULED, max_stories=5,
                          window_hours=SAMPLE_WINDOW_HOURS, newsletter_id=newsletter_id)
        session.add(edition)
        session.flush()
        return edition.id


def send_due_edition(live: Stack, subject: str = "Today's featured stories", timeout: float = 60,
                     newsletter_id: int | None = None) -> int:
    """A due edition, released through the session's worker as beat would; its id once it is sent."""
    edition_id = due_edition(live.factory, subject, newsletter_id)
    live.client.send_task("digest.release_due_editions")
    live.wait_for_edition(edition_id, timeout=timeout)
    return edition_id


def add_active_reader(live: Stack, address: str, name: str | None = None,
                      topics: list[str] | None = None) -> Subscriber:
    with live.factory.begin() as session:
        return add_subscriber(session, address, allowed_topics=TOPICS, name=name, topics=topics,
                              confirmed=True, consent_source="test")


def make_user(live: Stack, email: str, role: str, *, one_time: bool = False) -> int:
    """A staff user with PASSWORD (`one_time`: to be changed at the first sign-in); returns the
    user's id."""
    with live.factory.begin() as session:
        return staff.create_user(session, email, role, PASSWORD, one_time=one_time).id


def make_api_token(live: Stack, email: str, role: str) -> str:
    """A new staff user with an API token; returns the token."""
    with live.factory.begin() as session:
        return staff.create_api_token(session, staff.create_user(session, email, role, PASSWORD), "tests")[1]
