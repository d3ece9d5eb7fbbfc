"""Edition states and the one table of moves between them; the only writer of
`editions.status`.

    draft ⇄ scheduled → sending → sent
                │          ⇅ (pause, auto-pause / resume)
                │        paused
                ├──────────┴──────→ cancelled        (cancel: draft, scheduled, sending, paused;
                │                                      retire, drop-occurrence: draft, scheduled)
                └→ skipped                            (missed its time, too thin, or no reader)
    sent, cancelled (and paused, for send-missing) → sending   (reopen: retry, send missing)
    scheduled ⇄ draft also by hold / unhold, when the edition's newsletter pauses and resumes

Every move is one conditional UPDATE (`WHERE status IN (…)`), so pressing a button twice,
or two processes racing (beat on several hosts, two ops at once), changes the edition
once. A move carries a `StatusCode` beside the words in `status_reason`: programs (the
ops view, send-to-the-missing) read the code, people read the words.

What a move means for the deliveries (skip them on cancel, requeue them on retry) is the
ledger's business (digest.delivery.ledger); digest.actions does both in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from digest.editions import tallies
from digest.editions.create import get_edition
from digest.errors import Conflict, Invalid
from digest.store import Delivery, DeliveryStatus, Edition, EditionStatus, StatusCode, utcnow

S = EditionStatus
REASON_MAX_CHARS = 500  # the column


@dataclass(frozen=True)
class Move:
    sources: tuple[EditionStatus, ...]
    target: EditionStatus
    code: StatusCode | None = None
    # Columns set with the status: "now" stands for the time of the move.
    stamps: dict[str, Any] = field(default_factory=dict)
    # Say nothing more about why: the reason of the state before no longer holds.
    clears_reason: bool = False


# The whole state machine. Staff may ask for the first five by name (transition()); the
# others are taken by the send pipeline through their own functions below.
MOVES: dict[str, Move] = {
    "schedule": Move((S.DRAFT,), S.SCHEDULED),
    "unschedule": Move((S.SCHEDULED,), S.DRAFT),
    "cancel": Move((S.DRAFT, S.SCHEDULED, S.PAUSED, S.SENDING), S.CANCELLED, StatusCode.CANCELLED,
                   {"finished_at": "now"}),
    "pause": Move((S.SENDING,), S.PAUSED, StatusCode.PAUSED),
    # Resumed: sending again, and why it was paused is no longer current.
    "resume": Move((S.PAUSED,), S.SENDING),
    "claim": Move((S.SCHEDULED,), S.SENDING, stamps={"started_at": "now"}),
    # A finished edition is sent, full stop: "retrying failed deliveries" is over.
    "finish": Move((S.SENDING,), S.SENT, stamps={"finished_at": "now"}, clears_reason=True),
    "skip-thin": Move((S.SENDING,), S.SKIPPED, StatusCode.TOO_THIN, {"finished_at": "now"}),
    # Released to nobody: skipped and saying why, never a green "sent" with 0 of 0.
    "skip-empty": Move((S.SENDING,), S.SKIPPED, StatusCode.NO_READERS, {"finished_at": "now"}),
    "skip-missed": Move((S.SCHEDULED,), S.SKIPPED, StatusCode.MISSED, {"finished_at": "now"}),
    "auto-pause": Move((S.SENDING,), S.PAUSED, StatusCode.AUTO_PAUSED),
    "retry-failed": Move((S.SENT, S.CANCELLED), S.SENDING, StatusCode.RETRYING_FAILED, {"finished_at": None}),
    # Send-to-the-missing also takes a paused edition: its point is to get the rest out.
    "send-missing": Move((S.SENT, S.CANCELLED, S.PAUSED), S.SENDING, StatusCode.SENDING_MISSING,
                         {"finished_at": None}),
    # A newsletter paused: its upcoming editions wait as drafts; resumed: they go again.
    "hold": Move((S.SCHEDULED,), S.DRAFT, StatusCode.NEWSLETTER_PAUSED),
    "unhold": Move((S.DRAFT,), S.SCHEDULED, clears_reason=True),
    # A newsletter archived, or an occurrence its new schedule no longer has: the editions
    # that had not started will not go.
    "retire": Move((S.DRAFT, S.SCHEDULED), S.CANCELLED, StatusCode.NEWSLETTER_ARCHIVED, {"finished_at": "now"}),
    "drop-occurrence": Move((S.DRAFT, S.SCHEDULED), S.CANCELLED, StatusCode.SCHEDULE_CHANGED,
                            {"finished_at": "now"}),
}
STAFF_ACTIONS = ("schedule", "unschedule", "cancel", "pause", "resume")
# An edition's subject, send time and limits change only in these; once it is claimed what
# readers get is what the ledger says.
EDITABLE = (S.DRAFT, S.SCHEDULED)
# Kept for callers that ask "which states allow X" and "where does X lead".
ALLOWED_FROM = {name: move.sources for name, move in MOVES.items()}
TARGET = {name: MOVES[name].target for name in STAFF_ACTIONS}


class LifecycleError(Conflict):
    """The edition is in a state that refuses this move."""


def _move(session: Session, name: str, where: ColumnElement[bool], now: datetime, reason: str | None,
          **extra: Any) -> int:
    """Apply MOVES[name] to the editions `where` picks that are in one of its source
    states; returns how many moved."""
    move = MOVES[name]
    values: dict[str, Any] = {"status": move.target, **extra}
    if move.code is not None or reason is not None or name in STAFF_ACTIONS or move.clears_reason:
        values["status_code"] = move.code
        values["status_reason"] = reason[:REASON_MAX_CHARS] if reason else None
    for column, value in move.stamps.items():
        values[column] = now if value == "now" else value
    result = session.execute(
        update(Edition).where(where, Edition.status.in_(move.sources)).values(**values)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def transition(session: Session, edition_id: int, action: str, reason: str | None = None,
               now: datetime | None = None) -> bool:
    """A staff action on one edition: True if this call changed it, False if it was already
    so (pressing twice does nothing more). NotFound, Invalid (no such action) or
    LifecycleError (the edition's state refuses it)."""
    if action not in STAFF_ACTIONS:
        raise Invalid(f"unknown action {action!r}; use one of {', '.join(STAFF_ACTIONS)}")
    now = now or utcnow()
    edition = get_edition(session, edition_id)
    extra: dict[str, Any] = {}
    if action == "schedule" and edition.send_at < now:
        # A draft whose time passed while it was being curated goes out now, rather than
        # being skipped as "missed" by the release step.
        extra["send_at"] = now
    if _move(session, action, Edition.id == edition_id, now, reason, **extra) != 1:
        session.refresh(edition)
        if edition.status == MOVES[action].target:
            return False
        raise LifecycleError(f"cannot {action} an edition that is {edition.status.value}")
    session.expire(edition)
    return True


def claim(session: Session, edition_id: int, now: datetime) -> bool:
    """scheduled → sending for a due edition. Of any number of beat or worker processes
    racing here exactly one sees True."""
    return _move(session, "claim", (Edition.id == edition_id) & (Edition.send_at <= now), now, None) == 1


def finish_if_complete(session: Session, edition_id: int, now: datetime) -> bool:
    """sending → sent once no delivery is left queued. Conditional, so safe to repeat."""
    pending = select(Delivery.id).where(Delivery.edition_id == edition_id,
                                        Delivery.status == DeliveryStatus.QUEUED).exists()
    if _move(session, "finish", (Edition.id == edition_id) & ~pending, now, None) != 1:
        return False
    tallies.write(session, edition_id, now)  # no row can change now but by a bounce: counted once
    return True


def skip_thin(session: Session, edition_id: int, now: datetime, chosen: int, minimum: int) -> None:
    """A just-claimed edition with too few qualifying stories is skipped, not sent half-empty."""
    _move(session, "skip-thin", Edition.id == edition_id, now,
          f"too thin: {chosen} qualifying stor{'y' if chosen == 1 else 'ies'}, the minimum is {minimum} "
          "(check topics, window and featured stories)")


def skip_empty(session: Session, edition_id: int, now: datetime, reason: str) -> None:
    """A just-claimed edition that found no reader is skipped, with `reason` naming why."""
    _move(session, "skip-empty", Edition.id == edition_id, now, reason)


def skip_missed(session: Session, now: datetime, limit_minutes: int) -> int:
    """Scheduled editions more than `limit_minutes` late (workers were down) are skipped,
    with the reason kept for ops; those within the limit go out late, once. (Local-time
    editions count from their first zone; later zones have not been missed.)"""
    cutoff = now - timedelta(minutes=limit_minutes)
    return _move(session, "skip-missed", Edition.send_at < cutoff, now,
                 f"missed: not sent within {limit_minutes} min of its time (workers down?)")


def auto_pause(session: Session, edition_id: int, now: datetime, reason: str) -> bool:
    """A sending edition pauses itself (too many failures); True if this call paused it."""
    return _move(session, "auto-pause", Edition.id == edition_id, now, reason) == 1


def reopen(session: Session, edition_id: int, now: datetime, why: str) -> tuple[bool, bool]:
    """Back to sending from a finished state, for `why` = "retry-failed" or "send-missing":
    (this call changed it, it is sending now)."""
    reason = {"retry-failed": "retrying failed deliveries", "send-missing": "sending to the missing"}[why]
    if _move(session, why, Edition.id == edition_id, now, reason) == 1:
        tallies.drop(session, edition_id)
        return True, True
    status = session.scalar(select(Edition.status).where(Edition.id == edition_id))
    return False, status == EditionStatus.SENDING


def _upcoming(newsletter_id: int, now: datetime) -> ColumnElement[bool]:
    return (Edition.newsletter_id == newsletter_id) & (Edition.send_at > now)


def hold_upcoming(session: Session, newsletter_id: int, now: datetime, name: str) -> int:
    """The newsletter was paused: its scheduled editions still to come become drafts that
    say why (an edition due now has been claimed, or is released as usual)."""
    return _move(session, "hold", _upcoming(newsletter_id, now), now, f"held: {name} is paused")


def release_held(session: Session, newsletter_id: int, now: datetime) -> int:
    """The newsletter was resumed: the drafts its pause held back, and whose time has not
    come, are scheduled again; a draft an editor made stays a draft."""
    return _move(session, "unhold", _upcoming(newsletter_id, now)
                 & (Edition.status_code == StatusCode.NEWSLETTER_PAUSED), now, None)


def retire_upcoming(session: Session, newsletter_id: int, now: datetime, name: str) -> int:
    """The newsletter was archived: every edition of it that has not started is cancelled."""
    return _move(session, "retire", Edition.newsletter_id == newsletter_id, now, f"{name} was archived")


def drop_occurrences(session: Session, edition_ids: list[int], now: datetime) -> int:
    """Editions whose occurrence a changed schedule no longer has, if they have not started."""
    if not edition_ids:
        return 0
    return _move(session, "drop-occurrence", Edition.id.in_(edition_ids), now,
                 "its newsletter's schedule changed: this occurrence is no longer on it")


def change_while_editable(session: Session, edition_id: int, values: dict[str, Any]) -> bool:
    """Set `values` (subject, send time, limits: never the status) on an edition that is
    still a draft or scheduled; False if it has left those states. Conditional like every
    move, so an edit racing the release either lands before the claim (which then sees the
    new send time) or changes nothing."""
    result = session.execute(
        update(Edition).where(Edition.id == edition_id, Edition.status.in_(EDITABLE)).values(**values)
        .execution_options(synchronize_session=False))
    return (result.rowcount or 0) == 1


def mark_enqueued(session: Session, edition_id: int, now: datetime) -> None:
    """When send_batch tasks were last enqueued (the sweeper re-enqueues after a lease).
    Not a state: any process may stamp it."""
    session.execute(update(Edition).where(Edition.id == edition_id).values(enqueued_at=now)
                    .execution_options(synchronize_session=False))


def is_auto_paused(edition: Edition) -> bool:
    return edition.status == EditionStatus.PAUSED and edition.status_code == StatusCode.AUTO_PAUSED
