"""The list of readers: add one, import many (digest's CSV or JSON, or another service's
export read by `formats`; in chunks, never a query per row).

A reader added here by staff is subscribed to every active newsletter, an imported one to
the newsletters their row names (else every one, unless they had left); a suppressed
address (erased, bounced, complained) is never re-added. An import keeps the file's
statuses: a departed address (unsubscribed, cleaned, bounced, blocklisted, complained) is
added as departed and put on the suppression list, so it is never mailed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from digest.errors import Conflict
from digest.infra import announce_after_commit
from digest.readers.addresses import InvalidReader, clean_name, clean_topics, email_hash, new_token, normalise_email
from digest.readers.read_aside import can_read_aside
from digest.readers.read_aside import read_aside as aside
from digest.readers.formats import IMPORT_STATUSES, LAYOUTS, OWN_FORMATS, Incoming, open_records
from digest.readers.subscriptions import active_newsletters, subscribe_to_all
from digest.readers.suppression import ON_THE_LIST
from digest.store import (
    ConsentEvent,
    CopyPlan,
    NewsletterSubscription,
    Notice,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    Suppression,
    copy_plan,
    one_of,
    reserve_ids,
    utcnow,
    write_rows,
)

IMPORT_CHUNK_ROWS = 2000
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


# A status in the file (formats.IMPORT_STATUSES) → the reader's here, and the reason a
# departed address is kept on the suppression list.
STATUS_OF = {
    "subscribed": SubscriberStatus.ACTIVE, "pending": SubscriberStatus.PENDING,
    "unsubscribed": SubscriberStatus.UNSUBSCRIBED, "blocklisted": SubscriberStatus.UNSUBSCRIBED,
    "cleaned": SubscriberStatus.BOUNCED, "bounced": SubscriberStatus.BOUNCED,
    "complained": SubscriberStatus.COMPLAINED,
}
SUPPRESSION_REASON = {"unsubscribed": "unsubscribed", "blocklisted": "blocklisted", "cleaned": "bounced",
                      "bounced": "bounced", "complained": "complained"}
DEPARTURE_KIND = {"unsubscribed": "unsubscribe", "blocklisted": "unsubscribe", "cleaned": "bounce",
                  "bounced": "bounce", "complained": "complaint"}
UNMATCHED_TAGS_MAX = 50  # distinct tags named in the report; the rest only counted


@dataclass
class ImportReport:
    """What an import did. `errors`: the rows refused (bad, or suppressed), by line in the
    file; `skipped`: the rows whose address is on the list already (an import never brings
    back a reader who left, nor changes a reader, except that a departure in the file is
    applied: see `left`); `rows`: how many data rows were read; `statuses`: readers imported per status in
    the file (formats.IMPORT_STATUSES); `unmatched_tags`: tags or labels that are neither a
    topic nor a newsletter, with how many rows named them; `notice_ids`: confirmations to
    enqueue once the import has committed."""

    imported: int = 0
    duplicates: int = 0
    suppressed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    service: str = "csv"
    statuses: dict[str, int] = field(default_factory=dict)
    unmatched_tags: dict[str, int] = field(default_factory=dict)
    notice_ids: list[int] = field(default_factory=list)
    left: list[tuple[int, str]] = field(default_factory=list)  # readers on the list the file says left: they did


# The keys of _subscriber_values and of _subscribe_event's dict, in order: a CopyPlan's.
READER_KEYS = ("email", "email_key", "name", "status", "token", "consent_source", "created_at", "confirmed_at",
               "unsubscribed_at", "unsubscribe_channel")
EVENT_KEYS = ("kind", "channel", "at", "ip", "detail")


@dataclass(frozen=True)
class _Plans:
    """How the reading process readies readers and their events for COPY (PostgreSQL, read
    aside): as plain tuples the importing process only prefixes with ids and copies."""

    readers: CopyPlan
    events: CopyPlan


@dataclass
class _Row:
    line: int
    email: str
    key: str
    name: str | None
    topics: list[str]
    status: str = "pending"
    newsletters: list[int] | None = None  # None: every active one (for a reader on the list)
    incoming: Incoming | None = None
    # Made while reading (in the reading process, for a large file): the reader's columns
    # but the id, and their `subscribe` event but the reader's id.
    values: Any = None  # a dict, or with _Plans the tuple COPY takes
    event: Any = None
    hash: str = ""  # email_hash(key): the suppression list's form of the address


@dataclass(frozen=True)
class ImportOptions:
    """How to read a file: `service` (formats.SERVICES; None: detect from the header),
    `status` for rows whose file says none (None: the layout's default; digest's own CSV:
    pending, or subscribed when `confirmed`), the file's name for the consent ledger, and
    whether pending readers get a confirmation now."""

    service: str | None = None
    status: str | None = None
    confirmed: bool = False
    file_name: str | None = None
    send_confirmations: bool = False


class _Resolver:
    """Tags and newsletter slugs of one import, against the topics and newsletters there are."""

    def __init__(self, allowed_topics: list[str], report: ImportReport, newsletters: dict[str, int]) -> None:
        self.allowed = allowed_topics
        self.report = report
        self.newsletters = newsletters  # by lower-cased slug and name
        self.all_newsletters = sorted(set(newsletters.values()))

    @classmethod
    def of(cls, session: Session, allowed_topics: list[str], report: ImportReport) -> _Resolver:
        newsletters: dict[str, int] = {}
        for newsletter in active_newsletters(session):
            newsletters[newsletter.name.strip().lower()] = newsletter.id
            newsletters[newsletter.slug.lower()] = newsletter.id
        return cls(allowed_topics, report, newsletters)

    def slugs(self, raw: str | None) -> list[int] | None:
        if raw is None:
            return None
        wanted = [s.strip().lower() for s in raw.replace(";", ",").split(",") if s.strip()]
        unknown = [s for s in wanted if s not in self.newsletters]
        if unknown:
            raise InvalidReader(f"unknown newsletter(s) {', '.join(unknown)}")
        return sorted({self.newsletters[s] for s in wanted}) or None

    def tags(self, tags: list[str]) -> tuple[list[str], list[int] | None]:
        topics: set[str] = set()
        newsletters: set[int] = set()
        for tag in tags:
            word = " ".join(tag.split()).lower()
            if word in self.allowed:
                topics.add(word)
            elif word in self.newsletters:
                newsletters.add(self.newsletters[word])
            elif word in self.report.unmatched_tags or len(self.report.unmatched_tags) < UNMATCHED_TAGS_MAX:
                self.report.unmatched_tags[word] = self.report.unmatched_tags.get(word, 0) + 1
        return sorted(topics), sorted(newsletters) or None


def read_rows(source: str | TextIO, options: ImportOptions, resolver: _Resolver, report: ImportReport) -> Iterator[_Row]:
    """Valid rows of the file, one at a time, in our words; bad ones go to report.errors
    with their line number in the file."""
    records, service = open_records(source, options.service)
    report.service = service
    layout = LAYOUTS[service]
    if options.status is not None and options.status not in IMPORT_STATUSES:
        raise InvalidReader(f"unknown status {options.status!r}; use one of {', '.join(IMPORT_STATUSES)}")
    strict = service in OWN_FORMATS
    default = (options.status or ("subscribed" if options.confirmed else "pending")) if strict else options.status
    for line, record in records:  # keys in our spelling already (formats.column_name)
        report.rows += 1
        row = {k: v.strip() for k, v in record.items() if isinstance(v, str)}
        try:
            incoming = layout(row, default)
            address, key = normalise_email(incoming.email)
            if strict:
                topics, newsletters = clean_topics(incoming.topics, resolver.allowed), resolver.slugs(incoming.newsletters)
            else:
                topics, newsletters = resolver.tags(incoming.tags)
            yield _Row(line, address, key, clean_name(incoming.name), topics, incoming.status, newsletters, incoming)
        except InvalidReader as exc:
            report.errors.append((line, str(exc)))


def read_csv_rows(source: str | TextIO, allowed_topics: list[str], report: ImportReport, *,
                  service: str | None = "csv") -> Iterator[_Row]:
    """Valid rows of a file (digest's CSV unless `service` says otherwise; None: detected),
    without a database: no newsletter is known, so newsletter names are bad rows (digest's
    CSV) or unmatched tags (others). For checks and the fuzzer."""
    return read_rows(source, ImportOptions(service=service), _Resolver(allowed_topics, report, {}), report)


def import_csv(
    session: Session,
    text: str | TextIO,
    *,
    allowed_topics: list[str],
    confirmed: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """digest's own CSV (email,name,topics; status and newsletters optional)."""
    return import_file(session, text, allowed_topics=allowed_topics, progress=progress,
                       options=ImportOptions(service="csv", confirmed=confirmed))


def import_file(
    session: Session,
    source: str | TextIO,
    *,
    allowed_topics: list[str],
    options: ImportOptions | None = None,
    progress: Callable[[int], None] | None = None,
    read_aside: bool = False,
) -> ImportReport:
    """Import a subscriber export (digest's own or another service's, formats.SERVICES), read
    as a stream of rows, in chunks: one existence query and a few bulk inserts per chunk, not
    per row. Readers already on the list and suppressed addresses are left alone, so a
    second run changes nothing. `progress(n)` is told after each chunk how many more rows
    of the file were read. `read_aside`: read the file in a forked process while this one
    writes (readers.read_aside; the command line's large files), where fork exists."""
    options = options or ImportOptions()
    report = ImportReport()
    resolver = _Resolver.of(session, allowed_topics, report)
    told = 0
    added = _Added()
    now = utcnow()
    plans: _Plans | None = None
    if read_aside and can_read_aside():
        reader_plan = copy_plan(session, Subscriber.__table__, READER_KEYS, lead=("id",))
        event_plan = copy_plan(session, ConsentEvent.__table__, EVENT_KEYS, lead=("subscriber_id",))
        plans = _Plans(reader_plan, event_plan) if reader_plan and event_plan else None
        packed = aside(lambda: map(_pack, _chunks(source, options, resolver, report, now, plans)),
                       lambda: _hand_over(report), lambda learned: _take_over(report, learned))
        chunks: Iterator[list[_Row]] = map(_unpack, packed)
    else:
        chunks = _chunks(source, options, resolver, report, now)
    for chunk in chunks:
        _import_chunk(session, chunk, options, resolver, report, added, now, plans)
        if progress and report.rows > told:
            progress(report.rows - told)
            told = report.rows
    if progress and report.rows > told:
        progress(report.rows - told)
    return report


def _chunks(source: str | TextIO, options: ImportOptions, resolver: _Resolver,
            report: ImportReport, now: datetime, plans: _Plans | None = None) -> Iterator[list[_Row]]:
    """The file's valid rows in chunks, each with the columns and event it will be written as."""
    chunk: list[_Row] = []
    for row in read_rows(source, options, resolver, report):
        row.values = _subscriber_values(row, now)
        row.event = _subscribe_event(row, options, report.service, now)
        if plans is not None:
            row.values, row.event = plans.readers.text_row(row.values), plans.events.text_row(row.event)
        row.hash = email_hash(row.key)
        row.incoming = None  # all of it is in values and event now
        chunk.append(row)
        if len(chunk) >= IMPORT_CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pack(chunk: list[_Row]) -> list[tuple[Any, ...]]:
    """A chunk as plain tuples for the pipe: pickle makes and reads these faster than
    dataclasses, and at a million rows that is the importing process's time."""
    return [(row.line, row.email, row.key, row.name, row.topics, row.status, row.newsletters, None, row.values,
             row.event, row.hash) for row in chunk]


def _unpack(packed: list[tuple[Any, ...]]) -> list[_Row]:
    return [_Row(*fields) for fields in packed]


def _hand_over(report: ImportReport) -> dict[str, Any]:
    """What reading has learned since it last said (in the reading process): the refused
    rows are handed over and forgotten there."""
    learned = {"rows": report.rows, "service": report.service, "errors": report.errors,
               "unmatched_tags": report.unmatched_tags}
    report.errors = []
    return learned


def _take_over(report: ImportReport, learned: dict[str, Any]) -> None:
    report.rows, report.service, report.unmatched_tags = learned["rows"], learned["service"], learned["unmatched_tags"]
    report.errors += learned["errors"]


def _import_chunk(session: Session, chunk: list[_Row], options: ImportOptions, resolver: _Resolver,
                  report: ImportReport, added: _Added, now: datetime, plans: _Plans | None = None) -> None:
    keys = {row.key for row in chunk}
    known = dict(session.execute(select(Subscriber.email_key, Subscriber.id)
                                 .where(one_of(session, Subscriber.email_key, list(keys)))).all())
    hashes = {row.hash: row.key for row in chunk}
    suppressed = {hashes[h] for h in session.scalars(
        select(Suppression.email_hash).where(one_of(session, Suppression.email_hash, list(hashes))))}
    fresh: dict[str, _Row] = {}
    departing: dict[str, _Row] = {}
    for row in chunk:
        if row.key in known or row.key in fresh:
            report.duplicates += 1
            earlier = row.key in fresh or added.holds(known[row.key])
            where = "earlier in this file" if earlier else "on the list already"
            if row.key in known and row.status in SUPPRESSION_REASON:
                departing[row.key] = row
                report.skipped.append((row.line, f"{row.email} is {where}; the file says {row.status}, so the "
                                                 "address is suppressed and a reader on the list leaves"))
            else:
                report.skipped.append((row.line, f"{row.email} is {where}; left as it is"))
            continue
        if row.key in suppressed:
            report.suppressed += 1
            report.errors.append((row.line, f"{row.email} is on the suppression list; not imported"))
            continue
        fresh[row.key] = row
    _depart_known(session, departing, suppressed, report, now)
    if not fresh:
        return
    ids = _write_readers(session, fresh, plans)
    added.note(ids.values())
    write_rows(session, SubscriberTopic.__table__, [
        {"subscriber_id": ids[key], "topic": topic} for key, row in fresh.items() for topic in row.topics])
    departures = [(ids[key], {"kind": DEPARTURE_KIND[row.status], "channel": "import", "at": now, "ip": None,
                              "detail": {"status": row.status, "line": row.line}})
                  for key, row in fresh.items() if row.status in DEPARTURE_KIND]
    if plans is not None:
        plans.events.write(session, [(ids[key], *row.event) for key, row in fresh.items()]
                           + [(reader_id, *plans.events.text_row(event)) for reader_id, event in departures])
    else:
        write_rows(session, ConsentEvent.__table__, [{"subscriber_id": ids[key], **row.event}
                                                     for key, row in fresh.items()]
                   + [{"subscriber_id": reader_id, **event} for reader_id, event in departures])
    write_rows(session, Suppression.__table__, [
        {"email_hash": row.hash, "reason": SUPPRESSION_REASON[row.status], "created_at": now}
        for row in fresh.values() if row.status in SUPPRESSION_REASON])
    write_rows(session, NewsletterSubscription.__table__, [
        {"newsletter_id": n, "subscriber_id": ids[key]} for key, row in fresh.items()
        for n in (row.newsletters if row.newsletters is not None
                  else [] if row.status in SUPPRESSION_REASON else resolver.all_newsletters)])
    if options.send_confirmations:
        pending = [{"subscriber_id": ids[key], "kind": "confirm"} for key, row in fresh.items() if row.status == "pending"]
        if pending:
            report.notice_ids += list(session.scalars(insert(Notice).returning(Notice.id), pending))
    for row in fresh.values():
        report.statuses[row.status] = report.statuses.get(row.status, 0) + 1
    report.imported += len(fresh)


def _write_readers(session: Session, fresh: dict[str, _Row], plans: _Plans | None = None) -> dict[str, int]:
    """Insert the new readers; their ids by email key. On PostgreSQL the ids are taken
    from the sequence first and the rows copied (store.bulk); elsewhere they are read back."""
    values = [row.values for row in fresh.values()]
    reserved = reserve_ids(session, Subscriber.__table__, len(values))
    if plans is not None and reserved is not None:
        plans.readers.write(session, [(subscriber_id, *row) for subscriber_id, row in zip(reserved, values, strict=True)])
        return dict(zip(fresh, reserved, strict=True))
    if reserved is not None:
        for row_values, subscriber_id in zip(values, reserved, strict=True):
            row_values["id"] = subscriber_id
        write_rows(session, Subscriber.__table__, values)
        return dict(zip(fresh, reserved, strict=True))
    write_rows(session, Subscriber.__table__, values)
    return dict(session.execute(select(Subscriber.email_key, Subscriber.id)
                                .where(Subscriber.email_key.in_(list(fresh)))).all())


class _Added:
    """The ids this import gave its readers, as ranges (a chunk's ids are nearly always
    one run), to tell an address repeated in the file from a reader who was here before:
    a set of every key would hold a million strings for a million-row file."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def note(self, ids: Iterable[int]) -> None:
        run: list[int] = []
        for subscriber_id in sorted(ids):
            if run and subscriber_id != run[-1] + 1:
                self.ranges.append((run[0], run[-1]))
                run = []
            run.append(subscriber_id)
        if run:
            self.ranges.append((run[0], run[-1]))

    def holds(self, subscriber_id: int) -> bool:
        return any(low <= subscriber_id <= high for low, high in self.ranges)


def _depart_known(session: Session, departing: dict[str, _Row], suppressed: set[str], report: ImportReport,
                  now: datetime) -> None:
    """Readers already here whose row says they left the other service: one still on the
    list leaves (status by STATUS_OF, a consent event, running sends told after commit) and
    every such address is suppressed. A file can end a subscription, never start one again;
    a second run changes nothing."""
    if not departing:
        return
    by_status: dict[SubscriberStatus, list[str]] = {}
    for key, row in departing.items():
        by_status.setdefault(STATUS_OF[row.status], []).append(key)
    events = []
    for status, keys in by_status.items():
        for subscriber_id, key in session.execute(
                update(Subscriber).where(Subscriber.email_key.in_(keys), Subscriber.status.in_(ON_THE_LIST))
                .values(status=status, unsubscribed_at=now, unsubscribe_channel="import")
                .returning(Subscriber.id, Subscriber.email_key).execution_options(synchronize_session=False)):
            row = departing[key]
            events.append({"subscriber_id": subscriber_id, "kind": DEPARTURE_KIND[row.status], "channel": "import",
                           "at": now, "detail": {"status": row.status, "line": row.line}})
            announce_after_commit(session, subscriber_id)
            report.left.append((row.line, row.email))
    if events:
        session.execute(insert(ConsentEvent), events)
    new = {email_hash(key): SUPPRESSION_REASON[row.status] for key, row in departing.items() if key not in suppressed}
    if new:
        session.execute(insert(Suppression), [{"email_hash": h, "reason": reason, "created_at": now}
                                              for h, reason in new.items()])
        suppressed.update(key for key in departing)


def _subscriber_values(row: _Row, now: datetime) -> dict[str, Any]:
    incoming = row.incoming
    opted_in = incoming.opted_in_at if incoming else None
    confirmed_at = incoming.confirmed_at if incoming else None
    status = STATUS_OF[row.status]
    return {
        "email": row.email,
        "email_key": row.key,
        "name": row.name,
        "status": status,
        "token": new_token(),
        "consent_source": "import",
        "created_at": opted_in or now,
        "confirmed_at": (confirmed_at or opted_in or now) if status == SubscriberStatus.ACTIVE else confirmed_at,
        "unsubscribed_at": ((incoming.left_at if incoming else None) or now) if row.status in SUPPRESSION_REASON else None,
        "unsubscribe_channel": "import" if row.status in SUPPRESSION_REASON else None,
    }


def _subscribe_event(row: _Row, options: ImportOptions, service: str, now: datetime) -> dict[str, Any]:
    """The `subscribe` event of an imported reader, but the reader's id: the original
    opt-in (time, IP, source) and the file it came from, in the detail; only what the file
    said is kept."""
    incoming = row.incoming
    detail: dict[str, Any] = {"confirmed": row.status == "subscribed", "line": row.line}
    if service not in OWN_FORMATS:
        detail["service"], detail["status"] = service, row.status
    if options.file_name:
        detail["file"] = options.file_name
    if incoming is not None:
        if incoming.opted_in_at:
            detail["opted_in_at"] = incoming.opted_in_at.isoformat()
        if incoming.confirmed_at:
            detail["confirmed_at"] = incoming.confirmed_at.isoformat()
        if incoming.source:
            detail["source"] = incoming.source
        if incoming.extra:
            detail["original"] = incoming.extra
    return {"kind": "subscribe", "channel": "import", "at": now, "ip": incoming.ip if incoming else None,
            "detail": detail}
