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
from digest.readers.formats import IMPORT_STATUSES, LAYOUTS, OWN_FORMATS, Incoming, open_records
from digest.readers.subscriptions import active_newsletters, subscribe_to_all
from digest.readers.suppression import ON_THE_LIST
from digest.store import (
    ConsentEvent,
    NewsletterSubscription,
    Notice,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    Suppression,
    utcnow,
)

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
    for line, record in records:
        report.rows += 1
        row = {(k or "").strip().lower().lstrip("\ufeff"): (v or "").strip() for k, v in record.items()
               if isinstance(v, str)}
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
) -> ImportReport:
    """Import a subscriber export (digest's own or another service's, formats.SERVICES), read
    as a stream of rows, in chunks: one existence query and a few bulk inserts per chunk, not
    per row. Readers already on the list and suppressed addresses are left alone, so a
    second run changes nothing. `progress(n)` is told after each chunk how many more rows
    of the file were read."""
    options = options or ImportOptions()
    report = ImportReport()
    resolver = _Resolver.of(session, allowed_topics, report)
    chunk: list[_Row] = []
    told = 0
    added: set[str] = set()  # keys this import added, to tell a repeat in the file from a reader
    for row in read_rows(source, options, resolver, report):
        chunk.append(row)
        if len(chunk) >= IMPORT_CHUNK_ROWS:
            _import_chunk(session, chunk, options, resolver, report, added)
            chunk = []
            if progress:
                progress(report.rows - told)
                told = report.rows
    if chunk:
        _import_chunk(session, chunk, options, resolver, report, added)
    if progress and report.rows > told:
        progress(report.rows - told)
    return report


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _import_chunk(session: Session, chunk: list[_Row], options: ImportOptions, resolver: _Resolver,
                  report: ImportReport, added: set[str]) -> None:
    keys = {row.key for row in chunk}
    known = set(session.scalars(select(Subscriber.email_key).where(Subscriber.email_key.in_(keys))))
    hashes = {email_hash(key): key for key in keys}
    suppressed = {hashes[h] for h in session.scalars(
        select(Suppression.email_hash).where(Suppression.email_hash.in_(list(hashes))))}
    now = utcnow()
    fresh: dict[str, _Row] = {}
    departing: dict[str, _Row] = {}
    for row in chunk:
        if row.key in known or row.key in fresh:
            report.duplicates += 1
            where = "earlier in this file" if row.key in fresh or row.key in added else "on the list already"
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
    session.execute(insert(Subscriber), [_subscriber_values(row, now) for row in fresh.values()])
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
    events = [_subscribe_event(ids[key], row, options, report.service, now) for key, row in fresh.items()]
    events += [{"subscriber_id": ids[key], "kind": DEPARTURE_KIND[row.status], "channel": "import", "at": now,
                "detail": {"status": row.status, "line": row.line}}
               for key, row in fresh.items() if row.status in DEPARTURE_KIND]
    session.execute(insert(ConsentEvent), events)
    departed = [{"email_hash": email_hash(key), "reason": SUPPRESSION_REASON[row.status], "created_at": now}
                for key, row in fresh.items() if row.status in SUPPRESSION_REASON]
    if departed:
        session.execute(insert(Suppression), departed)
    subscriptions = [
        {"newsletter_id": n, "subscriber_id": ids[key]} for key, row in fresh.items()
        for n in (row.newsletters if row.newsletters is not None
                  else [] if row.status in SUPPRESSION_REASON else resolver.all_newsletters)]
    if subscriptions:
        session.execute(insert(NewsletterSubscription), subscriptions)
    if options.send_confirmations:
        pending = [{"subscriber_id": ids[key], "kind": "confirm"} for key, row in fresh.items() if row.status == "pending"]
        if pending:
            report.notice_ids += list(session.scalars(insert(Notice).returning(Notice.id), pending))
    for row in fresh.values():
        report.statuses[row.status] = report.statuses.get(row.status, 0) + 1
    report.imported += len(fresh)
    added.update(fresh)


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


def _subscribe_event(subscriber_id: int, row: _Row, options: ImportOptions, service: str,
                     now: datetime) -> dict[str, Any]:
    """The `subscribe` event of an imported reader: the original opt-in (time, IP, source)
    and the file it came from, in the detail; only what the file said is kept."""
    incoming = row.incoming
    detail: dict[str, Any] = {"confirmed": row.status == "subscribed", "line": row.line}
    if service not in OWN_FORMATS:
        detail.update(service=service, status=row.status)
    if incoming is not None:
        optional = {"file": options.file_name, "opted_in_at": _iso(incoming.opted_in_at),
                    "confirmed_at": _iso(incoming.confirmed_at), "source": incoming.source,
                    "original": incoming.extra or None}
        detail.update({k: v for k, v in optional.items() if v})
    return {"subscriber_id": subscriber_id, "kind": "subscribe", "channel": "import", "at": now,
            "ip": incoming.ip if incoming else None, "detail": detail}
