"""send_batch: one range of deliveries, one SMTP connection, results recorded in bulk.

The guarantees, in the order the code keeps them:
- Only deliveries still `queued`, not leased by a live worker and due for a try are
  claimed (one conditional UPDATE), so a batch run twice, or by two workers at once,
  sends nothing twice. The lease is short and a heartbeat renews it while the batch lives
  (lease.py); a message starts only while the lease has a margin left, so rows are taken
  over only from a holder that can no longer send.
- A reader who is no longer active is skipped: checked when the batch loads its readers,
  against departures announced over Redis before every message, and in the database
  again every RECHECK_EVERY_SECONDS (or `record_every_messages`, when that comes first).
- Results are written in bulk on the same beat, never per reader: a constant number of
  statements per batch when it sends at full speed. Each 250 is first appended to the
  batch's send journal (journal.py), which a crash leaves behind to be replayed, so the
  window where a crash can duplicate a message is that one write(2). Message-IDs are
  stable per delivery, so a receiver can still recognise a repeat.
- 4xx and dropped connections leave the untried rest queued with a backoff; a 5xx for a
  recipient is a hard bounce: the delivery is bounced and the reader too.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache

from prometheus_client import Counter as MetricCounter
from prometheus_client import Histogram
from sqlalchemy import TextClause, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.delivery import ledger
from digest.delivery.autopause import check_auto_pause
from digest.delivery.journal import SendJournal, journal_dir, replay_orphans
from digest.delivery.lease import LeaseKeeper, lease_clock
from digest.delivery.ledger import Result
from digest.delivery.throttle import Throttle
from digest.editions import ab, choose, edition_view, lifecycle, live_candidates, reader_history
from digest.infra import watch as departure_watch
from digest.mail import (
    Connection,
    EditionView,
    MessageHeaders,
    Reader,
    RenderedEdition,
    SendError,
    Transport,
    assemble_message,
    encode_address,
    list_unsubscribe,
    message_id_for,
    reader_values,
    render_edition,
    shared_headers,
)
from digest.readers import bounce_readers, email_hash
from digest.store import (
    Edition,
    EditionStatus,
    ErrorCode,
    utcnow,
    with_id_list,
)

log = logging.getLogger(__name__)

RECHECK_EVERY_SECONDS = 1.0
# Counted where they happen; digest.observe adds them to /metrics.
MESSAGES = MetricCounter("digest_messages", "Messages handed to SMTP, by newsletter and outcome",
                         ["newsletter", "outcome"])
SEND_SECONDS = Histogram("digest_send_seconds", "Time to hand one message to the SMTP server",
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# `suppressed`: the address is on the suppression list, which keeps the SHA-256 hex of the
# (already stripped, lower-cased) email_key, so the hash is taken in SQL and costs no query.
# `history`: the edition's newsletter offers a click history and the reader consented to it
# (digest.readers.click_history), so their copy's links name them; in the same statement.
_READERS_SQL = (
    "SELECT id, email, name, token, status, EXISTS (SELECT 1 FROM suppressions WHERE email_hash = {hash}) "
    "AS suppressed, EXISTS (SELECT 1 FROM click_history_consents c JOIN newsletters n ON n.id = c.newsletter_id "
    "JOIN editions e ON e.newsletter_id = n.id WHERE e.id = :edition AND c.subscriber_id = subscribers.id "
    "AND n.click_history) AS history FROM subscribers WHERE id IN_IDS"
)
_READERS = {
    dialect: with_id_list(_READERS_SQL.format(hash=digest))[dialect]
    for dialect, digest in (("postgresql", "encode(sha256(convert_to(email_key, 'UTF8')), 'hex')"),
                            ("sqlite", "digest_email_hash(email_key)"))
}
_DEPARTED = with_id_list("SELECT id FROM subscribers WHERE id IN_IDS AND status <> 'active'")

@dataclass
class BatchOutcome:
    claimed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    retry_in_seconds: float | None = None
    edition_finished: bool = False


@lru_cache(maxsize=64)
def _rendered_cached(view: EditionView, templates_key: str, subject_variant: int) -> RenderedEdition:
    return render_edition(view, variant=subject_variant)


@dataclass
class BatchContent:
    """What each reader of a batch gets: their story list, their subject (its variant
    number: 0 without a subject test) and the rendering of the two (shared by all readers
    with the same pair; cached per worker process, premailer being ~11 ms)."""

    edition_id: int
    shared: dict[int, MessageHeaders]  # by subject variant: the subject is a shared header
    by_reader: dict[int, tuple[int, ...]]
    rendered: dict[tuple[int, tuple[int, ...]], RenderedEdition]
    minimum: int
    label: str  # the newsletter's slug, for metrics
    readers_loaded_at: float = 0.0  # time.monotonic() when the batch read its readers


def prepare_content(session: Session, edition_id: int, subscriber_ids: list[int], settings: Settings,
                    now: datetime, subject_variants: set[int] | None = None) -> BatchContent:
    """`subject_variants`: the subjects the batch's rows carry (0 when not given)."""
    edition = session.get_one(Edition, edition_id)
    # Only a subject test's rows cost the test's row (a statement the send path is counted on).
    test = ab.get_ab(session, edition_id) if (subject_variants or {0}) - {0} else None
    candidates = live_candidates(session, edition_id, now)
    history = reader_history(session, edition_id, subscriber_ids, now, candidates)
    by_reader = {sid: choose(candidates, history.get(sid, set()), edition.max_stories)
                 for sid in subscriber_ids}
    rendered = {}
    shared = {}
    views = {stories: edition_view(session, edition, list(stories))
             for stories in sorted({stories for stories in by_reader.values() if stories})}
    lists = list(views)
    base = views[lists[0]] if lists else edition_view(session, edition, [])
    for number in sorted(subject_variants or {0}):
        subject = ab.subject_of(edition, test, number)
        for stories in lists:
            view = replace(views[stories], subject=subject)
            rendered[(number, stories)] = _rendered_cached(view, str(settings.templates_dir), number)
        # The subject as the template makes it (the same for every list of stories).
        made = rendered[(number, lists[0])].subject if lists else subject
        shared[number] = shared_headers(base, made, settings)
    minimum = max(1, edition.newsletter.min_stories if edition.newsletter else 1)
    return BatchContent(edition_id, shared, by_reader, rendered, minimum,
                        label=edition.newsletter.slug if edition.newsletter else "none")


