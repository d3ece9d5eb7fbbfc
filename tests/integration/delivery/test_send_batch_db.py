"""send_batch and release against real databases, in-process: query counts and races."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select, text

from digest.config import Settings
from digest.delivery.pipeline import release_due
from digest.delivery.sender import send_batch
from digest.mail.transport import RecordingTransport
from digest.store.models import Delivery, Edition, utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories

pytestmark = pytest.mark.integration


def _settings(**overrides: object) -> Settings:
    return Settings(env="test", secret_key="query-count-secret-0123456789", **overrides)  # type: ignore[arg-type]


def _send_one_edition(factory) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Release and send a due edition as one batch; (messages sent, statements run)."""
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *args: batches.append(args))
    assert len(batches) == 1
    statements: list[str] = []
    engine = factory.kw["bind"]

    def count(conn, cursor, statement, *rest):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    transport = RecordingTransport()
    try:
        send_batch(factory, *batches[0], transport, _settings())  # the defaults, as deployed
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(transport.sent), len(statements)


def test_send_batch_queries_do_not_grow_with_readers(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    seed_readers(factory, 40, prefix="first")
    sent_small, queries_small = _send_one_edition(factory)
    seed_readers(factory, 360, prefix="second")
    sent_large, queries_large = _send_one_edition(factory)
    assert (sent_small, sent_large) == (40, 400)
    assert queries_large == queries_small
    # claim, readers, rendering data, one bulk record per outcome, finish: a small constant
    assert queries_small <= 14


def test_two_releasers_at_once_plan_one_edition_once(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    seed_readers(factory, 300)
    edition_id = due_edition(factory)
    barrier = threading.Barrier(2)
    results: list[list[int]] = []
    enqueued: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def releaser() -> None:
        barrier.wait()
        released = release_due(factory, utcnow(), 100, lambda *args: enqueued.append(args))
        with lock:
            results.append(released)

    threads = [threading.Thread(target=releaser) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(len, results)) == [0, 1]
    assert len(enqueued) == 3
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 300
        assert session.get_one(Edition, edition_id).planned_count == 300


def test_a_batch_run_twice_concurrently_sends_each_message_once(factory) -> None:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    seed_readers(factory, 150)
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *args: batches.append(args))
    transports = [RecordingTransport(), RecordingTransport()]
    barrier = threading.Barrier(2)

    def run(transport: RecordingTransport) -> None:
        barrier.wait()
        send_batch(factory, *batches[0], transport, _settings())

    threads = [threading.Thread(target=run, args=(t,)) for t in transports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recipients = [rcpt for t in transports for _, rcpt, _ in t.sent]
    assert len(recipients) == 150 and len(set(recipients)) == 150


class _Crash(BaseException):
    """Stands in for SIGKILL: nothing after it runs, no except clause catches it."""


class CrashingTransport(RecordingTransport):
    def __init__(self, crash_after: int) -> None:
        super().__init__()
        self.crash_after = crash_after

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        if len(self.sent) == self.crash_after:
            raise _Crash()
        super().send(envelope_from, recipient, message)


def test_a_batch_killed_after_some_250s_never_sends_those_again(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    seed_stories(factory)
    seed_readers(factory, 120)
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *args: batches.append(args))
    settings = _settings(record_every_messages=50, journal_dir=tmp_path, lease_seconds=10)
    crashing = CrashingTransport(crash_after=73)  # 50 recorded in the database, 23 only journalled
    with pytest.raises(_Crash):
        send_batch(factory, *batches[0], crashing, settings)
    with factory() as session:
        recorded = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent"))
    assert len(crashing.sent) == 73 and recorded == 50
    # After the lease, the batch runs again (the sweeper's doing): the journal goes first.
    later = utcnow() + timedelta(seconds=30)
    retry = RecordingTransport()
    send_batch(factory, *batches[0], retry, settings, clock=lambda: later)
    first = {rcpt for _, rcpt, _ in crashing.sent}
    second = [rcpt for _, rcpt, _ in retry.sent]
    assert len(second) == 120 - 73 and first.isdisjoint(second)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) == 120
    assert not list(tmp_path.rglob("*.journal"))


class SlowTransport(RecordingTransport):
    """Takes 4 ms a message and notes when each recipient was handed over."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, float] = {}

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        import time

        time.sleep(0.004)
        super().send(envelope_from, recipient, message)
        self.times[recipient] = time.monotonic()


def test_an_unsubscribe_reaches_a_running_batch_within_milliseconds(factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the database re-check pushed out of reach, only the published departure can stop
    the message: nobody gets a message after their unsubscribe committed."""
    import time

    import digest.delivery.sender
    from digest.infra.departures import watch
    from digest.readers import RequestContext, find_by_token, unsubscribe
    from digest.store.models import Subscriber

    monkeypatch.setattr(digest.delivery.sender, "RECHECK_EVERY_SECONDS", 3600)
    watch()  # the listener is up before the batch starts, as in a worker that has run one
    time.sleep(0.3)
    seed_stories(factory)
    addresses = seed_readers(factory, 300)
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *args: batches.append(args))
    transport = SlowTransport()
    sender = threading.Thread(target=send_batch, args=(factory, *batches[0], transport,
                                                        _settings(record_every_messages=100000)))
    sender.start()
    while len(transport.sent) < 60:
        time.sleep(0.01)
    leavers = addresses[150:160]
    left_at = {}
    for address in leavers:
        with factory.begin() as session:
            token = session.scalar(select(Subscriber.token).where(Subscriber.email == address))
            unsubscribe(session, find_by_token(session, token), RequestContext(channel="one-click"))
        left_at[address] = time.monotonic()
    sender.join(timeout=60)
    late = [a for a in leavers if a in transport.times and transport.times[a] > left_at[a]]
    assert not late, late
    assert len(transport.sent) >= 290  # the rest went out
    with factory() as session:
        statuses = dict(session.execute(
            select(Subscriber.email, Delivery.status).join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Subscriber.email.in_(leavers))).all())
    assert all(statuses[a] == ("sent" if a in transport.times else "skipped") for a in leavers)


