"""An ops person in a real browser (Debian's Chromium driven by Playwright) watches a send
on /ops: the numbers move without a reload (htmx polls /ops/panel every 2 s) and agree with
the deliveries table; Pause stops it, Resume finishes it, and every reader gets one copy.

The send goes through the ops lane (see tests/support/lane.py): a worker of its own sending to an
aiosmtpd server slowed to ~40 messages a second per worker process, and held when the
page must be compared with a ledger that stands still.

The dashboard and the audit log are photographed at desktop and phone width into
test-artifacts/screenshots/ops-<page>-<width>.png for a person to look at.

PostgreSQL only: what the browser sees does not depend on the database (the page is the
same template over the same queries), each run costs ~20 s of polling, and the numbers
and actions it relies on are checked on both databases by test_ops_http and
test_ops_concurrency.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.support.browser import (
    check_and_shoot,
    heading,
    launch_chromium,
    local_context,
    submit_sign_in,
)
from tests.support.factories import due_edition, make_user, seed_readers
from tests.support.lane import (
    COUNTS,
    LANE_CONCURRENCY,
    LANE_RECORD_EVERY_MESSAGES,
    Lane,
    copies,
    ledger,
    unsent,
    wait_no_leases,
)
from tests.support.stack import Stack
from tests.support.web import OPS

pytestmark = pytest.mark.integration

POLL_SECONDS = 2
READERS = 260
LEFT_AT_HOLD = 60
# Sent but not yet written to the ledger: under a chunk per worker process.
UNRECORDED_AT_MOST = LANE_CONCURRENCY * LANE_RECORD_EVERY_MESSAGES


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, lane: Lane) -> Iterator[BrowserContext]:
    yield from local_context(browser, base_url=lane.web_url, placeholder_images=False)


def shoot(page: Page, name: str) -> None:
    """Screenshots at both widths (ops-<name>-<width>.png); one h1, nothing wider than the phone."""
    check_and_shoot(page, name, prefix="ops", labels=False)


def cell(row: Locator, column: str) -> int:
    return int(row.locator(f"[data-col={column}]").inner_text())


def row_counts(row: Locator) -> dict[str, int]:
    return {column: cell(row, column) for column in COUNTS}


def expect_row(row: Locator, counts: dict[str, int], timeout_ms: int = 3 * POLL_SECONDS * 1000) -> None:
    """Within a few polls, the row shows exactly these numbers."""
    for column, value in counts.items():
        expect(row.locator(f"[data-col={column}]")).to_have_text(str(value), timeout=timeout_ms)


_NEXT_SWAP_SENT = """edition => new Promise(resolve => {
    document.body.addEventListener('htmx:beforeRequest', () => {
        document.body.addEventListener('htmx:afterSwap', () => resolve(
            document.querySelector(`[data-edition="${edition}"] [data-col=sent]`).textContent), {once: true});
    }, {once: true});
})"""


def next_poll_sent(page: Page, live: Stack, edition_id: int) -> tuple[int, tuple[int, int]]:
    """The sent count shown after the next htmx poll, without a reload, and the ledger's
    sent count just before that poll was asked for and just after it was shown."""
    before = ledger(live, edition_id)["sent"]
    shown = int(page.evaluate(_NEXT_SWAP_SENT, edition_id))
    return shown, (before, ledger(live, edition_id)["sent"])


# The browser run uses PostgreSQL only (the same numbers are checked on both backends over
# HTTP): the session `stack` fixture is narrowed to that one parameter here, not skipped.
@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
def test_ops_watches_pauses_and_resumes_a_send(live: Stack, lane: Lane, context: BrowserContext) -> None:
    make_user(live, OPS, "ops")
    addresses = seed_readers(live.factory, READERS, extra=["reject-1@example.org", "reject-2@example.org"])
    edition_id = due_edition(live.factory, "Morning featured stories")
    page = context.new_page()
    page.goto("/login?next=/ops")
    submit_sign_in(page, OPS)
    heading(page, "Send queue")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    lane.smtp.delay = 0.04  # ~25 messages a second per worker process
    lane.smtp.hold(after=READERS - LEFT_AT_HOLD)  # it cannot finish before we have looked
    lane.release_due()
    row = page.locator(f'#panel :is(tr, article)[data-edition="{edition_id}"]')
    deadline = time.monotonic() + 10
    while ledger(live, edition_id)["sent"] == 0:
        assert time.monotonic() < deadline, lane.log_tail()
        time.sleep(0.05)

    # While it moves: the sent count the next poll brings lies between the ledger just
    # before that poll was asked for and the ledger just after it was shown.
    first, (low, high) = next_poll_sent(page, live, edition_id)
    assert 0 < low <= first <= high
    second, (low, high) = next_poll_sent(page, live, edition_id)
    assert low <= second <= high
    assert first < second, "the sent count did not grow between two polls"
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(row.locator(".badge")).to_have_text("sending")

    # Held: both worker processes wait inside a message, so the ledger stands still and the
    # next poll must show it exactly; the SMTP server is ahead by what is not yet recorded.
    lane.wait_held()
    held = ledger(live, edition_id)
    assert 0 <= lane.smtp.count() - held["sent"] <= UNRECORDED_AT_MOST
    expect_row(row, held)
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"

    # Pause, pressed while each worker process has a message in hand; then let them go on.
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_have_text(f"edition {edition_id}: pause done")
    expect(row.locator(".badge")).to_have_text("paused")
    lane.smtp.release()
    wait_no_leases(live, edition_id)
    paused = ledger(live, edition_id)
    # Pause lands at each worker process's next chunk (10 messages, or 1 s): it stopped early.
    assert paused["pending"] >= LEFT_AT_HOLD - UNRECORDED_AT_MOST
    assert lane.smtp.count() == paused["sent"]
    expect_row(row, paused)
    expect(page.locator(f'article[data-edition="{edition_id}"]')).to_contain_text(f"pause by {OPS}")
    assert ledger(live, edition_id) == paused  # a poll later: paused means nothing more is sent
    shoot(page, "dashboard")

    lane.smtp.delay = 0.0
    row.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_have_text(f"edition {edition_id}: resume done")
    expect(row.locator(".badge")).to_have_text("sent", timeout=30_000)
    final = ledger(live, edition_id)
    assert final == {"planned": READERS + 2, "sent": READERS, "failed": 0, "bounced": 2, "skipped": 0,
                     "pending": 0}, (final, unsent(live, edition_id), lane.log_tail())
    expect_row(row, final)
    assert row_counts(row) == final
    received = copies(lane.smtp)
    assert set(received) == set(addresses) - {"reject-1@example.org", "reject-2@example.org"}
    assert set(received.values()) == {1}
    expect(page.locator('[data-section="errors"]')).to_contain_text("550")

    page.goto("/ops/audit")
    heading(page, "Audit log")
    expect(page.locator("tbody tr").filter(has_text="edition.pause")).to_contain_text(OPS)
    shoot(page, "audit")