def send_batch(
    factory: sessionmaker[Session],
    edition_id: int,
    first_id: int,
    last_id: int,
    transport: Transport,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
) -> BatchOutcome:
    outcome = BatchOutcome()
    journals = journal_dir(settings.database_url, settings.journal_dir)
    # A batch killed on this host may have sent messages it never recorded: record them
    # before anything is claimed again, so nobody gets a second copy.
    replay_orphans(factory, journals)
    with factory.begin() as session:
        edition = session.get(Edition, edition_id)
        if edition is None or edition.status != EditionStatus.SENDING:
            return outcome  # paused, cancelled or gone: nothing to do, nothing to retry
        claimed_at = lease_clock()  # before the wall clock the lease is computed from: see lease.py
        now = clock()
        # Readers who left since planning are claimed too and recorded as skipped by the
        # send loop, which checks every reader's status anyway: no separate statement.
        lease_until = now + timedelta(seconds=settings.lease_seconds)
        claimed = ledger.claim(session, edition_id, first_id, last_id, now, lease_until)
    outcome.claimed = len(claimed)
    if claimed:
        # Renewed from here on, whatever the batch is doing, until it ends (lease.py).
        with LeaseKeeper(factory, edition_id, claimed[0].id, claimed[-1].id, len(claimed), lease_until, claimed_at,
                         settings.lease_seconds, clock) as lease:
            with factory.begin() as session:
                subscriber_ids = [row.subscriber_id for row in claimed]
                loaded_at = time.monotonic()  # departures announced after this are news
                readers = {row.id: row for row in session.execute(_readers_query(session),
                                                                   {"ids": subscriber_ids, "edition": edition_id})}
                content = prepare_content(session, edition_id, subscriber_ids, settings, clock(),
                                          {row.variant for row in claimed})
            content.readers_loaded_at = loaded_at
            _send_claimed(factory, content, claimed, readers, transport, settings, clock, outcome, lease)
    with factory.begin() as session:
        now = clock()
        outcome.edition_finished = lifecycle.finish_if_complete(session, edition_id, now)
        next_retry = ledger.next_retry_at(session, edition_id, first_id, last_id)
    if next_retry is not None:
        outcome.retry_in_seconds = max(1.0, (next_retry - now).total_seconds())
    return outcome


def _readers_query(session: Session) -> TextClause:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":  # no SHA-256 in SQLite: lend it ours, on this connection
        session.connection().connection.driver_connection.create_function(  # type: ignore[union-attr]
            "digest_email_hash", 1, email_hash, deterministic=True)
    return _READERS[dialect]


