"""/ops at a glance during a real, rate-limited send, in Chromium at 1280 and 375 px.

A lane of its own (tests/support/lane.py) whose worker sends under
DIGEST_RATE_LIMIT_PER_SECOND=RATE (the shared Redis token bucket), and whose web server has
no limit set at all: what /ops shows as the limits in force must therefore come from the
worker (its digest_limits answer), not from the web process's settings.

While it sends, the page must show:
- the sending edition first, above a scheduled one and one that finished;
- its progress bar moving between polls (aria-valuenow grows, no reload);
- the messages-per-minute chart drawn (uPlot's canvas) with points in it, and the same
  numbers as a table;
- at 1280 px and at 375 px nothing wider than the main box (scrollWidth <= clientWidth),
  and every button of the sending edition's card inside the viewport.

Then the ETA: read once the send has run a minute, it must be within 20 % of the time the
send really took from that moment.

PostgreSQL only (the queries are the same on SQLite; the HTTP tests cover both).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from digest.store import Edition, EditionStatus, utcnow
from tests.support.browser import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    SCREENSHOTS,
    VIEW_HEIGHT,
    heading,
    launch_chromium,
    local_context,
    submit_sign_in,
)
from tests.support.factories import due_edition, make_user, seed_readers, seed_stories
from tests.support.lane import Lane, start_lane
from tests.support.processes import free_port, launch_web, reap, web_ready
from tests.support.stack import Stack
from tests.support.web import OPS, clear_rate_limits, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

RATE = 20  # messages a second, for every worker together
READERS = 1700  # ~85 s at RATE: a minute to learn the rate, then the ETA is checked
ETA_AFTER_SECONDS = 62
ETA_TOLERANCE = 0.20


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, limited: tuple[Lane, str]) -> Iterator[BrowserContext]:
    yield from local_context(browser, base_url=limited[1], placeholder_images=False)


@pytest.fixture
def limited(live: Stack) -> Iterator[tuple[Lane, str]]:
    """A lane whose worker sends at RATE a second, and a web server of its own on the
    lane's queue with no limit in its environment."""
    lane = start_lane(live, "glance", DIGEST_RATE_LIMIT_PER_SECOND=str(RATE))
    port = free_port()
    env = {k: v for k, v in lane.env().items() if k != "DIGEST_RATE_LIMIT_PER_SECOND"}
    web = launch_web(env, port, lane._log("web-unlimited"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not web_ready(url):
            assert web.poll() is None and time.monotonic() < deadline, lane.log_tail()
            time.sleep(0.2)
        clear_rate_limits(live)
        seed_stories(live.factory)
        yield lane, url
    finally:
        with live.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE editions SET status = 'cancelled' WHERE status IN ('sending', 'paused')")
        web.terminate()
        reap(web, timeout=20)
        lane.stop()


def other_editions(live: Stack) -> tuple[int, int]:
    """A scheduled edition (in an hour) and one that finished ten minutes ago."""
    now = utcnow()
    with live.factory.begin() as session:
        later = Edition(subject="Evening briefing", send_at=now + timedelta(hours=1), status=EditionStatus.SCHEDULED,
                        max_stories=5, window_hours=48)
        done = Edition(subject="Morning briefing", send_at=now - timedelta(hours=2), status=EditionStatus.SENT,
                       max_stories=5, window_hours=48, started_at=now - timedelta(hours=2),
                       finished_at=now - timedelta(minutes=10))
        session.add_all([later, done])
        session.flush()
        return later.id, done.id


def status(ops: httpx.Client) -> dict[str, Any]:
    response = ops.get("/ops/status.json")
    assert response.status_code == 200, response.text[:300]
    return response.json()  # type: ignore[no-any-return]


def edition_entry(snapshot: dict[str, Any], edition_id: int) -> dict[str, Any]:
    [entry] = [e for e in snapshot["editions"] if e["id"] == edition_id]
    return entry


def main_fits(page: Page) -> tuple[int, int]:
    return page.evaluate("(() => { const m = document.querySelector('main'); return [m.scrollWidth, m.clientWidth]; })()")


def card_buttons_in_view(page: Page, edition_id: int, width: int) -> list[str]:
    """Names of the card's buttons and links that lie (partly) outside the viewport's width."""
    return page.evaluate("""([id, width]) => [...document.querySelectorAll(
        `article[data-edition="${id}"] .actions :is(button, a)`)].filter(b => {
            const r = b.getBoundingClientRect(); return r.left < 0 || r.right > width || r.width === 0; })
        .map(b => b.textContent.trim())""", [edition_id, width])


def progress(page: Page, edition_id: int) -> int:
    return int(page.locator(f'article[data-edition="{edition_id}"] [role=progressbar]').get_attribute("aria-valuenow"))


def test_ops_during_a_rate_limited_send(live: Stack, limited: tuple[Lane, str], context: BrowserContext) -> None:
    lane, url = limited
    make_user(live, OPS, "ops")
    seed_readers(live.factory, READERS)
    scheduled_id, finished_id = other_editions(live)
    edition_id = due_edition(live.factory, "Midday featured stories")

    with httpx.Client(base_url=url, timeout=30) as ops:
        sign_in(ops, OPS)
        assert lane.release_due() == [edition_id]
        began = time.monotonic()

        page = context.new_page()
        page.goto("/login?next=/ops")
        submit_sign_in(page, OPS)
        heading(page, "Send queue")
        page.evaluate("window.__sameDocument = true")

        # The sending edition is first on the page, then the scheduled, then the finished.
        expect(page.locator(f'article[data-edition="{edition_id}"]')).to_be_visible(timeout=10_000)
        order = page.eval_on_selector_all("#panel :is(article, tr)[data-edition]",
                                          "els => els.map(e => Number(e.dataset.edition))")
        assert order[:3] == [edition_id, scheduled_id, finished_id], order

        # The limits in force are the worker's: the web process has none set.
        deadline = time.monotonic() + 15
        while status(ops)["limits"] is None:  # the workers' answer is refreshed in the background
            assert time.monotonic() < deadline, "no worker reported its limits"
            time.sleep(0.5)
        assert status(ops)["limits"]["global"] == RATE
        expect(page.locator('[data-section="limits"]')).to_contain_text(f"{RATE}.0 messages/s in all", timeout=10_000)

        # The progress bar moves between polls, without a reload.
        first = progress(page, edition_id)
        page.wait_for_timeout(4500)
        second = progress(page, edition_id)
        assert second > first, (first, second)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"

        # The chart: drawn by uPlot, with points, and the same numbers in its table.
        expect(page.locator("figure#send-rate canvas")).to_have_count(1, timeout=10_000)
        chart = json.loads(page.locator("figure#send-rate script[type='application/json']").text_content() or "{}")
        assert sum(chart["lines"]["sent"]) > 0, chart
        rows = page.locator("figure#send-rate details tbody tr")
        assert rows.count() >= 1
        assert page.locator("figure#send-rate figcaption").inner_text() == "Messages per minute"

        # Both widths: nothing wider than the main box, every button of the card in view.
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width in (DESKTOP_WIDTH, PHONE_WIDTH):
            page.set_viewport_size({"width": width, "height": VIEW_HEIGHT})
            page.wait_for_timeout(2500)  # a poll at this width, charts redrawn
            scroll_width, client_width = main_fits(page)
            assert scroll_width <= client_width, f"{width} px: main is {scroll_width} px wide in {client_width}"
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            if width == DESKTOP_WIDTH:  # the tables fit too, with no scrolling inside their box
                wide = page.eval_on_selector_all(
                    "#panel .table-wrap", "ws => ws.filter(w => w.scrollWidth > w.clientWidth).map(w => w.ariaLabel)")
                assert wide == [], f"tables wider than their box at {width} px: {wide}"
            assert card_buttons_in_view(page, edition_id, width) == []
            expect(page.locator(f'article[data-edition="{edition_id}"]').get_by_role("button", name="Pause")).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / f"ops-sending-{width}.png"), full_page=True)
        page.set_viewport_size({"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT})
        page.close()

        # The ETA, a minute into a steady send, against what the send then really took.
        while time.monotonic() - began < ETA_AFTER_SECONDS:
            time.sleep(0.5)
        entry = edition_entry(status(ops), edition_id)
        asked = time.monotonic()
        assert entry["status"] == "sending" and entry["pending"] > 0, entry
        eta = entry["eta_seconds"]
        assert eta is not None and eta > 0, entry
        lane.wait_for(edition_id, "sent", timeout=3 * eta + 60)
        took = time.monotonic() - asked
        assert abs(eta - took) <= ETA_TOLERANCE * took, f"ETA {eta} s, the rest took {took:.1f} s"
        final = edition_entry(status(ops), edition_id)
        assert final["sent"] == READERS and final["eta_seconds"] == 0
