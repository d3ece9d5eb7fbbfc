"""The batch lease against real databases, in-process: renewed by its heartbeat while the
batch lives (however slow a message), given up before it can be taken over when renewals
fail, and work whose holder died swept at once (delivery/lease.py, planner.py)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from digest.config import Settings
from digest.delivery import ledger
from digest.delivery.lease import LeaseKeeper, lease_clock
from digest.delivery.pipeline import release_due, sweep
from digest.delivery.sender import send_batch
from digest.mail.transport import RecordingTransport
from digest.store.models import Delivery, Edition, utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories

pytestmark = pytest.mark.integration
LEASE_SECONDS = 10  # the smallest the settings accept


def _settings(**overrides: object) -> Settings:
    return Settings(env="test", secret_key="lease-test-secret-0123456789",  # type: ignore[arg-type]
                    lease_seconds=LEASE_SECONDS, **overrides)


def _release(factory, readers: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    seed_stories(factory)
    seed_readers(factory, readers)
    due_edition(factory)
    batches: list[tuple[int, int, int]] = []
    release_due(factory, utcnow(), 1000, lambda *args: batches.append(args))
    assert len(batches) == 1
    return batches[0]


class StallingTransport(RecordingTransport):
    """The `stall_at`-th message takes `stall_seconds` (a server that answers DATA late);
    every message takes `each_seconds`."""

    def __init__(self, stall_at: int = -1, stall_seconds: float = 0.0, each_seconds: float = 0.0) -> None:
        super().__init__()
        self.stall_at, self.stall_seconds, self.each_seconds = stall_at, stall_seconds, each_seconds
        self.stalling = threading.Event()

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        if len(self.sent) == self.stall_at:
            self.stalling.set()
            time.sleep(self.stall_seconds)
        time.sleep(self.each_seconds)
        super().send(envelope_from, recipient, message)


def test_one_message_slower_than_the_lease_is_not_sent_twice(factory) -> None:  # type: ignore[no-untyped-def]
    """A message stuck for longer than a whole lease: the heartbeat keeps the rows, so a
    second worker running the same batch meanwhile (the sweeper's doing) claims nothing."""
    batch = _release(factory, 30)
    slow = StallingTransport(stall_at=5, stall_seconds=LEASE_SECONDS * 1.3)
    first = threading.Thread(target=send_batch, args=(factory, *batch, slow, _settings()))
    first.start()
    assert slow.stalling.wait(10)
    others = RecordingTransport()
    claimed = []
    while first.is_alive():  # past the lease's first end, and again every half second
        claimed.append(send_batch(factory, *batch, others, _settings()).claimed)
        time.sleep(0.5)
    first.join()
    assert sum(claimed) == 0 and others.sent == []
    assert len({rcpt for _, rcpt, _ in slow.sent}) == len(slow.sent) == 30
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) == 30


