"""In Chromium, at 1280 and 375 px: ops finds a confirmation that failed on /ops and sends it
again (the result said where the button was pressed), and the reader it was for finds a way
back on their preferences page after unsubscribing ("Subscribe again").

PostgreSQL only: the same pages and queries run on both databases in the HTTP tests
(test_failed_notices_http, test_reader_http).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlalchemy import update

from digest.store.models import Notice, NoticeStatus
from tests.support.browser import check_and_shoot, heading, launch_chromium, local_context, submit_sign_in
from tests.support.factories import add_active_reader, make_user
from tests.support.mail import wait_for_mail
from tests.support.queries import reader_by_email
from tests.support.stack import Stack, settle
from tests.support.web import OPS, subscribe

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

BOUNCE = "550 5.1.1 mailbox unavailable"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, live: Stack, web: str) -> Iterator[BrowserContext]:
    yield from local_context(browser, base_url=web, placeholder_images=False)


def test_ops_resends_a_failed_confirmation(live: Stack, client: httpx.Client, context: BrowserContext) -> None:
    address = "waiting@example.org"
    assert subscribe(client, address).status_code == 200
    wait_for_mail(live, address, subject="Confirm")
    reader = reader_by_email(live, address)
    assert reader is not None
    with live.factory.begin() as session:
        session.execute(update(Notice).where(Notice.subscriber_id == reader.id, Notice.kind == "confirm")
                        .values(status=NoticeStatus.FAILED, last_error=BOUNCE))
    make_user(live, OPS, "ops")
    live.smtp.clear()

    page = context.new_page()
    page.goto("/login?next=/ops")
    submit_sign_in(page, OPS)
    heading(page, "Send queue")
    notices = page.locator('[data-section="failed-notices"]')
    row = notices.locator('tr[data-notice]').filter(has_text=address)
    expect(row).to_contain_text(BOUNCE)
    expect(row).to_contain_text("confirmation")
    check_and_shoot(page, "failed-notice", prefix="ops", labels=False)

    page.set_viewport_size({"width": 375, "height": 900})
    button = row.get_by_role("button", name=f"Send the confirmation to {address} again")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    button.click()
    status = page.get_by_role("status").first
    expect(status).to_have_text(f"reader #{reader.id}: a new confirmation is on its way")
    in_view = status.bounding_box()
    assert in_view is not None and 0 <= in_view["y"] <= 900, in_view
    wait_for_mail(live, address, subject="Confirm")
    settle(live)
    page.reload()
    expect(page.locator('[data-section="failed-notices"]').get_by_role(
        "button", name=f"Send the confirmation to {address} again")).to_have_count(0)


def test_an_unsubscribed_reader_finds_the_way_back(live: Stack, client: httpx.Client,
                                                    context: BrowserContext) -> None:
    reader = add_active_reader(live, "leaver@example.org")
    page = context.new_page()
    page.goto(f"/unsubscribe/{reader.token}")
    page.get_by_role("button", name="Unsubscribe").first.click()
    page.goto(f"/preferences/{reader.token}")
    again = page.get_by_role("button", name="Subscribe again")
    expect(again).to_be_visible()
    expect(page.locator("input[name=topics], input[name=newsletters]")).to_have_count(0)  # no choices that would change nothing
    check_and_shoot(page, "preferences-unsubscribed", prefix="reader", one_h1=True)
    again.click()
    expect(page.get_by_role("status")).to_contain_text("Almost there: we sent a link to leaver@example.org")
    wait_for_mail(live, "leaver@example.org", subject="Confirm")
