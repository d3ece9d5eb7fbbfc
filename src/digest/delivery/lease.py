"""A batch's lease on its claimed rows, kept alive by a heartbeat while the batch lives.

Why a heartbeat: a lease must outlive its holder by little (that is how long a killed
worker's rows wait: recovery time) and never expire while the holder may still send (that
would let a second worker send the same rows: duplicates). A lease renewed only between
messages cannot do both, since one message to a slow server can take longer than any
short lease. So a thread renews it every RENEW_FRACTION of a lease, whatever the send loop
is doing, and dies with the process: SIGKILL, OOM or a lost host stop the renewals, and the
rows are free one lease later at most.

The rule that makes a takeover safe: the send loop asks `holds()` before every message and
sends only while the last successful renewal leaves more than a margin of lease (a quarter
of a lease: covers one message's time on the wire and clock skew between hosts). Renewals
failing (the database out of reach) therefore stop the sending before the lease can expire
and be claimed elsewhere. Each renewal names the lease it extends by its end time
(`lease_until` is the token: a later claim always writes a later time), so a holder that
lost its rows never extends someone else's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.delivery import ledger

log = logging.getLogger(__name__)

# Renew every quarter of a lease: two renewals in a row may fail (a database hiccup of up to
# half a lease) without effect; after a third the send loop stops, a quarter lease early.
RENEW_FRACTION = 0.25
# The send loop stops when less than this share of a lease is left since the last renewal:
# the time one message may take after the check, plus clock skew between hosts.
MARGIN_FRACTION = 0.25


_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)  # Linux; elsewhere monotonic


def lease_clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended (a paused VM
    wakes with its leases long gone: CLOCK_MONOTONIC would not have noticed). Read it
    before the wall clock a lease's end is computed from, so the end the holder believes
    in is never later than the one in the database."""
    return time.clock_gettime(_CLOCK)



class LeaseKeeper:
    """Renews the lease on the `rows` rows a batch claimed (ids `first_id`..`last_id`) from a
    daemon thread.

    `lock` is held around each renewal; the send loop holds it around its own writes to
    the same rows (and reports them with `recorded`), so the two never update them at once
    (two UPDATEs taking the same rows in different orders could deadlock) and a renewal
    knows how many rows must still be ours."""

    def __init__(self, factory: sessionmaker[Session], edition_id: int, first_id: int, last_id: int,
                 rows: int, held_until: datetime, claimed_at: float, lease_seconds: float,
                 clock: Callable[[], datetime]) -> None:
        self._factory = factory
        self._key = (edition_id, first_id, last_id)
        self._unrecorded = rows  # claimed rows whose result is not in the database yet
        self._lost = False
        # Every end our lease may have in the database: the last one we know committed and
        # those of renewals that failed since (a COMMIT whose answer was lost still counts).
        self._held = [held_until]
        self._lease_seconds = lease_seconds
        self._clock = clock
        self.lock = threading.Lock()
        # The time (lease_clock) before which the lease is surely ours: `claimed_at` was read
        # before the wall clock the claim's end came from.
        self._valid_until = claimed_at + lease_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digest-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        # A renewal in flight ends within the database's timeouts; the batch need not wait for
        # more than a lease (a late renewal only extends rows the batch left untried).
        self._thread.join(timeout=self._lease_seconds)

    def holds(self) -> bool:
        """Whether a message may start now: the lease has more than the margin left."""
        return not self._lost and lease_clock() < self._valid_until - self._lease_seconds * MARGIN_FRACTION

    def recorded(self, rows: int) -> None:
        """The send loop wrote these many rows' results (each clears its row's lease); call
        it holding `lock`, in the transaction's wake."""
        self._unrecorded -= rows

    def renew(self) -> bool:
        """One renewal now; False when it failed (the lease then runs down)."""
        started = lease_clock()
        now = self._clock()
        until = now + timedelta(seconds=self._lease_seconds)
        edition_id, first_id, last_id = self._key
        try:
            with self.lock, self._factory.begin() as session:
                extended = ledger.renew_lease(session, edition_id, first_id, last_id, self._held + [until], until)
                expected = self._unrecorded
        except Exception as exc:  # noqa: BLE001 - the database away: retried next beat
            self._held.append(until)
            log.warning("lease renewal for edition %s rows %s-%s failed: %s", edition_id, first_id, last_id,
                        " ".join(str(exc).split()), extra={"edition_id": edition_id})
            return False
        self._held = [until]
        if extended < expected:
            # Some of our rows carried another lease already: ours ran out and they were
            # claimed elsewhere. Never send again in this batch.
            self._lost = True
            log.warning("edition %s rows %s-%s: lease lost to another worker", edition_id, first_id, last_id,
                        extra={"edition_id": edition_id})
            return False
        self._valid_until = started + self._lease_seconds
        return True

    def _run(self) -> None:
        while not self._stopped.wait(self._lease_seconds * RENEW_FRACTION):
            self.renew()
