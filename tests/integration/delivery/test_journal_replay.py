"""A batch killed after some 250s leaves its journal; the worker process that replaces the
killed one records those sends at once, before any batch runs (not only when this host's
next batch begins), so no other host can claim and resend them once the lease is gone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.delivery.journal import journal_dir
from digest.delivery.pipeline import release_due
from digest.store.models import Delivery, utcnow
from tests.support.factories import due_edition, seed_readers, seed_stories
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
REPLAY_WITHIN_SECONDS = 20


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # the field after the state
                found.append(int(entry.name))
    return found


def test_a_replacement_worker_process_records_a_killed_batchs_sends_at_once(live: Stack) -> None:
    seed_stories(live.factory)
    seed_readers(live.factory, 6)
    edition_id = due_edition(live.factory)
    release_due(live.factory, utcnow(), 1000, lambda *batch: None)  # planned; no batch is enqueued
    with live.factory() as session:
        ids = list(session.scalars(select(Delivery.id).where(Delivery.edition_id == edition_id).order_by(Delivery.id)))
    assert len(ids) == 6
    sent = {ids[0]: "<journalled-0@digest.test>", ids[3]: "<journalled-3@digest.test>"}
    # What a batch killed right after two 250s leaves: its journal, with no writer holding it.
    folder = journal_dir(live.database_url)
    folder.mkdir(parents=True, exist_ok=True)
    journal = folder / "424242-killed-batch.journal"
    journal.write_text("".join(f"{delivery_id}\t{message_id}\t1,2\n" for delivery_id, message_id in sent.items()))
    # The pool replaces a child killed with SIGKILL.
    children = children_of(live.worker_pid)
    assert children, "the stack's worker has no pool processes"
    os.kill(children[0], signal.SIGKILL)

    deadline = time.monotonic() + REPLAY_WITHIN_SECONDS
    rows: dict[int, tuple[str, str | None]] = {}
    while time.monotonic() < deadline:
        with live.factory() as session:
            rows = {d.id: (str(d.status), d.message_id) for d in session.scalars(
                select(Delivery).where(Delivery.edition_id == edition_id))}
        if all(rows[i] == ("sent", m) for i, m in sent.items()):
            break
        time.sleep(0.2)
    assert {i: rows[i] for i in sent} == {i: ("sent", m) for i, m in sent.items()}, rows
    # Only the journal did this: no batch ran, nothing went to the SMTP server.
    assert sorted(i for i, (status, _) in rows.items() if status == "queued") == sorted(set(ids) - set(sent))
    assert live.smtp.messages == []
    assert not journal.exists()
    assert len(children_of(live.worker_pid)) == len(children)  # the pool is whole again
