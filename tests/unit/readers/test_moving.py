"""Moving in and out: other services' subscriber exports imported with their statuses
(departed addresses suppressed, never mailed), detected from the header, idempotent; the
moving-out export read back into an empty database."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.delivery import ledger
from digest.readers.formats import clean_ip
from digest.readers import (
    ImportOptions,
    InvalidReader,
    ReaderFilter,
    RequestContext,
    add_subscriber,
    confirm,
    detect_file_service,
    email_hash,
    export_lines,
    import_file,
    request_subscription,
    unsubscribe,
)
from digest.store import (
    ConsentEvent,
    Delivery,
    Edition,
    EditionStatus,
    Newsletter,
    NewsletterSubscription,
    Notice,
    Subscriber,
    SubscriberTopic,
    Suppression,
    utcnow,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "imports"
TOPICS = ["politics", "world", "business", "sports"]
MAILCHIMP = {status: FIXTURES / f"mailchimp/{status}_members_export_7f3a9c.csv"
             for status in ("subscribed", "unsubscribed", "cleaned")}
FILES = {
    "substack": FIXTURES / "substack/email_list.my-paper.csv",
    "ghost": FIXTURES / "ghost/member-export-2026-11-30.csv",
    "listmonk": FIXTURES / "listmonk/subscribers.csv",
    "beehiiv": FIXTURES / "beehiiv/subscribers_export_2026-11-30.csv",
    "csv": FIXTURES / "digest/readers-20261130-0900.csv",
}
SIGN_UP = RequestContext(channel="form")


@pytest.fixture
def newsletters(session: Session) -> dict[str, int]:
    ids = {}
    for slug in ("morning", "evening"):
        row = Newsletter(slug=slug, name=slug.title(), cron="0 7 * * *", timezone="UTC",
                         subject_template="{{ newsletter }}")
        session.add(row)
        session.flush()
        ids[slug] = row.id
    return ids


def run(session: Session, path: Path, **options: object) -> object:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return import_file(session, stream, allowed_topics=TOPICS,
                           options=ImportOptions(file_name=path.name, **options))  # type: ignore[arg-type]


def statuses(session: Session) -> dict[str, str]:
    return {s.email_key: s.status.value for s in session.scalars(select(Subscriber))}


def suppressed(session: Session) -> dict[str, str]:
    return {h: r for h, r in session.execute(select(Suppression.email_hash, Suppression.reason))}


def file_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def snapshot(session: Session) -> tuple[object, ...]:
    return tuple(session.scalar(select(func.count()).select_from(model)) for model in
                 (Subscriber, ConsentEvent, Suppression, NewsletterSubscription, SubscriberTopic, Notice))


# ------------------------------------------------------------------ each service, with its statuses


def test_mailchimp_files_say_their_status_by_their_columns(session: Session, newsletters: dict[str, int]) -> None:
    reports = {status: run(session, path) for status, path in MAILCHIMP.items()}

    assert {s: (r.service, r.statuses) for s, r in reports.items()} == {  # type: ignore[attr-defined]
        "subscribed": ("mailchimp", {"subscribed": 29}),
        "unsubscribed": ("mailchimp", {"unsubscribed": 12}),
        "cleaned": ("mailchimp", {"cleaned": 8})}
    assert [line for line, _ in reports["subscribed"].errors] == [13]  # type: ignore[attr-defined]
    found = statuses(session)
    assert Counter(found.values()) == {"active": 29, "unsubscribed": 12, "bounced": 8}
    rows = file_rows(MAILCHIMP["subscribed"])
    first = rows[1]
    ann = session.scalar(select(Subscriber).where(Subscriber.email_key == first["Email Address"]))
    assert ann is not None and ann.name == f"{first['First Name']} {first['Last Name']}"
    event = session.scalar(select(ConsentEvent).where(ConsentEvent.subscriber_id == ann.id))
    assert event is not None and (event.kind, event.channel, event.ip) == ("subscribe", "import", first["CONFIRM_IP"])
    assert event.detail is not None
    assert event.detail["file"] == MAILCHIMP["subscribed"].name
    assert event.detail["opted_in_at"] == datetime.fromisoformat(first["OPTIN_TIME"]).replace(tzinfo=UTC).isoformat()
    # TAGS: a topic and a newsletter are kept, the rest reported.
    assert rows[0]["TAGS"] == '"Politics","Morning"'
    tagged = session.scalar(select(Subscriber).where(Subscriber.email_key == rows[0]["Email Address"]))
    assert tagged is not None and tagged.topics == ["politics"]
    assert set(session.scalars(select(NewsletterSubscription.newsletter_id)
                               .where(NewsletterSubscription.subscriber_id == tagged.id))) == {newsletters["morning"]}
    assert reports["subscribed"].unmatched_tags == {"vip": 5, "print subscriber": 5}  # type: ignore[attr-defined]


def test_mailchimp_status_option_for_a_file_without_one(session: Session) -> None:
    report = run(session, MAILCHIMP["subscribed"], status="pending")

    assert report.statuses == {"pending": 29}  # type: ignore[attr-defined]
    assert set(statuses(session).values()) == {"pending"}
    assert snapshot(session)[-1] == 0  # no confirmation without send_confirmations


@pytest.mark.parametrize(("service", "expected", "bad_lines"), [
    ("substack", {"subscribed": 28, "unsubscribed": 7}, [22]),
    ("ghost", {"subscribed": 25, "unsubscribed": 8}, [32]),
    ("listmonk", {"subscribed": 24, "unsubscribed": 3, "blocklisted": 4}, [27]),
    ("beehiiv", {"subscribed": 15, "unsubscribed": 4, "pending": 12, "cleaned": 4}, [19]),
    ("csv", {"subscribed": 15, "pending": 4, "unsubscribed": 4, "bounced": 4, "complained": 4}, [11]),
])
def test_each_service_is_imported_with_its_statuses(session: Session, newsletters: dict[str, int], service: str,
                                                    expected: dict[str, int], bad_lines: list[int]) -> None:
    report = run(session, FILES[service])

    assert report.service == service  # type: ignore[attr-defined]
    assert report.statuses == expected  # type: ignore[attr-defined]
    assert [line for line, _ in report.errors] == bad_lines  # type: ignore[attr-defined]
    assert report.rows == sum(expected.values()) + len(bad_lines)  # type: ignore[attr-defined]
    ours = {"subscribed": "active", "pending": "pending", "unsubscribed": "unsubscribed", "blocklisted": "unsubscribed",
            "cleaned": "bounced", "bounced": "bounced", "complained": "complained"}
    wanted: Counter[str] = Counter()
    for status, n in expected.items():
        wanted[ours[status]] += n
    assert Counter(statuses(session).values()) == wanted


def test_listmonk_per_list_status_unconfirmed_is_pending(session: Session) -> None:
    report = run(session, FIXTURES / "listmonk/list-morning-subscribers.csv")
    assert report.statuses == {"subscribed": 4, "pending": 4, "unsubscribed": 4}  # type: ignore[attr-defined]


# ------------------------------------------------------------------ nothing departed is mailed


def test_departed_addresses_are_suppressed_and_never_mailed(session: Session, newsletters: dict[str, int]) -> None:
    for path in [*MAILCHIMP.values(), *FILES.values()]:
        run(session, path)
    readers = list(session.scalars(select(Subscriber)))
    departed = {s.email_key for s in readers if s.status.value in ("unsubscribed", "bounced", "complained")}
    assert len(departed) > 40
    hashes = suppressed(session)
    assert {email_hash(k) for k in departed} == set(hashes)
    assert set(hashes.values()) == {"unsubscribed", "bounced", "complained", "blocklisted"}

    edition = Edition(subject="Today", send_at=utcnow(), status=EditionStatus.SCHEDULED, max_stories=5, window_hours=48)
    session.add(edition)
    session.flush()
    ledger.plan(session, edition, utcnow())
    mailed = set(session.scalars(select(Subscriber.email_key).join(Delivery, Delivery.subscriber_id == Subscriber.id)))
    assert mailed == {s.email_key for s in readers if s.status.value == "active"}
    assert not mailed & departed

    # A later sign-up of an address that bounced, complained or was blocklisted sends
    # nothing and changes nothing; one that unsubscribed is the person's own choice, which
    # their new sign-up undoes with a confirmation like anyone's (double opt-in again).
    said_no = sorted(k for k in departed if hashes[email_hash(k)] != "unsubscribed")
    left = sorted(k for k in departed if hashes[email_hash(k)] == "unsubscribed")
    assert len(said_no) >= 5 and len(left) >= 5
    before = snapshot(session)
    for key in said_no[:5]:
        assert request_subscription(session, key, name=None, topics=[], allowed_topics=TOPICS, ctx=SIGN_UP) == (None, False)
    assert snapshot(session) == before
    for key in left[:2]:
        reader, confirm_now = request_subscription(session, key, name=None, topics=[], allowed_topics=TOPICS,
                                                   ctx=SIGN_UP)
        assert confirm_now and reader is not None and reader.status.value == "pending"
        assert suppressed(session)[email_hash(key)] == "unsubscribed"  # still blocked until they confirm
        assert confirm(session, reader, SIGN_UP)
        assert email_hash(key) not in suppressed(session)


def test_a_later_file_that_says_a_reader_left_makes_them_leave(session: Session) -> None:
    run(session, MAILCHIMP["subscribed"])
    gone = file_rows(MAILCHIMP["subscribed"])[3]["Email Address"]
    native = add_subscriber(session, "native@example.com", allowed_topics=TOPICS, confirmed=True)
    unsubscribe(session, native, SIGN_UP)
    header, *rows = MAILCHIMP["unsubscribed"].read_text().splitlines()
    later = "\n".join([header, rows[0].replace(rows[0].split(",")[0], f'"{gone}"', 1),
                       rows[1].replace(rows[1].split(",")[0], '"native@example.com"', 1)]) + "\n"

    report = import_file(session, later, allowed_topics=TOPICS)

    assert (report.imported, report.duplicates, report.left) == (0, 2, [(2, gone)])
    reader = session.scalar(select(Subscriber).where(Subscriber.email_key == gone))
    assert reader is not None and reader.status.value == "unsubscribed" and reader.unsubscribe_channel == "import"
    assert [e.kind for e in session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == reader.id)
                                            .order_by(ConsentEvent.id))] == ["subscribe", "unsubscribe"]
    assert set(suppressed(session)) == {email_hash(gone), email_hash("native@example.com")}
    before = snapshot(session)
    assert import_file(session, later, allowed_topics=TOPICS).left == []
    assert snapshot(session) == before


def test_pending_readers_get_a_confirmation_only_when_asked(session: Session) -> None:
    report = run(session, FILES["beehiiv"], send_confirmations=True)

    notices = list(session.scalars(select(Notice)))
    assert len(notices) == len(report.notice_ids) == 12  # type: ignore[attr-defined]
    assert {n.kind for n in notices} == {"confirm"}
    pending = set(session.scalars(select(Subscriber.id).where(Subscriber.status == "pending")))
    assert {n.subscriber_id for n in notices} == pending


# ------------------------------------------------------------------ idempotent


def test_a_second_import_changes_nothing(session: Session, newsletters: dict[str, int]) -> None:
    paths = [*MAILCHIMP.values(), *FILES.values()]
    for path in paths:
        run(session, path)
    before = (snapshot(session), statuses(session), suppressed(session))

    again = [run(session, path) for path in paths]

    assert (snapshot(session), statuses(session), suppressed(session)) == before
    assert sum(r.imported for r in again) == 0  # type: ignore[attr-defined]
    assert sum(r.duplicates for r in again) == len(before[1])  # type: ignore[attr-defined]


# ------------------------------------------------------------------ detection and bad input


@pytest.mark.parametrize("path", [*MAILCHIMP.values(), *FILES.values(), FIXTURES / "listmonk/list-morning-subscribers.csv"])
def test_the_service_is_detected_from_the_header(path: Path) -> None:
    expected = {"digest": "csv"}.get(path.parent.name, path.parent.name)
    with path.open(encoding="utf-8-sig", newline="") as stream:
        assert detect_file_service(stream) == expected


def test_detection_only_reads_the_header() -> None:
    assert detect_file_service("email,name\n") == "csv"
    assert detect_file_service('"Email Address","First Name"\n') == "mailchimp"
    with pytest.raises(InvalidReader, match="'email' column"):
        detect_file_service("address,name\nann@example.com,Ann\n")


def test_a_named_service_needs_its_address_column(session: Session) -> None:
    with pytest.raises(InvalidReader, match="'Email Address'|'email address'"):
        import_file(session, "email,name\nann@example.com,Ann\n", allowed_topics=TOPICS,
                    options=ImportOptions(service="mailchimp"))


def test_bad_rows_are_reported_with_their_line_and_the_rest_imported(session: Session) -> None:
    text = ("email,status,created_at\n"
            "ann@example.com,active,2024-01-02T03:04:05Z\n"
            "\"multi\nline\"@example.com,active,\n"
            "bob@example.com,maybe,\n"
            "cara@example.com,active,yesterday\n"
            "dan@example.com,bounced,\n")
    report = import_file(session, text, allowed_topics=TOPICS)

    assert [line for line, _ in report.errors] == [4, 5, 6]
    assert "unknown status 'maybe'" in report.errors[1][1] and "yesterday" in report.errors[2][1]
    assert statuses(session) == {"ann@example.com": "active", "dan@example.com": "bounced"}
    ann = session.scalar(select(Subscriber).where(Subscriber.email_key == "ann@example.com"))
    assert ann is not None and ann.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


# ------------------------------------------------------------------ moving out


def test_export_round_trip_gives_the_same_readers(session: Session, newsletters: dict[str, int]) -> None:
    for path in [*MAILCHIMP.values(), *FILES.values()]:
        run(session, path)
    exported = "".join(export_lines(session, ReaderFilter()))
    as_json = json.loads("".join(export_lines(session, ReaderFilter(), "json")))
    assert len(as_json) == len(statuses(session)) == exported.count("\r\n") - 1

    def readers() -> list[tuple[object, ...]]:
        return sorted((s.email, s.name, s.status.value, tuple(s.topics), s.created_at, s.confirmed_at)
                      for s in session.scalars(select(Subscriber)))

    def taken() -> Counter[tuple[str, str]]:
        return Counter((k, s) for k, s in session.execute(select(Subscriber.email_key, Newsletter.slug)
                                       .join(NewsletterSubscription, NewsletterSubscription.subscriber_id == Subscriber.id)
                                       .join(Newsletter, Newsletter.id == NewsletterSubscription.newsletter_id)))

    before = (readers(), taken(), set(suppressed(session)))
    for model in (NewsletterSubscription, SubscriberTopic, ConsentEvent, Subscriber, Suppression):
        session.execute(model.__table__.delete())  # type: ignore[attr-defined]

    report = import_file(session, exported, allowed_topics=TOPICS, options=ImportOptions(file_name="out.csv"))

    assert (report.service, report.errors) == ("csv", [])
    assert (readers(), taken(), set(suppressed(session))) == before
    assert as_json[0].keys() >= {"email", "status", "topics", "newsletters", "created_at", "confirmed_at", "opt_in_ip"}


def test_the_json_export_imports_back_line_by_line(session: Session, newsletters: dict[str, int]) -> None:
    run(session, FILES["csv"])
    run(session, FILES["ghost"])
    exported = "".join(export_lines(session, ReaderFilter(), "json"))
    before = (sorted((s.email, s.status.value, tuple(s.topics), s.created_at) for s in session.scalars(select(Subscriber))),
              set(suppressed(session)))
    for model in (NewsletterSubscription, SubscriberTopic, ConsentEvent, Subscriber, Suppression):
        session.execute(model.__table__.delete())  # type: ignore[attr-defined]

    assert detect_file_service(exported) == "json"
    report = import_file(session, exported, allowed_topics=TOPICS)

    assert (report.service, report.errors, report.imported) == ("json", [], len(before[0]))
    assert (sorted((s.email, s.status.value, tuple(s.topics), s.created_at) for s in session.scalars(select(Subscriber))),
            set(suppressed(session))) == before
    broken = exported.splitlines()
    broken[3] = broken[3][:20]
    with pytest.raises(InvalidReader, match="the JSON cannot be read at line 4"):
        import_file(session, "\n".join(broken), allowed_topics=TOPICS)


def test_the_export_of_a_status_and_an_empty_json_export(session: Session) -> None:
    run(session, FILES["beehiiv"])
    lines = "".join(export_lines(session, ReaderFilter(status="pending"))).splitlines()
    assert len(lines) == 13 and all(",pending," in line for line in lines[1:])
    assert json.loads("".join(export_lines(session, ReaderFilter(q="nobody"), "json"))) == []


@pytest.mark.parametrize(("raw", "kept"), [
    ("203.0.113.7", "203.0.113.7"), (" 198.51.100.1 ", "198.51.100.1"), ("2001:DB8::1", "2001:db8::1"),
    ("::ffff:192.0.2.1", "::ffff:c000:201"), ("010.0.0.1", None), ("1.2.3", None), ("999.1.1.1", None),
    ("1.2.3.4\x00", None), ("\x00", None), ("not an ip", None), ("", None), (None, None),
])
def test_an_opt_in_ip_is_kept_in_its_canonical_form_or_dropped(raw: str | None, kept: str | None) -> None:
    assert clean_ip(raw) == kept
