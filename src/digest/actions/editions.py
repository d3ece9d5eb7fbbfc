"""Actions on editions: create, curate, test, and steer them through their states.

Each is one function for every entry point: the editor and ops pages, the JSON API and the
command line call it with their Actor. It makes the change, writes the audit row in the
same transaction, and enqueues batches only after that transaction has committed.

An action that leaves an edition scheduled and due (scheduling it, creating it scheduled
for now, moving its time to now) asks for its release after commit (`deps.release_now`),
so it starts sending within a second instead of at beat's next tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from digest.actions.base import Actor, Deps, Outcome, audited
from digest.actions.shapes import edition_json
from digest.delivery import enqueue_batches, ledger
from digest.editions import (
    EditionChanges,
    ab,
    curate,
    duplicate_edition,
    edit_edition,
    editable_edition,
    edition_picks,
    edition_view,
    get_edition,
    lifecycle,
    override,
    reorder,
    send_test,
    set_note,
)
from digest.editions import create_edition as make_edition
from digest.errors import Invalid, NotFound
from digest.mail import Transport
from digest.store import Edition, EditionStatus, utcnow


def _target(edition_id: int) -> str:
    return f"edition:{edition_id}"


# ------------------------------------------------------------------ states


def schedule(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """draft → scheduled. A draft whose send time has passed goes out now (released at
    once, `data["sending_now"]`); the audit row keeps the time it had."""
    now = utcnow()
    with audited(deps, actor, "edition.schedule", _target(edition_id)) as (session, row):
        edition = get_edition(session, edition_id)
        if edition.status == EditionStatus.DRAFT and edition.send_at < now:
            row.detail["send_at_was"] = edition.send_at.isoformat()
        changed = lifecycle.transition(session, edition_id, "schedule", now=now)
        due = changed and get_edition(session, edition_id).send_at <= now
        row.update(changed=changed)
    if due:
        deps.release_now()
    return Outcome(changed, data={"sending_now": due})


def unschedule(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """scheduled → draft: it will not go out until scheduled again."""
    with audited(deps, actor, "edition.unschedule", _target(edition_id)) as (session, row):
        changed = lifecycle.transition(session, edition_id, "unschedule")
        row.update(changed=changed)
    return Outcome(changed)


def cancel(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """Cancel; deliveries not yet sent become `skipped` (code edition_cancelled), except
    rows a live batch holds, which that batch records itself."""
    now = utcnow()
    with audited(deps, actor, "edition.cancel", _target(edition_id)) as (session, row):
        changed = lifecycle.transition(session, edition_id, "cancel", reason=f"cancel by {actor.name}", now=now)
        if changed:
            ledger.skip_cancelled(session, edition_id, now)
        row.update(changed=changed)
    return Outcome(changed)


def pause(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """sending → paused; running batches stop within a second and leave the rest queued."""
    with audited(deps, actor, "edition.pause", _target(edition_id)) as (session, row):
        changed = lifecycle.transition(session, edition_id, "pause", reason=f"pause by {actor.name}")
        row.update(changed=changed)
    return Outcome(changed)


def resume(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """paused → sending, then batches for the deliveries still queued (only those: what was
    sent is final, so a resume can never send twice)."""
    now = utcnow()
    with audited(deps, actor, "edition.resume", _target(edition_id)) as (session, row):
        changed = lifecycle.transition(session, edition_id, "resume", now=now)
        if changed:
            lifecycle.mark_enqueued(session, edition_id, now)
        row.update(changed=changed)
    if changed:
        _send_queued(deps, edition_id, now)
    return Outcome(changed)


def retry_failed(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """Requeue only the failed deliveries (never the sent or bounced) and send them; a paused
    edition keeps them queued until it is resumed. `count`: how many this call requeued."""
    now = utcnow()
    with audited(deps, actor, "edition.retry-failed", _target(edition_id)) as (session, row):
        get_edition(session, edition_id)
        requeued = ledger.requeue_failed(session, edition_id)
        sending = False
        if requeued:
            reopened, sending = lifecycle.reopen(session, edition_id, now, "retry-failed")
            if reopened:
                lifecycle.mark_enqueued(session, edition_id, now)
        row.update(changed=requeued)  # how many: 0 when there was nothing (more) to do
    if sending:
        _send_queued(deps, edition_id, now)
    return Outcome(bool(requeued), requeued)


def send_missing(deps: Deps, actor: Actor, edition_id: int) -> Outcome:
    """For an edition cut short (cancelled, or paused for good): send to the deliveries that
    never reached a final state, and to those skipped only because it was cancelled (by
    their code). `count`: how many this call set going; 0 on a second press."""
    now = utcnow()
    with audited(deps, actor, "edition.send-missing", _target(edition_id)) as (session, row):
        get_edition(session, edition_id)
        missing = 0
        if ledger.count_cut_short(session, edition_id):
            reopened, _ = lifecycle.reopen(session, edition_id, now, "send-missing")
            if reopened:  # already sending: a second press does nothing more
                missing = ledger.requeue_cut_short(session, edition_id)
                lifecycle.mark_enqueued(session, edition_id, now)
        row.update(changed=missing)
    if missing:
        _send_queued(deps, edition_id, now)
    return Outcome(bool(missing), missing)


def _send_queued(deps: Deps, edition_id: int, now: datetime) -> None:
    """After commit: one send_batch per range of queued rows; none left: the edition is done."""
    if not enqueue_batches(deps.factory, edition_id, deps.settings.batch_size, deps.enqueue_batch):
        with deps.factory.begin() as session:
            lifecycle.finish_if_complete(session, edition_id, now)


STATE_ACTIONS = {
    "schedule": schedule, "unschedule": unschedule, "cancel": cancel, "pause": pause, "resume": resume,
    "retry-failed": retry_failed, "send-missing": send_missing,
}


def act(deps: Deps, actor: Actor, edition_id: int, name: str) -> Outcome:
    """The state action called `name` (an entry point's button or path)."""
    try:
        action = STATE_ACTIONS[name]
    except KeyError:
        raise NotFound(f"unknown action {name!r}; use one of {', '.join(STATE_ACTIONS)}") from None
    return action(deps, actor, edition_id)


# ------------------------------------------------------------------ content


def create_edition(deps: Deps, actor: Actor, *, subject: str, send_at: datetime, topics: str | None,
                   max_stories: int, window_hours: int, draft: bool,
                   newsletter: int | str | None = None, ab_subject: str | None = None,
                   ab_share: int | None = None, ab_wait: int | None = None) -> dict[str, Any]:
    """A one-off edition (a draft to curate, or scheduled at once: released at once when
    due); returns its JSON. With `newsletter` (an id or slug) it goes to that newsletter's
    readers, without to every active reader. With `ab_subject` it tests that second
    subject on `ab_share` % of its readers for `ab_wait` minutes (digest.editions.ab)."""
    now = utcnow()
    with audited(deps, actor, "edition.add") as (session, row):
        plan = ab.check_ab(subject, ab_subject or None, ab_share, ab_wait)
        edition = make_edition(session, subject=subject, send_at=send_at, topics=topics,
                               allowed_topics=deps.settings.topic_list, max_stories=max_stories,
                               window_hours=window_hours, draft=draft, newsletter=newsletter)
        row.target = _target(edition.id)
        row.update(draft=draft)
        if plan is not None:
            ab.set_ab(session, edition.id, plan)
            row.update(ab_subject=plan.alternative, ab_share=plan.share, ab_wait=plan.wait_minutes)
        if edition.newsletter_id is not None:
            row.update(newsletter_id=edition.newsletter_id)
        data = edition_json(edition)
    if not draft and send_at <= now:
        deps.release_now()
    return data


def duplicate(deps: Deps, actor: Actor, edition_id: int) -> dict[str, Any]:
    """A new draft copied from edition `edition_id` (its stories' curation, note, topics and
    limits; digest.editions.duplicate_edition); returns the copy's JSON. AlreadySent (409)
    when the original reached anyone."""
    with audited(deps, actor, "edition.duplicate", _target(edition_id)) as (session, row):
        copy = duplicate_edition(session, get_edition(session, edition_id))
        ab.copy_ab(session, edition_id, copy.id)
        row.update(copy_id=copy.id)
        return edition_json(copy)


def edit(deps: Deps, actor: Actor, edition_id: int, changes: EditionChanges) -> Outcome:
    """Change a draft or scheduled edition's subject, send time, story limit or window, a
    one-off's newsletter, and (from the API, with them) the note; EditionFrozen (409) once
    it has started sending. A scheduled edition moved to a time that has passed goes out
    now (released at once, `data["sending_now"]`). The audit row lists the fields changed,
    each with its new value and the one it replaced (the note's text is not copied).
    `data`: the edition's JSON (`edition`) and the fields changed (`changed`)."""
    now = utcnow()
    with audited(deps, actor, "edition.edit", _target(edition_id)) as (session, row):
        done = edit_edition(session, edition_id, changes, now)
        row.update(changed=list(done.changed))
        for name, (was, new) in done.changed.items():
            if name != "note":
                row.update(**{name: new, f"{name}_was": was})
        data = edition_json(session.get_one(Edition, edition_id))
    if done.due:
        deps.release_now()
    return Outcome(bool(done.changed), data={"edition": data, "changed": list(done.changed),
                                             "sending_now": done.due})


def note(deps: Deps, actor: Actor, edition_id: int, text: str | None) -> dict[str, Any]:
    """The editor's note at the top of the edition; empty clears it."""
    with audited(deps, actor, "edition.note", _target(edition_id)) as (session, _row):
        set_note(session, edition_id, text)
        return edition_json(session.get_one(Edition, edition_id))


CURATION_ACTIONS = ("pin", "exclude", "clear", "unpin", "up", "down")


def pick(deps: Deps, actor: Actor, edition_id: int, story_id: int, action: str,
         position: int | None = None) -> bool:
    """One story in one edition: pin (at `position`), exclude, clear (back to automatic),
    unpin, or move up or down. Moving makes the order shown the edition's pins, so what
    the editor arranged is what goes out. Returns whether the story shows in the edition
    afterwards (a pin can be hidden: the edition full of pins, the story already sent)."""
    if action not in CURATION_ACTIONS:
        raise Invalid(f"action must be one of {', '.join(CURATION_ACTIONS)}")
    name = "reorder" if action in ("up", "down", "unpin") else action
    with audited(deps, actor, f"edition.{name}", _target(edition_id)) as (session, row):
        edition = editable_edition(session, edition_id)
        row.update(story_id=story_id)
        if action in ("pin", "exclude", "clear"):
            curate(session, edition_id, story_id, action, position)
        else:
            order = _new_order(session, edition, story_id, action)
            reorder(session, edition_id, order)
            row.update(story_ids=order)
        session.flush()
        return story_id in [s.id for s in edition_view(session, edition).stories]


def _new_order(session: Any, edition: Edition, story_id: int, action: str) -> list[int]:
    pinned, _ = edition_picks(session, edition.id)
    if action == "unpin":
        return [sid for sid in pinned if sid != story_id]
    order = [s.id for s in edition_view(session, edition).stories]
    if story_id not in order:
        raise Invalid(f"story {story_id} is not in this edition")
    index = order.index(story_id)
    other = index - 1 if action == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    # Pins over the edition's limit are not shown, but stay pins, after the ones shown:
    # moving a story never turns a pin into something else.
    return order + [sid for sid in pinned if sid not in order]


def order(deps: Deps, actor: Actor, edition_id: int, story_ids: list[int]) -> None:
    """Exactly these stories as the edition's pins, in this order."""
    with audited(deps, actor, "edition.reorder", _target(edition_id)) as (session, row):
        row.update(story_ids=story_ids)
        reorder(session, edition_id, story_ids)


def rewrite(deps: Deps, actor: Actor, edition_id: int, story_id: int, *, headline: str | None,
            summary: str | None) -> None:
    """This edition's headline and summary for a story; the stored story is untouched."""
    with audited(deps, actor, "edition.override", _target(edition_id)) as (session, row):
        row.update(story_id=story_id)
        override(session, edition_id, story_id, headline=headline, summary=summary)


def test_send(deps: Deps, actor: Actor, edition_id: int, address: str, transport: Transport,
              as_email: str | None = None) -> str:
    """One [TEST] copy to `address` (no delivery row), as a sample reader or as the reader
    `as_email`; returns its Message-ID. SendError when the mail server refused it."""
    with audited(deps, actor, "edition.test", _target(edition_id)) as (session, row):
        get_edition(session, edition_id)
        row.update(to=address)
        if as_email:
            row.update(**{"as": as_email})
        return send_test(session, edition_id, address, transport, deps.settings, as_email)
