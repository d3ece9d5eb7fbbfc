"""Subject A/B tests decided: beat's tick, on no one's behalf (the audit says "system").

For each sending edition whose test is due: the clicks are flushed from Redis first (so the
decision sees every click counted until now, also those another flush took from Redis and
has not committed yet: digest.clicks.flush_edition waits for it), the rule (digest.editions.ab.decide) reads
the test's numbers from the ledger and the click tables, the decision and its numbers are
recorded by a conditional UPDATE that only one caller wins, and that caller gives the rows
the test held the winner's subject, in the same transaction with its audit row; their
batches are enqueued after the commit. A second run, or a second worker at once, finds the
test decided and changes nothing. A paused edition's test waits for its resume, a
cancelled one's is not decided (its held rows are skipped like every queued row).
"""

from __future__ import annotations

import logging
from datetime import datetime

import redis

from digest.actions.base import Actor, Deps, audited
from digest.clicks import flush_clicks, flush_edition, subject_arms
from digest.delivery import enqueue_batches, ledger
from digest.editions import ab, lifecycle

log = logging.getLogger(__name__)
SYSTEM = Actor(None, "system")


def decide_due(deps: Deps, client: redis.Redis, now: datetime) -> list[int]:
    """Decide every due test and send the rest; returns the editions whose rest this call
    set going. Safe to run twice, and on two workers at once."""
    with deps.factory() as session:
        due = ab.due_tests(session, now)
        held = ab.decided_with_held(session)
    if due:
        try:
            flush_clicks(deps.factory, client)  # settles people's clicks into the unique counts
            for edition_id in due:
                # Again, edition by edition: this one waits for a flush in flight elsewhere
                # (a beat's, or a second decider's) to commit the counts it took.
                flush_edition(deps.factory, client, edition_id)
        except redis.RedisError as exc:
            # Deciding on counts that may be a flush behind could pick the wrong subject;
            # the next tick tries again (Redis is the broker too: nothing moves without it).
            log.warning("subject tests not decided: the click flush failed (%s)", exc)
            due = []
    released: list[int] = []
    for edition_id in due:
        if _decide(deps, edition_id, now):
            released.append(edition_id)
    for edition_id, winner in held:
        with deps.factory.begin() as session:
            count = ledger.release_held(session, edition_id, winner)
            if count:
                lifecycle.mark_enqueued(session, edition_id, now)
        if count:
            released.append(edition_id)
    for edition_id in released:
        batches = enqueue_batches(deps.factory, edition_id, deps.settings.batch_size, deps.enqueue_batch)
        log.info("edition %s: subject test decided, %s batches for the rest", edition_id, batches,
                 extra={"edition_id": edition_id})
    return released


def _decide(deps: Deps, edition_id: int, now: datetime) -> bool:
    """One test: True if this call decided it (and released the rest)."""
    with audited(deps, SYSTEM, "edition.ab-decide", f"edition:{edition_id}") as (session, row):
        arms = subject_arms(session, edition_id)
        decision = ab.decide(*arms)
        won = ab.record_decision(session, edition_id, decision, arms, now)
        row.write = won
        if not won:
            return False  # another run decided it first
        rest = ledger.release_held(session, edition_id, decision.winner)
        lifecycle.mark_enqueued(session, edition_id, now)
        row.update(winner_variant=decision.winner, reason_code=decision.code, rest=rest,
                   sent=[arms[0].sent, arms[1].sent], unique_clicks=[arms[0].unique_clicks, arms[1].unique_clicks],
                   clicks=[arms[0].clicks, arms[1].clicks])
    log.info("edition %s: subject %s wins (%s): %s", edition_id, decision.winner, decision.code, decision.reason,
             extra={"edition_id": edition_id})
    return True
