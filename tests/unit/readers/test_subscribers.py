"""Readers: addresses normalised and unique regardless of case; CSV import reports bad rows
by line and imports the rest."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import digest.readers.roster
from digest.readers import (
    AlreadySubscribed,
    InvalidReader,
    add_subscriber,
    clean_name,
    count_csv_rows,
    import_csv,
    normalise_email,
)
from digest.store.models import Subscriber, SubscriberStatus, SubscriberTopic
from tests.support.queries import count_rows

TOPICS = ["politics", "world", "business", "sports"]


def add(session: Session, address: str, **options: object) -> Subscriber:
    return add_subscriber(session, address, allowed_topics=TOPICS, **options)  # type: ignore[arg-type]


def by_key(session: Session) -> dict[str, Subscriber]:
    return {s.email_key: s for s in session.scalars(select(Subscriber))}


# ------------------------------------------------------------------ addresses


@pytest.mark.parametrize(
    ("raw", "normalised", "key"),
    [
        ("Foo@Example.com", "Foo@example.com", "foo@example.com"),
        ("  ann@example.org  ", "ann@example.org", "ann@example.org"),
        ("ANN.LEE+news@Mail.Example.ORG", "ANN.LEE+news@mail.example.org", "ann.lee+news@mail.example.org"),
        # An internationalised domain is kept in its ASCII (IDNA) form.
        ("ann@bücher.example", "ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example"),
    ],
)
def test_normalise_email(raw: str, normalised: str, key: str) -> None:
    assert normalise_email(raw) == (normalised, key)


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "plainaddress", "@example.com", "ann@", "ann@@example.com", "ann lee@example.com",
     "ann@example", "ann@-example.com", "ann@example..com", "ann@example.com\r\nBcc: x@example.com",
     "ann@example.com\n", "ann\x00@example.com", "Ann <ann@example.com>",
     # No SMTPUTF8: the builders write addresses in ASCII, so a non-ASCII local part is refused.
     "zoë@example.com"],
)
def test_invalid_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidReader):
        normalise_email(raw)


def test_uniqueness_ignores_case(session: Session) -> None:
    add(session, "Foo@Example.com")

    with pytest.raises(AlreadySubscribed):
        add(session, "foo@example.COM")
    assert count_rows(session, Subscriber) == 1


def test_new_reader_is_pending_with_a_long_random_token(session: Session) -> None:
    one = add(session, "a@example.com")
    two = add(session, "b@example.com", confirmed=True)

    assert one.status == SubscriberStatus.PENDING and one.confirmed_at is None
    assert two.status == SubscriberStatus.ACTIVE and two.confirmed_at is not None
    assert one.token != two.token
    assert len(one.token) >= 43  # 256 bits, URL-safe base64


# ------------------------------------------------------------------ names and topics


@pytest.mark.parametrize("name", ["Ann\r\nBcc: x@example.com", "Ann\nLee", "Ann\rLee", "Ann\x00"])
def test_names_with_line_breaks_are_refused(session: Session, name: str) -> None:
    with pytest.raises(InvalidReader, match="name must be a single line"):
        add(session, "ann@example.com", name=name)
    assert count_rows(session, Subscriber) == 0


def test_name_whitespace_is_collapsed_and_length_capped() -> None:
    assert clean_name("  Ann \t  Lee ") == "Ann Lee"
    assert clean_name("   ") is None
    assert clean_name("x" * 200) == "x" * 200
    with pytest.raises(InvalidReader, match="longer than 200"):
        clean_name("x" * 201)


def test_unknown_topics_are_refused(session: Session) -> None:
    with pytest.raises(InvalidReader, match="unknown topic.*astrology"):
        add(session, "ann@example.com", topics="politics,astrology")
    assert count_rows(session, Subscriber) == 0


def test_topics_are_normalised_and_stored(session: Session) -> None:
    reader = add(session, "ann@example.com", topics=" World; POLITICS,world,, ")

    assert reader.topics == ["politics", "world"]
    assert count_rows(session, SubscriberTopic) == 2


# ------------------------------------------------------------------ CSV import


CSV = """email,name,topics
ann@example.com,Ann,politics
not-an-email,Bob,
ANN@EXAMPLE.COM,Ann again,
carl@example.com,Carl,astrology
dora@example.com,"Dora, Dr.",world;business
eve@example.com,"Eve
Two Lines",
,,
fred@example.com,,sports
"""


def test_import_reports_bad_rows_by_line_and_imports_the_rest(session: Session) -> None:
    report = import_csv(session, CSV, allowed_topics=TOPICS)

    assert [line for line, _ in report.errors] == [3, 5, 8, 9]
    messages = dict(report.errors)
    assert "not-an-email" in messages[3]
    assert "astrology" in messages[5]
    assert "single line" in messages[8]
    assert report.imported == 3
    assert report.duplicates == 1
    readers = by_key(session)
    assert sorted(readers) == ["ann@example.com", "dora@example.com", "fred@example.com"]
    assert readers["dora@example.com"].name == "Dora, Dr."
    assert readers["dora@example.com"].topics == ["business", "world"]
    assert readers["fred@example.com"].topics == ["sports"]
    assert readers["ann@example.com"].name == "Ann"  # the first row of a duplicate wins
    assert all(r.status == SubscriberStatus.PENDING and r.consent_source == "import" for r in readers.values())


def test_import_counts_readers_already_on_the_list_as_duplicates(session: Session) -> None:
    add(session, "Ann@example.com", name="Original")

    report = import_csv(session, "email\nann@example.com\nnew@example.com\n", allowed_topics=TOPICS, confirmed=True)

    assert (report.imported, report.duplicates, report.errors) == (1, 1, [])
    readers = by_key(session)
    assert readers["ann@example.com"].name == "Original"
    assert readers["new@example.com"].status == SubscriberStatus.ACTIVE


def test_import_across_chunks_finds_duplicates_and_saves_topics(session: Session,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest.readers.roster, "IMPORT_CHUNK_ROWS", 2)
    rows = [f"r{i}@example.com,R{i},world" for i in range(7)] + ["R3@example.com,dup,", "R0@Example.com,dup,"]
    progress: list[int] = []

    report = import_csv(session, "email,name,topics\n" + "\n".join(rows) + "\n", allowed_topics=TOPICS,
                        progress=progress.append)

    assert (report.imported, report.duplicates, report.errors) == (7, 2, [])
    assert sum(progress) == 9
    assert count_rows(session, Subscriber) == 7
    assert count_rows(session, SubscriberTopic) == 7
    assert len({s.token for s in session.scalars(select(Subscriber))}) == 7


def test_import_header_columns_are_case_and_space_insensitive(session: Session) -> None:
    report = import_csv(session, " Email , NAME ,Topics\nann@example.com,Ann,world\n", allowed_topics=TOPICS)

    assert report.imported == 1
    assert by_key(session)["ann@example.com"].topics == ["world"]


@pytest.mark.parametrize("text", ["", "name,topics\nAnn,world\n", "\n\n"])
def test_import_without_an_email_column_is_refused(session: Session, text: str) -> None:
    with pytest.raises(InvalidReader, match="'email' column"):
        import_csv(session, text, allowed_topics=TOPICS)
    assert count_rows(session, Subscriber) == 0


def test_import_lists_the_rows_it_left_alone_by_line(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest.readers.roster, "IMPORT_CHUNK_ROWS", 2)
    add(session, "old@example.com")

    report = import_csv(session, "email\na@example.com\nb@example.com\nA@example.com\nold@example.com\n"
                        "b@example.com\n", allowed_topics=TOPICS)

    assert (report.imported, report.duplicates, report.rows) == (2, 3, 5)
    assert report.skipped == [(4, "A@example.com is earlier in this file; left as it is"),
                              (5, "old@example.com is on the list already; left as it is"),
                              (6, "b@example.com is earlier in this file; left as it is")]


def test_import_never_brings_back_a_reader_who_left(session: Session) -> None:
    reader = add(session, "gone@example.com", confirmed=True)
    reader.status = SubscriberStatus.UNSUBSCRIBED
    session.flush()

    report = import_csv(session, "email,name\ngone@example.com,Back\n", allowed_topics=TOPICS, confirmed=True)

    assert (report.imported, report.duplicates) == (0, 1)
    session.refresh(reader)
    assert reader.status == SubscriberStatus.UNSUBSCRIBED and reader.name is None


def test_a_csv_line_that_cannot_be_read_refuses_the_file_by_line(session: Session) -> None:
    text = 'email,name\nann@example.com,Ann\nbob@example.com,"' + "x" * 200_000 + '"\n'

    with pytest.raises(InvalidReader, match="cannot be read at line 3"):
        import_csv(session, text, allowed_topics=TOPICS)
    with pytest.raises(InvalidReader, match="cannot be read at line 3"):
        count_csv_rows(text)


def test_count_csv_rows_counts_records_not_lines() -> None:
    assert count_csv_rows(CSV) == 8
    assert count_csv_rows("email\n") == 0
    with pytest.raises(InvalidReader, match="'email' column"):
        count_csv_rows("name\nAnn\n")
