"""A large import's two speed-ups, checked against the plain path on both databases: rows
copied (store.bulk: COPY on PostgreSQL) and the file read in a forked process
(readers.read_aside) give exactly the readers, topics, subscriptions, consent events,
suppressions and report that one process inserting row by row gives; a refused file and a
lost reading process leave nothing behind."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import digest.readers.roster
from digest.readers import ImportOptions, ImportReport, InvalidReader, ReaderLost, import_file
from digest.store import (
    ConsentEvent,
    Frequency,
    Newsletter,
    NewsletterSubscription,
    Subscriber,
    SubscriberTopic,
    Suppression,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "imports"
NOW = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
TOPICS = ["politics", "world", "business", "sports", "science"]
FILES = {
    "beehiiv": FIXTURES / "beehiiv/subscribers_export_2026-11-30.csv",
    "mailchimp": FIXTURES / "mailchimp/subscribed_members_export_7f3a9c.csv",
    "ghost": FIXTURES / "ghost/member-export-2026-11-30.csv",
}
# digest's CSV with an address repeated across chunks (of 7 rows, below) and bad rows.
OWN = ("email,name,topics,status\n" + "".join(f"r{n}@example.org,Reader {n},world,subscribed\n" for n in range(10))
       + "R3@Example.org,Again,,subscribed\nnot-an-address,,,subscribed\nr20@example.org,,astrology,pending\n"
       + "r21@example.org,,politics;world,unsubscribed\nr0@example.org,,,pending\n")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 rows: several chunks, and repeats that fall in another chunk; and one
    clock for every run, so the times an import fills in are the same in each."""
    monkeypatch.setattr(digest.readers.roster, "IMPORT_CHUNK_ROWS", 7)
    monkeypatch.setattr(digest.readers.roster, "utcnow", lambda: NOW)


def run(live: Stack, text: str, *, service: str | None, read_aside: bool) -> ImportReport:
    with live.factory.begin() as session:
        return import_file(session, io.StringIO(text), allowed_topics=TOPICS, read_aside=read_aside,
                           options=ImportOptions(service=service, file_name="export.csv"))


def snapshot(live: Stack) -> dict[str, Any]:
    """Everything an import writes, by address (ids and tokens differ from run to run)."""
    with live.factory() as session:
        email = {s.id: s.email for s in session.scalars(select(Subscriber))}
        slug = {n.id: n.slug for n in session.scalars(select(Newsletter))}
        return {
            "readers": sorted((s.email, s.email_key, s.name, s.status.value, s.created_at, s.confirmed_at,
                               s.unsubscribed_at, s.unsubscribe_channel, s.consent_source, s.frequency, s.soft_bounces)
                              for s in session.scalars(select(Subscriber))),
            "topics": sorted((email[t.subscriber_id], t.topic) for t in session.scalars(select(SubscriberTopic))),
            "subscriptions": sorted((email[n.subscriber_id], slug[n.newsletter_id], n.created_at is not None)
                                    for n in session.scalars(select(NewsletterSubscription))),
            "events": sorted((email[e.subscriber_id], e.kind, e.channel, e.ip, str(e.detail))
                             for e in session.scalars(select(ConsentEvent))),
            "suppressions": sorted((s.email_hash, s.reason) for s in session.scalars(select(Suppression))),
        }


def report_fields(report: ImportReport) -> dict[str, Any]:
    return {k: getattr(report, k) for k in ("rows", "imported", "duplicates", "suppressed", "errors", "skipped",
                                            "service", "statuses", "unmatched_tags")}


def add_newsletter(live: Stack) -> None:
    with live.factory.begin() as session:
        session.add(Newsletter(slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                               subject_template="Morning, {date}"))


@pytest.fixture
def with_newsletter(live: Stack) -> None:
    add_newsletter(live)


@pytest.mark.parametrize("name", [*FILES, "own"])
def test_read_aside_and_copied_rows_equal_the_plain_import(live: Stack, small_chunks: None, with_newsletter: None,
                                                           name: str) -> None:
    text = OWN if name == "own" else FILES[name].read_text(encoding="utf-8")
    service = "csv" if name == "own" else None

    plain = report_fields(run(live, text, service=service, read_aside=False))
    written = snapshot(live)
    live.reset()
    add_newsletter(live)
    aside = report_fields(run(live, text, service=service, read_aside=True))

    assert aside == plain
    assert snapshot(live) == written
    assert plain["imported"] > 5 and written["events"] and written["subscriptions"]
    assert {r[9] for r in written["readers"]} == {Frequency.EVERY} and {r[10] for r in written["readers"]} == {0}
    assert all(has_time for _, _, has_time in written["subscriptions"])
    if name == "own":
        assert plain["skipped"] == [(12, "R3@example.org is earlier in this file; left as it is"),
                                    (16, "r0@example.org is earlier in this file; left as it is")]
        assert [line for line, _ in plain["errors"]] == [13, 14]


@pytest.mark.parametrize(("text", "error"), [
    ("name,topics\nAnn,world\n", InvalidReader),  # no address column
    ("email\n" + "ok@example.org\n" * 3 + '"unclosed\n' + "x" * 200_000 + "\n", InvalidReader),  # a field past csv's limit
])
def test_a_file_the_reader_refuses_raises_here_and_writes_nothing(live: Stack, small_chunks: None, text: str,
                                                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        run(live, text, service=None, read_aside=True)
    assert snapshot(live)["readers"] == []


def test_bytes_that_are_not_utf8_raise_as_they_would_in_process(live: Stack, small_chunks: None,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"email,name\n" + b"".join(f"r{n}@example.org,R\n".encode() for n in range(20))
                     + "zoë@example.com,Zoë\n".encode("latin-1"))
    with live.factory.begin() as session, path.open(encoding="utf-8") as stream, pytest.raises(UnicodeDecodeError):
        import_file(session, stream, allowed_topics=TOPICS, read_aside=True)
    assert snapshot(live)["readers"] == []


def test_a_reading_process_that_dies_is_an_error_and_nothing_is_kept(live: Stack, small_chunks: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = digest.readers.roster._chunks

    def dies_after_one_chunk(*args: Any) -> Iterator[Any]:
        for chunk in chunks(*args):
            yield chunk
            os._exit(9)  # in the reading process: killed, as by the OOM killer

    monkeypatch.setattr(digest.readers.roster, "_chunks", dies_after_one_chunk)
    with pytest.raises(ReaderLost, match="exit 9"):
        run(live, OWN, service="csv", read_aside=True)
    assert snapshot(live)["readers"] == []  # the first chunk was written, and rolled back
