"""Ops actions under concurrency, against a real worker sending to a real SMTP server.

Two people pressing the same button at once (two threads in the library, two HTTP posts
to two web processes) change an edition once; whatever the order, the SMTP server ends
with exactly one copy per reader. A pause lands within a chunk, a resume sends only the
rest, and an edition most of whose readers get 4xx pauses itself.

Sends go through the ops lane (see tests/support/lane.py): its own worker, web server and a
slowable, holdable aiosmtpd server, with one attempt per delivery and auto-pause over the
last 20 attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from digest import actions
from digest.config import Settings
from digest.delivery import AUTO_PAUSE_PREFIX
from digest.editions import lifecycle
from tests.support.factories import due_edition, make_user, seed_readers
from tests.support.lane import (
    LANE_BATCH_SIZE,
    LANE_CONCURRENCY,
    LANE_RECORD_EVERY_MESSAGES,
    Lane,
    audit_rows,
    copies,
    done_message,
    edition_status,
    ledger,
    mixed_readers,
    page_token,
    press,
    quiet_release,
    status_json,
    wait_no_leases,
)
from tests.support.stack import Stack
from tests.support.web import OPS, signed_in

pytestmark = pytest.mark.integration

T = TypeVar("T")
PAUSE_LANDS_WITHIN_SECONDS = 2.0
QUIET_SECONDS = 0.6


@pytest.fixture
def ops_client(live: Stack, lane: Lane) -> Iterator[httpx.Client]:
    """An ops person's signed-in client on the lane's web server (`ops` here is digest.observe.health)."""
    make_user(live, OPS, "ops")
    with signed_in(lane.web_url, OPS) as client:
        yield client


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results  # type: ignore[return-value]


def two_presses_at_once(lane: Lane, edition_id: int, action: str) -> list[str]:
    """Two ops people, each with the dashboard open (on two web servers), press `action` at
    the same moment."""
    with signed_in(lane.web_urls[0], OPS) as first, signed_in(lane.web_urls[1], OPS) as second:
        tokens = [page_token(client) for client in (first, second)]
        responses = at_once(*[
            (lambda c=client, t=token: c.post(f"/ops/editions/{edition_id}/{action}", data={"csrf_token": t}))
            for client, token in zip((first, second), tokens, strict=True)])
        return sorted(done_message(response, client)
                      for response, client in zip(responses, (first, second), strict=True))


def assert_one_copy_each(lane: Lane, addresses: list[str]) -> None:
    received = copies(lane.smtp)
    assert set(received) == set(addresses), set(addresses) ^ set(received)
    twice = {address: n for address, n in received.items() if n != 1}
    assert not twice, f"readers with more than one copy: {twice}"


def wait_until_quiet(lane: Lane, quiet: float = QUIET_SECONDS, timeout: float = 15) -> float:
    """Until the SMTP server has had no new message for `quiet` seconds; returns the
    monotonic time the last one arrived."""
    deadline = time.monotonic() + timeout
    last, changed_at = lane.smtp.count(), time.monotonic()
    while time.monotonic() - changed_at < quiet:
        assert time.monotonic() < deadline, "the SMTP server never went quiet"
        time.sleep(0.02)
        now_count = lane.smtp.count()
        if now_count != last:
            last, changed_at = now_count, time.monotonic()
    return changed_at


# ------------------------------------------------------------------ two presses at once


def no_notice(notice_id: int) -> None:
    raise AssertionError(f"an edition action queued notice {notice_id}")


def no_release() -> None:
    raise AssertionError("an ops action asked for a release")


def lane_deps(live: Stack, lane: Lane) -> actions.Deps:
    """What the ops page hands an action, with the lane's queue and batch size."""
    return actions.Deps(live.factory, Settings(batch_size=LANE_BATCH_SIZE), lane.enqueue, no_notice, no_release)


@pytest.mark.parametrize("how", ["threads", "http"])
def test_two_resumes_at_once_change_the_edition_once(live: Stack, lane: Lane, how: str) -> None:
    addresses = seed_readers(live.factory, 80)
    edition_id = quiet_release(live)
    with live.factory.begin() as session:
        assert lifecycle.transition(session, edition_id, "pause")
    lane.smtp.delay = 0.005
    if how == "threads":
        def resume() -> bool:
            return actions.editions.resume(lane_deps(live, lane), actions.Actor.command_line(), edition_id).changed

        assert sorted(at_once(resume, resume)) == [False, True]
    else:
        make_user(live, OPS, "ops")
        assert two_presses_at_once(lane, edition_id, "resume") == [
            f"edition {edition_id}: resume done", f"edition {edition_id}: resume had nothing (more) to do"]
        assert sorted(d["changed"] for *_, d in audit_rows(live)) == [0, 1]  # type: ignore[index]
    lane.wait_for(edition_id, "sent")
    assert_one_copy_each(lane, addresses)
    assert ledger(live, edition_id)["sent"] == 80