def _send_claimed(factory, content, claimed, readers, transport, settings, clock,
                  outcome, lease) -> None:  # type: ignore[no-untyped-def]
    """Send the claimed rows, journal every 250 at once, record results in bulk."""
    edition_id = content.edition_id
    month = claimed[0].planned_month  # the same for every row of the edition
    pending: list[Result] = []
    journal = SendJournal(journal_dir(settings.database_url, settings.journal_dir))

    def flush() -> None:
        with lease.lock:  # never at the same time as a renewal of the same rows
            record_results(factory, edition_id, pending, settings, clock(), outcome, month)
            lease.recorded(len(pending))
        journal.checkpoint()
        pending.clear()

    try:
        _send_loop(factory, content, claimed, readers, transport, settings, clock, pending, journal, flush, lease)
    except BaseException:
        journal.close(keep=True)  # the database may not have these: leave them for a replay
        raise
    journal.close(keep=False)


def _send_loop(factory, content, claimed, readers, transport, settings, clock, pending, journal,
               flush, lease) -> None:  # type: ignore[no-untyped-def]
    edition_id = content.edition_id
    shared_bytes = {number: headers.encoded_shared for number, headers in content.shared.items()}
    envelope_from = settings.sender_address
    domain = settings.sender_domain
    departed: set[int] = set()
    gone = departure_watch()  # unsubscribes announced since the last re-check
    throttle = Throttle(settings)
    last_check = time.monotonic()
    stop_at = len(claimed)  # the first claimed row left untried
    untouched_from = len(claimed)  # rows from here on are left as they are (lease lost)
    untried_outcome = "released"
    attempts: Counter[str] = Counter()  # for the messages counter, added to it per flush

    def count_attempts() -> None:
        for outcome, number in attempts.items():
            MESSAGES.labels(content.label, outcome).inc(number)
        attempts.clear()

    try:
        with transport.connect() as connection:
            for index, row in enumerate(claimed):
                if len(pending) >= settings.record_every_messages or (
                    time.monotonic() - last_check >= RECHECK_EVERY_SECONDS
                ):
                    count_attempts()  # first: these were sent whatever the database says next
                    flush()
                    # Every reader still to send, as one array parameter: a constant number
                    # of statements.
                    last_check = time.monotonic()
                    status, departed = _recheck(factory, edition_id, [r.subscriber_id for r in claimed[index:]])
                    if status != EditionStatus.SENDING:  # paused or cancelled meanwhile
                        stop_at = index
                        untried_outcome = "skipped" if status == EditionStatus.CANCELLED else "released"
                        break
                reader = readers.get(row.subscriber_id)
                if (reader is None or reader.status != "active" or row.subscriber_id in departed
                        or gone.has_left(row.subscriber_id, content.readers_loaded_at)):
                    pending.append(Result(row.id, row.subscriber_id, "skipped",
                                          error="reader no longer subscribed", code=ErrorCode.READER_LEFT))
                    continue
                if reader.suppressed:  # bounced, complained or erased under this address
                    pending.append(Result(row.id, row.subscriber_id, "skipped", error="suppressed",
                                          code=ErrorCode.SUPPRESSED))
                    continue
                stories = content.by_reader.get(row.subscriber_id, ())
                if len(stories) < content.minimum:
                    pending.append(Result(row.id, row.subscriber_id, "skipped",
                                          error="nothing new: the reader already had these stories",
                                          code=ErrorCode.NOTHING_NEW))
                    continue
                if not lease.holds():
                    # Renewals have been failing: the rows may soon be another worker's. Stop,
                    # and write nothing for the rest (they are not ours to release).
                    log.warning("edition %s: lease running out, batch stops at row %s", edition_id, row.id,
                                extra={"edition_id": edition_id})
                    stop_at = untouched_from = index
                    break
                if not throttle.allow(reader.email):
                    stop_at = index  # over the shared rate limit: the rest waits its turn
                    break
                started = time.perf_counter()
                result = send_one(connection, edition_id, content.shared[row.variant], shared_bytes[row.variant],
                                  content.rendered[(row.variant, stories)], row, reader, envelope_from, domain,
                                  settings, clock)
                result.story_ids = list(stories)
                if result.outcome == "sent":
                    journal.record(row.id, result.message_id or "", result.story_ids)
                SEND_SECONDS.observe(time.perf_counter() - started)
                attempts["failed" if result.outcome == "transient" else result.outcome] += 1
                pending.append(result)
                if result.connection_lost:
                    stop_at = index + 1  # the connection is gone: leave the rest for the retry
                    break
    except SendError as exc:  # could not even connect: every claimed row was tried once
        if lease.holds():  # else they are left to the lease's end, as below
            pending.extend(Result(row.id, row.subscriber_id, "transient", row.attempts, error=str(exc))
                           for row in claimed)
        stop_at = len(claimed)
    # Untried rows go back to the queue (a pause, a dropped connection, a rate limit), or
    # become final when the edition was cancelled; unless the lease is running out (a slow
    # last message while renewals failed): then they may be another batch's soon, and
    # releasing them would let a third claim what the second is sending.
    if not lease.holds():
        untouched_from = min(untouched_from, stop_at)
    cancelled = untried_outcome == "skipped"
    pending.extend(Result(row.id, row.subscriber_id, untried_outcome, row.attempts,
                          error="edition cancelled" if cancelled else None,
                          code=ErrorCode.EDITION_CANCELLED if cancelled else None)
                   for row in claimed[stop_at:untouched_from])
    count_attempts()
    flush()