def test_a_batch_whose_renewals_fail_stops_before_its_lease_can_be_taken(factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The database out of reach for renewals only: the batch stops while a margin of the
    lease is left, writes nothing for the rows it did not try (they are not its to release),
    and the next holder, after the lease, sends exactly the rest."""
    batch = _release(factory, 60)

    def unreachable(*_: object, **__: object) -> int:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(ledger, "renew_lease", unreachable)
    paced = StallingTransport(each_seconds=0.25)
    started = time.monotonic()
    outcome = send_batch(factory, *batch, paced, _settings())
    stopped_after = time.monotonic() - started
    # It stopped at three quarters of the lease (the margin is a quarter): before the lease
    # could be taken over, with room to spare for the message in flight.
    assert LEASE_SECONDS * 0.7 < stopped_after < LEASE_SECONDS - 0.5, stopped_after
    assert 0 < len(paced.sent) < 60 and outcome.counts == {"sent": len(paced.sent)}
    now = utcnow()
    with factory() as session:
        untried = session.execute(select(Delivery.lease_until).where(Delivery.status == "queued")).scalars().all()
    assert len(untried) == 60 - len(paced.sent) and all(until > now for until in untried)
    monkeypatch.undo()
    assert send_batch(factory, *batch, RecordingTransport(), _settings()).claimed == 0  # still leased
    later = now + timedelta(seconds=LEASE_SECONDS)
    rest = RecordingTransport()
    send_batch(factory, *batch, rest, _settings(), clock=lambda: later)
    recipients = [rcpt for _, rcpt, _ in paced.sent + rest.sent]
    assert len(recipients) == len(set(recipients)) == 60


def test_the_sweeper_re_enqueues_a_dead_holders_rows_as_soon_as_its_lease_ends(factory) -> None:  # type: ignore[no-untyped-def]
    """Rows whose lease ran out since the last enqueue: the holder died, so they go out at
    the next sweep; not while the lease lasts, and only once for one death."""
    edition_id, first_id, last_id = _release(factory, 20)
    now = utcnow()
    with factory.begin() as session:  # a batch claimed them and died a moment later
        ledger.claim(session, edition_id, first_id, last_id, now, now + timedelta(seconds=LEASE_SECONDS))
    enqueued: list[tuple[int, int, int]] = []

    def sweep_at(seconds: float) -> list[int]:
        return sweep(factory, now + timedelta(seconds=seconds), 1000, LEASE_SECONDS,
                     lambda *args: enqueued.append(args))

    assert sweep_at(LEASE_SECONDS - 1) == []  # its holder may be alive
    assert sweep_at(LEASE_SECONDS + 1) == [edition_id]  # long before a lease of quiet since the release
    assert enqueued == [(edition_id, first_id, last_id)]
    assert sweep_at(LEASE_SECONDS + 2) == []  # enqueued: not again for the same death


def test_the_sweeper_leaves_an_editions_waiting_tasks_alone_while_one_of_its_batches_runs(factory) -> None:  # type: ignore[no-untyped-def]
    """Never-claimed rows (their task lost with Redis, or still waiting behind others) are
    enqueued again after a lease of quiet, but not while a batch of the edition holds a live
    lease: a big edition's tasks wait in Redis for minutes behind its running batches."""
    edition_id, first_id, last_id = _release(factory, 20)
    now = utcnow()
    with factory.begin() as session:  # a batch is running on the first five rows
        first_five = session.scalars(select(Delivery.id).where(Delivery.edition_id == edition_id)
                                     .order_by(Delivery.id).limit(5)).all()
        session.execute(update(Delivery).where(Delivery.id.in_(first_five))
                        .values(lease_until=now + timedelta(seconds=3 * LEASE_SECONDS)))
    enqueued: list[tuple[int, int, int]] = []
    later = now + timedelta(seconds=2 * LEASE_SECONDS)
    assert sweep(factory, later, 1000, LEASE_SECONDS, lambda *args: enqueued.append(args)) == []
    with factory.begin() as session:  # that batch ended (its results clear the lease)
        session.execute(update(Delivery).where(Delivery.id.in_(first_five)).values(lease_until=None))
    assert sweep(factory, later, 1000, LEASE_SECONDS, lambda *args: enqueued.append(args)) == [edition_id]
    with factory() as session:
        assert session.get_one(Edition, edition_id).enqueued_at is not None


def test_a_renewal_that_finds_a_row_claimed_elsewhere_ends_the_batchs_sending(factory) -> None:  # type: ignore[no-untyped-def]
    """A renewal counts the rows it extended: fewer than the batch has unrecorded means its
    lease ran out and another worker claimed some. The batch must not send again, even
    though the renewal itself went through."""
    edition_id, first_id, last_id = _release(factory, 10)
    now = utcnow()
    held = now + timedelta(seconds=LEASE_SECONDS)
    claimed_at = lease_clock()
    with factory.begin() as session:
        rows = ledger.claim(session, edition_id, first_id, last_id, now, held)
    keeper = LeaseKeeper(factory, edition_id, rows[0].id, rows[-1].id, len(rows), held, claimed_at,
                         LEASE_SECONDS, utcnow)
    assert keeper.holds() and keeper.renew() and keeper.holds()
    with keeper.lock:  # the send loop recorded three results
        with factory.begin() as session:
            session.execute(update(Delivery).where(Delivery.id.in_([r.id for r in rows[:3]]))
                            .values(status="sent", lease_until=None))
        keeper.recorded(3)
    assert keeper.renew() and keeper.holds()
    with factory.begin() as session:  # another worker's claim of one row (after ours ran out)
        session.execute(update(Delivery).where(Delivery.id == rows[-1].id)
                        .values(lease_until=utcnow() + timedelta(seconds=2 * LEASE_SECONDS)))
    assert not keeper.renew() and not keeper.holds()
