"""Actions staff take on readers: add one, import many, export the list; and on one reader's
behalf: unsubscribe them, change their newsletters or topics, send a fresh confirmation,
erase them. (Readers' own actions, such as signing up or leaving, are digest.readers' and
carry their consent records instead.)

A change on a reader's behalf writes a consent event with the channel `admin` (whatever
the entry point) and the audit row, naming the staff member, in the same transaction. No
action here makes a reader active: a reader who left comes back only by signing up again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from digest import delivery
from digest.actions.base import Actor, Deps, Outcome, audited
from digest.actions.shapes import reader_json, subscriber_json
from digest.readers import (
    ImportOptions,
    ImportReport,
    ReaderFilter,
    RequestContext,
    add_subscriber,
    change_newsletters,
    change_topics,
    count_readers,
    get_reader,
    import_file,
    resend_confirmation,
    subscribed_ids,
    unsubscribe,
)

log = logging.getLogger(__name__)

STAFF = RequestContext(channel="admin")  # the consent channel of every change staff make


def _target(reader_id: int) -> str:
    return f"reader:{reader_id}"


def add_reader(deps: Deps, actor: Actor, email: str, *, name: str | None = None,
               topics: str | Iterable[str] | None = None, confirmed: bool = False) -> dict[str, Any]:
    """One reader (pending unless `confirmed`: consent gathered elsewhere); returns its JSON."""
    with audited(deps, actor, "reader.add") as (session, row):
        subscriber = add_subscriber(session, email, name=name, topics=topics, confirmed=confirmed,
                                    allowed_topics=deps.settings.topic_list, consent_source=actor.via)
        row.target = _target(subscriber.id)
        row.update(confirmed=confirmed)
        return subscriber_json(subscriber)


def import_readers(deps: Deps, actor: Actor, source: str | TextIO, *, confirmed: bool = False,
                   progress: Callable[[int], None] | None = None, service: str | None = None,
                   status: str | None = None, file_name: str | None = None,
                   send_confirmations: bool = False, read_aside: bool = False) -> ImportReport:
    """A subscriber export, digest's own CSV (email,name,topics) or another service's
    (`service`, detected from the header when None): valid rows imported with their
    statuses, bad ones reported by line; all in one transaction, so an import cut short
    (the process killed) leaves nothing behind. Confirmations to pending readers, with
    `send_confirmations`, are enqueued after the commit. `progress(n)`: n more rows read.
    `read_aside`: the file is read in a second process while this one writes (the command
    line's; a web server's threads keep to one process)."""
    options = ImportOptions(service=service, status=status, confirmed=confirmed, file_name=file_name,
                            send_confirmations=send_confirmations)
    with audited(deps, actor, "readers.import", "csv") as (session, row):
        report = import_file(session, source, allowed_topics=deps.settings.topic_list, options=options,
                             progress=progress, read_aside=read_aside)
        row.update(rows=report.rows, imported=report.imported, duplicates=report.duplicates,
                   suppressed=report.suppressed, rejected=len(report.errors) - report.suppressed)
        if report.service != "csv":
            row.update(service=report.service, statuses=report.statuses)
    for notice_id in report.notice_ids:
        try:
            deps.enqueue_notice(notice_id)
        except Exception as exc:  # noqa: BLE001 - the rows are committed: the sweeper sends them later
            log.warning("notice %s not enqueued now (%s); the sweeper will send it", notice_id, exc)
            break
    return report


def export_readers(deps: Deps, actor: Actor, which: ReaderFilter, *, fmt: str = "csv") -> int:
    """Record that the readers `which` matches are leaving as a file (who took them, with
    which filter, how many, as `fmt`); returns how many. The caller then writes them with
    `readers.export_csv` or `readers.export_lines`."""
    with audited(deps, actor, "readers.export", fmt) as (session, row):
        count = count_readers(session, which)
        shown = {"q": which.q, "status": which.status, "newsletter_id": which.newsletter_id, "topic": which.topic}
        row.update(count=count, **{key: value for key, value in shown.items() if value not in (None, "")})
    return count


# ------------------------------------------------------------------ one reader, on their behalf


def unsubscribe_reader(deps: Deps, actor: Actor, reader_id: int) -> Outcome:
    """The reader leaves at once (running send loops hear of it after commit); `data` is the
    reader's JSON. Idempotent: `changed` is False if they had already left."""
    with audited(deps, actor, "reader.unsubscribe", _target(reader_id)) as (session, row):
        subscriber = get_reader(session, reader_id)
        changed = unsubscribe(session, subscriber, STAFF)
        row.update(changed=changed)
        data = reader_json(subscriber, sorted(subscribed_ids(session, reader_id)))
    return Outcome(changed, data=data)


def set_newsletters(deps: Deps, actor: Actor, reader_id: int, newsletter_ids: Iterable[int]) -> Outcome:
    """Exactly these newsletters for the reader; their status is untouched."""
    wanted = sorted(set(newsletter_ids))
    with audited(deps, actor, "reader.newsletters", _target(reader_id)) as (session, row):
        changed = change_newsletters(session, get_reader(session, reader_id), wanted, ctx=STAFF)
        row.update(newsletters=wanted, changed=changed)
    return Outcome(changed)


def set_topics(deps: Deps, actor: Actor, reader_id: int, topics: Iterable[str]) -> Outcome:
    """Exactly these topics for the reader (none: every topic); their status is untouched."""
    with audited(deps, actor, "reader.topics", _target(reader_id)) as (session, row):
        subscriber = get_reader(session, reader_id)
        changed = change_topics(session, subscriber, topics, allowed_topics=deps.settings.topic_list, ctx=STAFF)
        row.update(topics=subscriber.topics, changed=changed)
    return Outcome(changed)


def send_confirmation(deps: Deps, actor: Actor, reader_id: int) -> Outcome:
    """A fresh confirmation email to a pending reader, enqueued after commit (NotPending for
    anyone else). A second press within a minute sends nothing more (`changed` False)."""
    with audited(deps, actor, "reader.confirm", _target(reader_id)) as (session, row):
        notice_id = resend_confirmation(session, get_reader(session, reader_id))
        row.update(changed=notice_id is not None, **({"notice_id": notice_id} if notice_id else {}))
    if notice_id is not None:
        try:
            deps.enqueue_notice(notice_id)
        except Exception as exc:  # noqa: BLE001 - the row is committed: the sweeper sends it later
            log.warning("notice %s not enqueued now (%s); the sweeper will send it", notice_id, exc)
    return Outcome(notice_id is not None)


def erase_reader(deps: Deps, actor: Actor, reader_id: int) -> Outcome:
    """Forget the reader (address, name, choices; a hash stays on the suppression list so no
    form or import re-adds them). `changed` is False if they were erased already."""
    with audited(deps, actor, "reader.erase", _target(reader_id)) as (session, row):
        subscriber = get_reader(session, reader_id)
        changed = subscriber.erased_at is None
        if changed:
            delivery.erase_reader(session, subscriber, STAFF)
        row.update(changed=changed)
    return Outcome(changed)
