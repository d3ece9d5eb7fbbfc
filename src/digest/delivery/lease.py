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

# Renew every quarter of a lease: three renewals in a row may fail (a database hiccup of
# up to three quarters of a lease) before the send loop must stop.
RENEW_FRACTION = 0.25
# The send loop stops when less than this share of a lease is left since the last renewal.
MARGIN_FRACTION = 0.25


class LeaseKeeper:
    """Renews the lease on rows `first_id`..`last_id` of an edition from a daemon thread.

    `lock` is held around each renewal; the send loop holds it around its own writes to
    the same rows, so the two never update them at once (two UPDATEs taking the same rows
    in different orders could deadlock)."""

    def __init__(self, factory: sessionmaker[Session], edition_id: int, first_id: int, last_id: int,
                 held_until: datetime, claimed_at: float, lease_seconds: float,
                 clock: Callable[[], datetime], lock: threading.Lock) -> None:
        self._factory = factory
        self._key = (edition_id, first_id, last_id)
        # Every end our lease may have in the database: the last one we know committed and
        # those of renewals that failed since (a COMMIT whose answer was lost still counts).
        self._held = [held_until]
        self._lease_seconds = lease_seconds
        self._clock = clock
        self.lock = lock
        # Monotonic time before which the lease is surely ours: measured from before the
        # statement that set it, so the database's copy ends no earlier than this.
        self._valid_until = claimed_at + lease_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digest-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join()

    def holds(self) -> bool:
        """Whether a message may start now: the lease has more than the margin left."""
        return time.monotonic() < self._valid_until - self._lease_seconds * MARGIN_FRACTION

    def renew(self) -> bool:
        """One renewal now; False when it failed (the lease then runs down)."""
        started = time.monotonic()
        now = self._clock()
        until = now + timedelta(seconds=self._lease_seconds)
        edition_id, first_id, last_id = self._key
        try:
            with self.lock, self._factory.begin() as session:
                ledger.renew_lease(session, edition_id, first_id, last_id, self._held + [until], until)
        except Exception as exc:  # noqa: BLE001 - the database away: retried next beat
            self._held.append(until)
            log.warning("lease renewal for edition %s rows %s-%s failed: %s", edition_id, first_id, last_id,
                        " ".join(str(exc).split()), extra={"edition_id": edition_id})
            return False
        self._held = [until]
        self._valid_until = started + self._lease_seconds
        return True

    def _run(self) -> None:
        while not self._stopped.wait(self._lease_seconds * RENEW_FRACTION):
            self.renew()
