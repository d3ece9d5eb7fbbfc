"""Who an edition goes to: the audience an editor sees before release is exactly who
planning then picks, and an edition released to nobody ends skipped, saying why, never sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery import ledger, release_edition
from digest.editions import create_edition, create_newsletter, lifecycle
from digest.observe import edition_audiences, edition_counts
from digest.readers import RequestContext, add_subscriber, set_subscriptions, subscribe_existing, subscriber_counts
from digest.store import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    Frequency,
    NewsletterSubscription,
    StatusCode,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from digest.stories import ingest_source
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS


@pytest.fixture
def stocked(session: Session) -> Session:
    ingest_source(session, "sample:sample_feed.json")
    return session


def reader(session: Session, email: str, *, topics: tuple[str, ...] = (), status: SubscriberStatus | None = None,
           **fields: object) -> Subscriber:
    subscriber = add_subscriber(session, email, topics=list(topics), confirmed=True, allowed_topics=TOPICS)
    if status is not None:
        subscriber.status = status
    for name, value in fields.items():
        setattr(subscriber, name, value)
    session.flush()
    return subscriber


def edition(session: Session, **options: object) -> Edition:
    values: dict[str, object] = {"subject": "Today", "send_at": utcnow(), "topics": "politics",
                                 "allowed_topics": TOPICS, "max_stories": 5, "window_hours": SAMPLE_WINDOW_HOURS}
    return create_edition(session, **{**values, **options})  # type: ignore[arg-type]


def test_the_audience_shown_is_who_planning_picks(stocked: Session) -> None:
    now = utcnow()
    reader(stocked, "all@example.org")  # no topics: takes everything
    reader(stocked, "politics@example.org", topics=("politics",))
    reader(stocked, "sports@example.org", topics=("sports",))
    reader(stocked, "pending@example.org", status=SubscriberStatus.PENDING)
    reader(stocked, "left@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    reader(stocked, "paused@example.org", paused_until=now + timedelta(days=3))
    weekly = reader(stocked, "weekly@example.org", frequency=Frequency.WEEKLY)
    earlier = edition(stocked, send_at=now - timedelta(days=2), topics=None)
    earlier.status = EditionStatus.SENT
    stocked.add(Delivery(edition_id=earlier.id, subscriber_id=weekly.id, status=DeliveryStatus.SENT,
                         sent_at=now - timedelta(days=2)))
    today = edition(stocked, send_at=now)
    stocked.commit()

    shown = ledger.count_audience(stocked, today, now)
    assert shown == 2
    assert edition_audiences(stocked, [today], now) == {today.id: 2}
    assert edition_counts(stocked, [today.id])[0].audience == 2
    assert release_edition(stocked, today.id, now)
    planned = stocked.scalars(select(Subscriber.email).join(Delivery, Delivery.subscriber_id == Subscriber.id)
                              .where(Delivery.edition_id == today.id)).all()
    assert sorted(planned) == ["all@example.org", "politics@example.org"]
    stocked.commit()
    # Once released, the audience is its deliveries (whoever leaves afterwards).
    assert edition_counts(stocked, [today.id])[0].audience == 2


def test_an_edition_released_to_nobody_is_skipped_and_says_why(stocked: Session) -> None:
    now = utcnow()
    morning = create_newsletter(stocked, slug="flash", name="Flash Alert", cron="0 7 * * *", timezone="UTC",
                                allowed_topics=TOPICS)
    reader(stocked, "elsewhere@example.org")  # active, but took no part in Flash Alert
    set_subscriptions(stocked, stocked.scalars(select(Subscriber)).one(), [])
    empty = edition(stocked, send_at=now, topics=None)
    empty.newsletter_id = morning.id
    stocked.commit()

    assert edition_counts(stocked, [empty.id])[0].audience == 0
    assert release_edition(stocked, empty.id, now)
    stocked.commit()
    stocked.refresh(empty)
    assert empty.status == EditionStatus.SKIPPED and empty.status_code == StatusCode.NO_READERS
    assert empty.status_reason == "no readers on Flash Alert: no active reader takes it"
    assert stocked.scalars(select(Delivery).where(Delivery.edition_id == empty.id)).all() == []


def test_subscribing_existing_readers_takes_the_active_ones_whose_topics_match(session: Session) -> None:
    reader(session, "all@example.org")
    reader(session, "politics@example.org", topics=("politics", "world"))
    reader(session, "sports@example.org", topics=("sports",))
    reader(session, "pending@example.org", status=SubscriberStatus.PENDING)
    reader(session, "left@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    newsletter = create_newsletter(session, slug="politics-daily", name="Politics Daily", cron="0 7 * * *",
                                   timezone="UTC", allowed_topics=TOPICS, topics="politics")
    already = reader(session, "already@example.org")  # joined every active newsletter when added
    assert subscriber_counts(session) == {newsletter.id: 1}

    joined = subscribe_existing(session, newsletter, RequestContext(channel="admin"))
    assert joined == 2
    members = session.scalars(select(Subscriber.email).join(
        NewsletterSubscription, NewsletterSubscription.subscriber_id == Subscriber.id)
        .where(NewsletterSubscription.newsletter_id == newsletter.id)).all()
    assert sorted(members) == ["all@example.org", "already@example.org", "politics@example.org"]
    events = session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "newsletter-added")).all()
    assert sorted(e.subscriber_id for e in events) == sorted(
        session.scalars(select(Subscriber.id).where(Subscriber.email.in_(["all@example.org", "politics@example.org"]))))
    assert {(e.channel, e.detail["newsletter"]) for e in events} == {("admin", "politics-daily")}  # type: ignore[index]
    assert already.id not in [e.subscriber_id for e in events]
    assert subscriber_counts(session) == {newsletter.id: 3}
    assert subscribe_existing(session, newsletter, RequestContext(channel="admin")) == 0  # twice: nobody more


def test_a_finished_edition_keeps_no_stale_reason(session: Session) -> None:
    """Reopened to retry its failures, then finished: "retrying failed deliveries" is over."""
    sent_edition = edition(session, topics=None)
    sent_edition.status = EditionStatus.SENT
    session.commit()
    now = utcnow()
    assert lifecycle.reopen(session, sent_edition.id, now, "retry-failed") == (True, True)
    session.commit()
    session.refresh(sent_edition)
    assert sent_edition.status_reason == "retrying failed deliveries"
    assert lifecycle.finish_if_complete(session, sent_edition.id, now)
    session.commit()
    session.refresh(sent_edition)
    assert (sent_edition.status, sent_edition.status_reason, sent_edition.status_code) == (
        EditionStatus.SENT, None, None)
