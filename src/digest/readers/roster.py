"""The list of readers: add one, import many (CSV, in chunks, never a query per row).

A reader added here by staff or an import is subscribed to every active newsletter; a
suppressed address (erased, bounced, complained) is never re-added.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from digest.errors import Conflict
from digest.readers.addresses import InvalidReader, clean_name, clean_topics, email_hash, new_token, normalise_email
from digest.readers.subscriptions import subscribe_to_all
from digest.store import ConsentEvent, Subscriber, SubscriberStatus, SubscriberTopic, Suppression, utcnow

IMPORT_CHUNK_ROWS = 1000
# The largest CSV the web page and the API take (~200,000 readers); the command line reads any.
CSV_UPLOAD_MAX_BYTES = 10 * 1024 * 1024


class AlreadySubscribed(Conflict):
    pass


class Suppressed(Conflict):
    """The address asked to be forgotten, bounced or complained: never re-added silently."""


def add_subscriber(
    session: Session,
    email: str,
    *,
    allowed_topics: list[str],
    name: str | None = None,
    topics: str | Iterable[str] | None = None,
    confirmed: bool = False,
    consent_source: str = "cli",
) -> Subscriber:
    address, key = normalise_email(email)
    clean = clean_name(name)
    chosen = clean_topics(topics, allowed_topics)
    if session.scalar(select(Subscriber.id).where(Subscriber.email_key == key)) is not None:
        raise AlreadySubscribed(f"{address} is already on the list")
    if session.get(Suppression, email_hash(key)) is not None:
        raise Suppressed(f"{address} is on the suppression list (erased, bounced or complained)")
    now = utcnow()
    subscriber = Subscriber(
        email=address,
        email_key=key,
        name=clean,
        status=SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING,
        token=new_token(),
        consent_source=consent_source,
        created_at=now,
        confirmed_at=now if confirmed else None,
    )
    subscriber.topic_rows = [SubscriberTopic(topic=t) for t in chosen]
    session.add(subscriber)
    session.flush()
    session.add(ConsentEvent(subscriber_id=subscriber.id, kind="subscribe", channel=consent_source,
                             detail={"confirmed": confirmed, "topics": chosen}))
    subscribe_to_all(session, [subscriber.id])
    return subscriber


@dataclass
class ImportReport:
    """What an import did. `errors`: the rows refused (bad, or suppressed), by line in the
    file; `skipped`: the rows left alone because the address is on the list already (its
    reader, whatever their state, is not touched: an import never brings back a reader who
    left); `rows`: how many data rows were read."""

    imported: int = 0
    duplicates: int = 0
    suppressed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0


@dataclass
class _Row:
    line: int
    email: str
    key: str
    name: str | None
    topics: list[str]


def _csv_reader(text: str) -> csv.DictReader[str]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))  # a spreadsheet's byte order mark
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise InvalidReader(f"the CSV cannot be read at line 1: {exc}") from None
    if not fieldnames or "email" not in [f.strip().lower() for f in fieldnames]:
        raise InvalidReader("the CSV needs a header line with an 'email' column (and optionally name, topics)")
    return reader


def _records(reader: csv.DictReader[str]) -> Iterator[dict[str, str]]:
    """The reader's records; a line the csv module cannot read (a field past its size
    limit) refuses the whole file, naming the line."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidReader(f"the CSV cannot be read at line {reader.line_num + 1}: {exc}") from None
        yield record


def count_csv_rows(text: str) -> int:
    """How many data rows the CSV holds (InvalidReader as `import_csv` would raise it): the
    total for a progress bar."""
    return sum(1 for _ in _records(_csv_reader(text)))


def read_csv_rows(text: str, allowed_topics: list[str], report: ImportReport) -> Iterator[_Row]:
    """Valid rows of a CSV with columns email,name,topics; bad ones go to report.errors
    with their line number in the file."""
    reader = _csv_reader(text)
    for record in _records(reader):
        line = reader.line_num
        report.rows += 1
        row = {(k or "").strip().lower(): (v or "") for k, v in record.items() if isinstance(v, str)}
        try:
            address, key = normalise_email(row.get("email", ""))
            yield _Row(line, address, key, clean_name(row.get("name") or None),
                       clean_topics(row.get("topics") or None, allowed_topics))
        except InvalidReader as exc:
            report.errors.append((line, str(exc)))


def import_csv(
    session: Session,
    text: str,
    *,
    allowed_topics: list[str],
    confirmed: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import in chunks: one existence query and two bulk inserts per chunk, not per row.
    `progress(n)` is told after each chunk how many more rows of the file were read."""
    report = ImportReport()
    chunk: list[_Row] = []
    told = 0
    added: set[str] = set()  # keys this import added, to tell a repeat in the file from a reader
    for row in read_csv_rows(text, allowed_topics, report):
        chunk.append(row)
        if len(chunk) >= IMPORT_CHUNK_ROWS:
            _import_chunk(session, chunk, confirmed, report, added)
            chunk = []
            if progress:
                progress(report.rows - told)
                told = report.rows
    if chunk:
        _import_chunk(session, chunk, confirmed, report, added)
    if progress and report.rows > told:
        progress(report.rows - told)
    return report


def _import_chunk(session: Session, chunk: list[_Row], confirmed: bool, report: ImportReport,
                  added: set[str]) -> None:
    keys = {row.key for row in chunk}
    known = set(session.scalars(select(Subscriber.email_key).where(Subscriber.email_key.in_(keys))))
    hashes = {email_hash(key): key for key in keys}
    suppressed = {hashes[h] for h in session.scalars(
        select(Suppression.email_hash).where(Suppression.email_hash.in_(list(hashes))))}
    now = utcnow()
    fresh: dict[str, _Row] = {}
    for row in chunk:
        if row.key in known or row.key in fresh:
            report.duplicates += 1
            where = "earlier in this file" if row.key in fresh or row.key in added else "on the list already"
            report.skipped.append((row.line, f"{row.email} is {where}; left as it is"))
            continue
        if row.key in suppressed:
            report.suppressed += 1
            report.errors.append((row.line, f"{row.email} is on the suppression list; not imported"))
            continue
        fresh[row.key] = row
    if not fresh:
        return
    values = [
        {
            "email": row.email,
            "email_key": row.key,
            "name": row.name,
            "status": SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING,
            "token": new_token(),
            "consent_source": "import",
            "created_at": now,
            "confirmed_at": now if confirmed else None,
        }
        for row in fresh.values()
    ]
    session.execute(insert(Subscriber), values)
    ids = {
        key: subscriber_id
        for key, subscriber_id in session.execute(
            select(Subscriber.email_key, Subscriber.id).where(Subscriber.email_key.in_(list(fresh)))
        )
    }
    topic_rows = [
        {"subscriber_id": ids[key], "topic": topic} for key, row in fresh.items() for topic in row.topics
    ]
    if topic_rows:
        session.execute(insert(SubscriberTopic), topic_rows)
    session.execute(insert(ConsentEvent), [
        {"subscriber_id": ids[key], "kind": "subscribe", "channel": "import", "at": now,
         "detail": {"confirmed": confirmed, "line": row.line}}
        for key, row in fresh.items()
    ])
    subscribe_to_all(session, ids.values())
    report.imported += len(fresh)
    added.update(fresh)