def send_one(connection: Connection, edition_id: int, shared: MessageHeaders, shared_bytes: bytes,
              rendered: RenderedEdition, row, reader, envelope_from: str, domain: str,
              settings: Settings, clock: Callable[[], datetime]) -> Result:  # type: ignore[no-untyped-def]
    """Personalise, build and send one message: the per-reader hot path (microseconds)."""
    message_id = message_id_for(edition_id, row.id, domain, settings.secret_key)
    values = reader_values(Reader(email=reader.email, name=reader.name, token=reader.token,
                                  history_id=reader.id if reader.history else None))
    text_qp, html_qp = rendered.encoded_parts(values)
    message = assemble_message(
        shared_bytes,
        to_header=encode_address(reader.name, reader.email),
        date=clock(),
        message_id=message_id,
        list_unsubscribe_header=list_unsubscribe(values["unsubscribe_url"], shared.unsubscribe_mailto, reader.token),
        text_qp=text_qp,
        html_qp=html_qp,
    )
    try:
        connection.send(envelope_from, reader.email, message)
    except SendError as exc:
        if exc.permanent:
            return Result(row.id, row.subscriber_id, "bounced", row.attempts, message_id, str(exc))
        return Result(row.id, row.subscriber_id, "transient", row.attempts, message_id, str(exc),
                      connection_lost=exc.connection_lost)
    return Result(row.id, row.subscriber_id, "sent", row.attempts, message_id)


def _recheck(factory: sessionmaker[Session], edition_id: int,
             subscriber_ids: list[int]) -> tuple[EditionStatus | None, set[int]]:
    """(the edition's status now, which of these readers left), in one short read-only
    transaction. The lease is the LeaseKeeper's business, not the loop's."""
    with factory.begin() as session:
        status = session.scalar(select(Edition.status).where(Edition.id == edition_id))
        dialect = session.get_bind().dialect.name
        departed = set(session.execute(_DEPARTED[dialect], {"ids": subscriber_ids}).scalars()) if subscriber_ids else set()
    return status, departed


def record_results(factory: sessionmaker[Session], edition_id: int, results: list[Result],
                   settings: Settings, now: datetime, outcome: BatchOutcome, month: date) -> None:
    """Write a chunk of results in one transaction (the ledger: one statement per kind of
    outcome). When the chunk had failures, check whether the edition should pause itself."""
    if not results:
        return
    with factory.begin() as session:
        counts = ledger.record(session, results, now, month=month, max_attempts=settings.max_attempts,
                               retry_base_seconds=settings.retry_base_seconds)
        # A hard bounce ends the reader and suppresses the address: no import or form may
        # re-add it. The same rule as a bounce report's (digest.readers.bounce_readers).
        bounce_readers(session, [r.subscriber_id for r in results if r.outcome == "bounced"])
        if any(r.outcome in ("bounced", "transient") for r in results):
            reason = check_auto_pause(session, edition_id, settings.autopause_window,
                                      settings.autopause_failure_ratio, now)
            if reason:
                log.error("edition %s %s", edition_id, reason, extra={"edition_id": edition_id})
    for kind, number in counts.items():
        outcome.counts[kind] = outcome.counts.get(kind, 0) + number
    for result in results:
        if result.outcome in ("bounced", "transient"):
            log.warning("delivery %s %s: %s", result.delivery_id, result.outcome, result.error,
                        extra={"edition_id": edition_id, "delivery_id": result.delivery_id,
                               "subscriber_id": result.subscriber_id, "outcome": result.outcome})
    log.info("edition %s: recorded %s results", edition_id, len(results),
             extra={"edition_id": edition_id, "counts": dict(Counter(r.outcome for r in results))})