def test_rate_limits_hold_across_two_senders(factory) -> None:  # type: ignore[no-untyped-def]
    """Two batches at once share one Redis bucket: 100 messages/s in all, gmail.com 20/s.
    Only lower bounds on time are asserted (a slow machine cannot make them fail)."""
    import time
    import uuid

    seed_stories(factory)
    seed_readers(factory, 150, prefix="plain")
    seed_readers(factory, 30, prefix="gm", extra=[])
    with factory.begin() as session:
        session.execute(text("UPDATE subscribers SET email = replace(email, '@example.org', '@gmail.com'), "
                             "email_key = replace(email_key, '@example.org', '@gmail.com') WHERE email LIKE 'gm%'"))
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 90, lambda *args: batches.append(args))
    assert len(batches) == 2
    bucket = uuid.uuid4().hex[:8]  # fresh buckets for this test
    settings = _settings(rate_limit_per_second=100, domain_rate_limits="gmail.com=20",
                         task_queue=f"rl-{bucket}")
    import digest.delivery.throttle

    original = digest.delivery.throttle.TokenBucket

    def scoped(client, name, rate, burst=None):  # type: ignore[no-untyped-def]
        return original(client, f"{bucket}:{name}", rate, burst)

    digest.delivery.throttle.TokenBucket = scoped  # type: ignore[misc]
    transports = [RecordingTransport(), RecordingTransport()]
    try:
        started = time.monotonic()
        threads = [threading.Thread(target=send_batch, args=(factory, *batch, transport, settings))
                   for batch, transport in zip(batches, transports, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        digest.delivery.throttle.TokenBucket = original  # type: ignore[misc]
    sent = [rcpt for t in transports for _, rcpt, _ in t.sent]
    assert len(sent) == len(set(sent)) == 180
    # The buckets start full (one second's worth): 180 messages at 100/s need at least
    # 0.8 s; 30 to gmail.com at 20/s at least 0.5 s. Without the shared limit: ~0.1 s.
    assert elapsed >= 0.75
