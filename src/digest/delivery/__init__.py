"""Delivery: from a due edition to a recorded result for every reader.

    release_due ─► planner.release_edition (claim, freeze stories, plan the ledger)
                ─► enqueue send_batch per id range (after commit)
    send_batch  ─► claim with a lease (renewed by a heartbeat thread: lease.py)
                ─► render once ─► personalise ─► SMTP (while the lease holds)
                ─► journal each 250 ─► ledger.record in bulk ─► finish the edition
    sweep       ─► re-enqueue work whose lease expired or whose task was lost; finish what is done
    compact     ─► old months into tallies and reader summaries, then their partition dropped (retention)

`ledger` is the only writer of `deliveries`; `notices` the only writer of a notice's
status. Enqueueing is a function handed in (a Celery task in production): nothing here
knows Celery.
"""

from digest.delivery import ledger, notices, retention
from digest.delivery.autopause import AUTO_PAUSE_PREFIX, check_auto_pause, error_reason
from digest.delivery.erasure import erase_reader
from digest.delivery.journal import SendJournal, journal_dir, replay_orphans
from digest.delivery.ledger import Result, backoff_seconds
from digest.delivery.notices import next_edition_time, send_notice
from digest.delivery.pipeline import Enqueue, enqueue_batches, release_due, schedule, sweep
from digest.delivery.retention import CompactionReport, compact_deliveries
from digest.delivery.planner import BATCH_SIZE, left_out, release_edition
from digest.delivery.sender import MESSAGES, SEND_SECONDS, BatchOutcome, send_batch, send_one

__all__ = [
    "AUTO_PAUSE_PREFIX", "BATCH_SIZE", "MESSAGES", "SEND_SECONDS", "BatchOutcome", "CompactionReport", "Enqueue", "Result",
    "SendJournal", "backoff_seconds", "check_auto_pause", "compact_deliveries", "erase_reader", "enqueue_batches", "error_reason", "journal_dir",
    "ledger", "left_out", "next_edition_time", "notices", "release_due", "release_edition", "replay_orphans", "retention", "schedule",
    "send_batch", "send_notice", "send_one", "sweep",
]
