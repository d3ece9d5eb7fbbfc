"""Readers as staff see them: search and filters (address, name, status, newsletter, topic,
paging), one reader's history, the CSV export; and what staff may change for a reader."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import Invalid
from digest.readers import (
    InvalidReader,
    NotPending,
    ReaderErased,
    ReaderFilter,
    ReaderNotFound,
    RequestContext,
    add_subscriber,
    change_newsletters,
    change_topics,
    count_readers,
    erase,
    export_csv,
    import_csv,
    newsletters_of,
    reader_history,
    resend_confirmation,
    search_readers,
    subscribed_ids,
    unsubscribe,
)
from digest.store.models import (
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    ErrorCode,
    Newsletter,
    NewsletterSubscription,
    Notice,
    NoticeStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)

TOPICS = ["politics", "world", "business", "sports"]
ADMIN = RequestContext(channel="admin")


def newsletter(session: Session, slug: str, active: bool = True) -> Newsletter:
    row = Newsletter(slug=slug, name=slug.replace("-", " ").title(), cron="0 7 * * *", timezone="UTC",
                     subject_template="{{ newsletter }}", active=active)
    session.add(row)
    session.flush()
    return row


def reader(session: Session, address: str, *, name: str | None = None, topics: str | None = None,
           confirmed: bool = True) -> Subscriber:
    return add_subscriber(session, address, allowed_topics=TOPICS, name=name, topics=topics, confirmed=confirmed)


def emails(found: tuple[list[Subscriber], int]) -> tuple[list[str], int]:
    rows, total = found
    return [s.email for s in rows], total


@pytest.fixture
def roster(session: Session) -> dict[str, Subscriber]:
    """Six readers, newest last, every status but complained; two newsletters made after
    them (so nobody takes them by default): Ann takes the morning one, Bob the evening one."""
    people = {
        "ann": reader(session, "ann.lee@example.com", name="Ann Lee", topics="politics"),
        "bob": reader(session, "bob@example.org", name="Robert Ann-Marie", topics="world,sports"),
        "cara": reader(session, "cara@example.com", name="Cara", confirmed=False),
        "dan": reader(session, "dan_100%@example.com", name="Dan"),
        "eve": reader(session, "eve@example.net", name=None, topics="sports"),
        "fay": reader(session, "fay@example.com", name="Fay"),
    }
    morning = newsletter(session, "morning")
    evening = newsletter(session, "evening")
    change_newsletters(session, people["ann"], [morning.id], ctx=ADMIN)
    change_newsletters(session, people["bob"], [evening.id], ctx=ADMIN)
    unsubscribe(session, people["eve"], ADMIN)
    people["fay"].status = SubscriberStatus.BOUNCED
    session.flush()
    return people


# ------------------------------------------------------------------ search and filters


def test_everyone_newest_first_with_the_total(session: Session, roster: dict[str, Subscriber]) -> None:
    found, total = emails(search_readers(session, ReaderFilter()))

    assert total == 6
    assert found == ["fay@example.com", "eve@example.net", "dan_100%@example.com", "cara@example.com",
                     "bob@example.org", "ann.lee@example.com"]


@pytest.mark.parametrize(("q", "expected"), [
    ("ANN", ["bob@example.org", "ann.lee@example.com"]),  # the name too, any case
    ("example.com", ["fay@example.com", "dan_100%@example.com", "cara@example.com", "ann.lee@example.com"]),
    ("  cara@EXAMPLE.com ", ["cara@example.com"]),
    ("100%", ["dan_100%@example.com"]),  # LIKE's wildcards are only characters here
    ("_", ["dan_100%@example.com"]),
    ("%", ["dan_100%@example.com"]),
    ("nobody", []),
])
def test_q_finds_part_of_an_address_or_a_name(session: Session, roster: dict[str, Subscriber], q: str,
                                              expected: list[str]) -> None:
    assert emails(search_readers(session, ReaderFilter(q=q))) == (expected, len(expected))


def test_filters_by_status_newsletter_and_topic_combine(session: Session, roster: dict[str, Subscriber]) -> None:
    morning, evening = (session.scalar(select(Newsletter.id).where(Newsletter.slug == slug))
                        for slug in ("morning", "evening"))

    assert emails(search_readers(session, ReaderFilter(status="pending"))) == (["cara@example.com"], 1)
    assert emails(search_readers(session, ReaderFilter(status="unsubscribed"))) == (["eve@example.net"], 1)
    assert emails(search_readers(session, ReaderFilter(newsletter_id=morning))) == (["ann.lee@example.com"], 1)
    assert emails(search_readers(session, ReaderFilter(topic="Sports"))) == (
        ["eve@example.net", "bob@example.org"], 2)
    assert emails(search_readers(session, ReaderFilter(topic="sports", status="active"))) == (["bob@example.org"], 1)
    assert emails(search_readers(session, ReaderFilter(topic="sports", newsletter_id=evening, q="bob"))) == (
        ["bob@example.org"], 1)
    assert emails(search_readers(session, ReaderFilter(topic="sports", newsletter_id=morning))) == ([], 0)
    assert emails(search_readers(session, ReaderFilter(newsletter_id=10_000))) == ([], 0)
    assert emails(search_readers(session, ReaderFilter(topic="astrology"))) == ([], 0)


def test_an_unknown_status_is_invalid(session: Session, roster: dict[str, Subscriber]) -> None:
    with pytest.raises(Invalid, match="status must be one of pending, active"):
        search_readers(session, ReaderFilter(status="sleeping"))


def test_pages_keep_the_total_and_bound_the_limit(session: Session, roster: dict[str, Subscriber]) -> None:
    assert emails(search_readers(session, ReaderFilter(limit=2, offset=2))) == (
        ["dan_100%@example.com", "cara@example.com"], 6)
    assert emails(search_readers(session, ReaderFilter(limit=2, offset=6))) == ([], 6)
    assert len(search_readers(session, ReaderFilter(limit=0))[0]) == 1
    assert len(search_readers(session, ReaderFilter(limit=10**9))[0]) == 6
    assert count_readers(session, ReaderFilter(status="active", limit=1)) == 3


def test_newsletters_of_a_page_of_readers(session: Session, roster: dict[str, Subscriber]) -> None:
    found = newsletters_of(session, [roster["ann"].id, roster["cara"].id])

    assert list(found) == [roster["ann"].id, roster["cara"].id]
    assert len(found[roster["ann"].id]) == 1 and found[roster["cara"].id] == []
    assert newsletters_of(session, []) == {}


# ------------------------------------------------------------------ history


def test_a_readers_history_holds_consent_deliveries_notices_and_feedback(
        session: Session, roster: dict[str, Subscriber]) -> None:
    ann = roster["ann"]
    now = utcnow()
    editions = [Edition(subject=f"Edition {i}", send_at=now, status=EditionStatus.SENT) for i in range(4)]
    session.add_all(editions)
    session.flush()
    session.add_all([
        Delivery(edition_id=editions[0].id, subscriber_id=ann.id, status=DeliveryStatus.SENT,
                 sent_at=now - timedelta(days=3)),
        Delivery(edition_id=editions[1].id, subscriber_id=ann.id, status=DeliveryStatus.SENT,
                 sent_at=now - timedelta(days=2), error_code=ErrorCode.SOFT_BOUNCE, last_error="soft bounce (dsn): 4.2.2"),
        Delivery(edition_id=editions[2].id, subscriber_id=ann.id, status=DeliveryStatus.BOUNCED,
                 attempted_at=now - timedelta(days=1), error_code=ErrorCode.HARD_BOUNCE, last_error="550 no such user"),
        Delivery(edition_id=editions[3].id, subscriber_id=ann.id, status=DeliveryStatus.QUEUED),
        Delivery(edition_id=editions[3].id, subscriber_id=roster["bob"].id, status=DeliveryStatus.SENT, sent_at=now),
        Notice(subscriber_id=ann.id, kind="welcome", status=NoticeStatus.SENT, sent_at=now - timedelta(days=4)),
        ConsentEvent(subscriber_id=ann.id, kind="complaint", channel="arf", at=now, detail={"feedback_type": "abuse"}),
    ])
    session.flush()

    history = reader_history(session, ann.id)

    assert history.subscriber.email == "ann.lee@example.com"
    assert [n.slug for n in history.newsletters] == ["morning"]
    assert [(c.kind, c.channel) for c in history.consent] == [
        ("subscribe", "cli"), ("preferences", "admin"), ("complaint", "arf")]
    assert history.deliveries_total == 4
    assert [(d.subject, d.status) for d in history.deliveries] == [
        ("Edition 3", "queued"), ("Edition 2", "bounced"), ("Edition 1", "sent"), ("Edition 0", "sent")]
    assert history.deliveries[0].at is None and history.deliveries[1].error == "550 no such user"
    assert [n.kind for n in history.notices] == ["welcome"]
    assert [(f.kind, f.about, f.detail) for f in history.feedback] == [
        ("complaint", "through arf", "abuse"),
        ("hard bounce", f"edition {editions[2].id}: Edition 2", "550 no such user"),
        ("soft bounce", f"edition {editions[1].id}: Edition 1", "soft bounce (dsn): 4.2.2")]

    page = reader_history(session, ann.id, deliveries_limit=2, deliveries_offset=2)
    assert [d.subject for d in page.deliveries] == ["Edition 1", "Edition 0"] and page.deliveries_total == 4


def test_an_unknown_reader_is_not_found(session: Session) -> None:
    with pytest.raises(ReaderNotFound) as raised:
        reader_history(session, 404)
    assert raised.value.code == "reader_not_found"


# ------------------------------------------------------------------ export


def parse(chunks: list[str]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(chunks))))


def test_the_export_is_the_filter_every_page_of_it_and_imports_back(
        session: Session, roster: dict[str, Subscriber], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digest.readers.directory.EXPORT_CHUNK_ROWS", 2)
    chunks = list(export_csv(session, ReaderFilter(status="active", limit=1, offset=5)))

    assert chunks[0] == "email,name,status,topics,newsletters,created_at\r\n"
    assert len(chunks) == 3  # the header and two chunks of at most two
    rows = parse(chunks)
    assert [(r["email"], r["name"], r["status"], r["topics"], r["newsletters"]) for r in rows] == [
        ("ann.lee@example.com", "Ann Lee", "active", "politics", "morning"),
        ("bob@example.org", "Robert Ann-Marie", "active", "sports;world", "evening"),
        ("dan_100%@example.com", "Dan", "active", "", ""),
    ]
    assert rows[0]["created_at"] == roster["ann"].created_at.isoformat()

    session.execute(NewsletterSubscription.__table__.delete())
    session.execute(ConsentEvent.__table__.delete())
    session.execute(Subscriber.__table__.delete())
    report = import_csv(session, "".join(chunks), allowed_topics=TOPICS)
    assert (report.imported, report.errors) == (3, [])
    assert reader_history(session, search_readers(session, ReaderFilter(q="bob"))[0][0].id).subscriber.topics == [
        "sports", "world"]


def test_the_export_defuses_spreadsheet_formulas_in_names(session: Session) -> None:
    reader(session, "a@example.com", name="=HYPERLINK(\"http://evil\")")
    reader(session, "b@example.com", name="@SUM(1)")
    reader(session, "c@example.com", name="Plain -name")

    names = [r["name"] for r in parse(list(export_csv(session, ReaderFilter())))]

    assert names == ["'=HYPERLINK(\"http://evil\")", "'@SUM(1)", "Plain -name"]


def test_an_empty_export_is_the_header(session: Session) -> None:
    assert list(export_csv(session, ReaderFilter(q="nobody"))) == ["email,name,status,topics,newsletters,created_at\r\n"]


# ------------------------------------------------------------------ what staff change for a reader


def test_staff_change_topics_with_a_consent_event(session: Session, roster: dict[str, Subscriber]) -> None:
    bob = roster["bob"]

    assert change_topics(session, bob, ["Business", "world"], allowed_topics=TOPICS, ctx=ADMIN) is True
    assert change_topics(session, bob, ["world", "business"], allowed_topics=TOPICS, ctx=ADMIN) is False
    with pytest.raises(InvalidReader, match="astrology"):
        change_topics(session, bob, ["astrology"], allowed_topics=TOPICS, ctx=ADMIN)

    assert bob.topics == ["business", "world"]
    [event] = [c for c in reader_history(session, bob.id).consent if c.detail and "topics_were" in c.detail]
    assert (event.kind, event.channel, event.detail) == (
        "preferences", "admin", {"topics": ["business", "world"], "topics_were": ["sports", "world"]})
    assert bob.status == SubscriberStatus.ACTIVE


def test_staff_change_newsletters_never_touching_the_status(session: Session,
                                                           roster: dict[str, Subscriber]) -> None:
    eve = roster["eve"]
    morning = session.scalar(select(Newsletter.id).where(Newsletter.slug == "morning"))

    assert change_newsletters(session, eve, [morning], ctx=ADMIN) is True
    assert change_newsletters(session, eve, [morning, morning], ctx=ADMIN) is False
    with pytest.raises(InvalidReader, match="unknown newsletter"):
        change_newsletters(session, eve, [morning, 10_000], ctx=ADMIN)

    assert subscribed_ids(session, eve.id) == {morning}
    assert eve.status == SubscriberStatus.UNSUBSCRIBED  # choosing for a leaver does not bring them back
    assert change_newsletters(session, eve, [], ctx=ADMIN) is True
    assert subscribed_ids(session, eve.id) == set()


def test_a_fresh_confirmation_only_for_a_pending_reader_once_a_minute(
        session: Session, roster: dict[str, Subscriber]) -> None:
    cara = roster["cara"]
    now = utcnow()

    first = resend_confirmation(session, cara, now)
    assert first is not None and session.get_one(Notice, first).kind == "confirm"
    assert resend_confirmation(session, cara, now + timedelta(seconds=30)) is None
    assert resend_confirmation(session, cara, now + timedelta(seconds=61)) not in (None, first)
    for who in ("ann", "eve", "fay"):
        with pytest.raises(NotPending, match=f"is {roster[who].status.value}: only a pending reader"):
            resend_confirmation(session, roster[who], now)


def test_an_erased_reader_cannot_be_changed(session: Session, roster: dict[str, Subscriber]) -> None:
    cara = roster["cara"]
    erase(session, cara, ADMIN)

    for change in (lambda: change_topics(session, cara, [], allowed_topics=TOPICS, ctx=ADMIN),
                   lambda: change_newsletters(session, cara, [], ctx=ADMIN),
                   lambda: resend_confirmation(session, cara)):
        with pytest.raises(ReaderErased) as raised:
            change()
        assert raised.value.code == "reader_erased"