@pytest.mark.parametrize("how", ["threads", "http"])
def test_two_retry_failed_at_once_send_nobody_two_copies(live: Stack, lane: Lane, how: str) -> None:
    addresses = mixed_readers(live, 6, 10, "tempfail")
    edition_id = due_edition(live.factory)
    lane.smtp.tempfail_always = True
    lane.release_due()
    lane.wait_for(edition_id, "sent")
    assert ledger(live, edition_id)["failed"] == 6
    lane.smtp.tempfail_always = False
    if how == "threads":
        def retry() -> int:
            return actions.editions.retry_failed(lane_deps(live, lane), actions.Actor.command_line(),
                                                 edition_id).count or 0

        assert sorted(at_once(retry, retry)) == [0, 6]
    else:
        make_user(live, OPS, "ops")
        assert two_presses_at_once(lane, edition_id, "retry-failed") == [
            f"edition {edition_id}: retry-failed done (6)",
            f"edition {edition_id}: retry-failed had nothing (more) to do"]
    lane.wait_for(edition_id, "sent")
    assert_one_copy_each(lane, addresses)
    assert ledger(live, edition_id) == {"planned": 66, "sent": 66, "failed": 0, "bounced": 0, "skipped": 0,
                                        "pending": 0}


# ------------------------------------------------------------------ pause, resume, cancel mid-send


def test_a_pause_mid_send_lands_within_a_chunk_and_resume_sends_the_rest_once(
        live: Stack, lane: Lane, ops_client: httpx.Client) -> None:
    addresses = seed_readers(live.factory, 240)
    edition_id = due_edition(live.factory)
    lane.smtp.delay = 0.02  # about 40 messages a second per worker process
    lane.release_due()
    deadline = time.monotonic() + 20
    while lane.smtp.count() < 40:
        assert time.monotonic() < deadline, lane.log_tail()
        time.sleep(0.02)

    # While it moves, what /ops/status.json says lies between two looks at the ledger.
    before = ledger(live, edition_id)
    health = status_json(ops_client, edition_id)
    after = ledger(live, edition_id)
    assert health["status"] == "sending" and health["planned"] == 240
    assert before["sent"] <= health["sent"] <= after["sent"] and after["pending"] <= health["pending"]

    token = page_token(ops_client)
    response = ops_client.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": token})
    assert done_message(response, ops_client) == f"edition {edition_id}: pause done"
    paused_at, count_at_pause = time.monotonic(), lane.smtp.count()  # the pause is in the database now
    last_message_at = wait_until_quiet(lane)
    assert last_message_at - paused_at < PAUSE_LANDS_WITHIN_SECONDS
    # Each worker process finishes the chunk it is in (10 messages, or 1 s) and stops.
    assert lane.smtp.count() - count_at_pause <= LANE_CONCURRENCY * LANE_RECORD_EVERY_MESSAGES
    wait_no_leases(live, edition_id)
    paused = ledger(live, edition_id)
    assert edition_status(live, edition_id) == ("paused", f"pause by {OPS}")
    assert paused["sent"] == lane.smtp.count() < 240 and paused["pending"] == 240 - paused["sent"]
    time.sleep(0.5)
    assert ledger(live, edition_id) == paused and lane.smtp.count() == paused["sent"]

    lane.smtp.delay = 0.0
    assert press(ops_client, edition_id, "resume") == f"edition {edition_id}: resume done"
    lane.wait_for(edition_id, "sent")
    assert_one_copy_each(lane, addresses)
    assert ledger(live, edition_id)["sent"] == 240


def test_a_cancel_with_messages_in_flight_then_send_missing_sends_nobody_two_copies(
        live: Stack, lane: Lane, ops_client: httpx.Client) -> None:
    addresses = seed_readers(live.factory, 60)
    edition_id = due_edition(live.factory)
    lane.smtp.hold(after=12)  # some sent; each worker process then waits with one in hand
    lane.release_due()
    lane.wait_held()
    assert press(ops_client, edition_id, "cancel") == f"edition {edition_id}: cancel done"
    lane.smtp.release()
    wait_until_quiet(lane, quiet=0.5)
    wait_no_leases(live, edition_id)
    cancelled, went_out = ledger(live, edition_id), lane.smtp.count()
    press(ops_client, edition_id, "send-missing")
    lane.wait_for(edition_id, "sent")
    # Send-missing reaches only those who got nothing, and the cancelled edition's ledger
    # had what went out on record as sent, the rest as skipped.
    assert_one_copy_each(lane, addresses)
    assert (cancelled["sent"], cancelled["skipped"]) == (went_out, 60 - went_out)


# ------------------------------------------------------------------ auto-pause


def test_an_edition_most_readers_refuse_pauses_itself(live: Stack, lane: Lane,
                                                      ops_client: httpx.Client) -> None:
    mixed_readers(live, 30, 1, "tempfail-a", "tempfail-b", "tempfail-c")  # 3 of every 4 refuse
    edition_id = due_edition(live.factory)
    lane.smtp.tempfail_always = True
    lane.release_due()
    lane.wait_for(edition_id, "paused")
    wait_until_quiet(lane, quiet=0.5)
    wait_no_leases(live, edition_id)

    status, reason = edition_status(live, edition_id)
    assert status == "paused" and reason is not None and reason.startswith(f"{AUTO_PAUSE_PREFIX}: ")
    assert "of the last 20 attempts failed" in reason and "451" in reason
    stopped = ledger(live, edition_id)
    assert stopped["pending"] > 0 and stopped["failed"] >= 10  # stopped before the end
    health = status_json(ops_client, edition_id)
    assert health["status"] == "paused" and health["auto_paused"] is True
    assert health["status_reason"] == reason
    page = ops_client.get("/ops").text
    assert '<span class="bad">paused by itself</span>' in page and reason.split(" (most often")[0] in page
    time.sleep(0.5)
    assert ledger(live, edition_id) == stopped  # it stays paused: nothing more is tried
    assert edition_status(live, edition_id)[0] == "paused"
