"""An editor looks after readers in a real browser (Debian's Chromium driven by Playwright):
find a reader by address, read their history, unsubscribe them after a confirmation step;
import a CSV with bad rows, watch the progress bar fill, read the per-row report; the same
import without JavaScript; and an ops person looking, read-only.

Every readers page is photographed at desktop and phone width into
test-artifacts/screenshots/readers-<page>-<width>.png for a person to look at, and checked
for the basics: each input has a label, one h1, nothing wider than a 375 px phone.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from digest.store.models import Subscriber
from tests.support.browser import check_and_shoot, heading, submit_sign_in
from tests.support.factories import make_user
from tests.support.queries import count, reader_by_email
from tests.support.readers import SOFT_ERROR, Roster, audit_rows, big_csv, consent_events, reader_status, seed_roster
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS

# The browser drives the pages, not the store: PostgreSQL only (the pages' SQLite runs are
# in the HTTP tests), which keeps CI's half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

IMPORT_ROWS = 6000  # three chunks of the import (readers.roster.IMPORT_CHUNK_ROWS, 2,000): the bar moves three times
BAD_ROWS = {3: "not-an-address,Nobody,", 3000: "ann.lee@example.com,Ann again,", 5900: "late@example.com,,astrology"}

# Every value the progress bar takes, in order (set before the form is sent).
WATCH_PROGRESS = """() => {
    const bar = document.getElementById("import-progress");
    window.progressSeen = [];
    new MutationObserver(() => window.progressSeen.push([bar.value, bar.max]))
        .observe(bar, {attributes: true, attributeFilter: ["value", "max"]});
}"""


def shoot(page: Page, live: Stack, name: str) -> None:
    """The accessibility basics at both widths; readers-<name>-<width>.png once (PostgreSQL's run)."""
    check_and_shoot(page, name, prefix="readers" if live.backend == "postgresql" else None)


def notice(page: Page, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def test_an_editor_finds_a_reader_reads_their_history_unsubscribes_them_and_imports_a_csv(
        live: Stack, context: BrowserContext) -> None:
    roster: Roster = seed_roster(live.factory)
    make_user(live, EDITOR, "editor")
    page = context.new_page()

    page.goto("/editor/readers")
    expect(page).to_have_url(re.compile(r"/login\?next=/editor/readers$"))
    submit_sign_in(page, EDITOR)
    heading(page, "Readers")
    expect(page.get_by_role("heading", name="5 readers")).to_be_visible()
    shoot(page, live, "list")

    # Find Ann by part of her address.
    page.get_by_label("Search addresses and names").fill("ann.lee@")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="1 reader", exact=True)).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("Morning Briefing")
    page.get_by_role("link", name="ann.lee@example.com").click()

    # Her history: profile, deliveries, the soft bounce, her consent.
    heading(page, "ann.lee@example.com")
    deliveries = page.get_by_role("table", name="Every edition sent or planned for this reader, newest first")
    expect(deliveries.get_by_role("row")).to_have_count(4)  # the header and three editions
    expect(deliveries.get_by_role("row").nth(1)).to_contain_text("Wednesday briefing")
    expect(deliveries).to_contain_text(SOFT_ERROR)
    feedback = page.get_by_role("table", name="Bounces and complaints, newest first")
    expect(feedback).to_contain_text("soft bounce")
    expect(page.get_by_role("table", name="Consent events, oldest first")).to_contain_text("subscribe")
    expect(page.get_by_label("Morning Briefing")).to_be_checked()
    expect(page.get_by_label("politics")).to_be_checked()
    shoot(page, live, "reader")

    # Unsubscribe her, after the confirmation step (cancel once, then confirm).
    page.get_by_role("link", name="Unsubscribe…").click()
    heading(page, "Unsubscribe ann.lee@example.com?")
    shoot(page, live, "unsubscribe")
    page.get_by_role("link", name="Cancel").click()
    heading(page, "ann.lee@example.com")
    assert reader_status(live, roster.ann) == "active"
    page.get_by_role("link", name="Unsubscribe…").click()
    page.get_by_role("button", name="Yes, unsubscribe").click()
    notice(page, "Unsubscribed: they get nothing more")
    expect(page.locator(".status-line .badge").first).to_have_text("unsubscribed")
    expect(page.get_by_role("link", name="Unsubscribe…")).to_have_count(0)
    expect(page.get_by_role("table", name="Consent events, oldest first").get_by_role("row").last).to_contain_text(
        "admin")
    assert reader_status(live, roster.ann) == "unsubscribed"
    assert consent_events(live, roster.ann)[-1] == ("unsubscribe", "admin", None)

    # Import a long CSV with bad rows: the bar fills chunk by chunk, then the report by line.
    page.get_by_role("navigation", name="Editor").get_by_role("link", name="Readers").click()
    page.get_by_role("link", name="Import a CSV").click()
    heading(page, "Import readers")
    shoot(page, live, "import")
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("CSV file").set_input_files(files=[{
        "name": "subscribers.csv", "mimeType": "text/csv", "buffer": big_csv(IMPORT_ROWS, bad=BAD_ROWS).encode()}])
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import report")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("status").filter(has_text="Done: 6,000 imported, 6,003 rows read.")).to_be_visible()
    seen = page.evaluate("window.progressSeen")
    values = [value for value, _ in seen if value]
    assert len(set(values)) >= 3 and values == sorted(values), seen  # after each chunk of 2,000 rows
    assert seen[-1] == [6003, 6003], seen
    expect(page.locator("#import-progress")).to_have_attribute("value", "6003")
    refused = page.get_by_role("table", name="Refused rows, by line in the file")
    expect(refused.get_by_role("row")).to_have_count(3)
    expect(refused.get_by_role("row").nth(1)).to_contain_text("3")
    expect(refused.get_by_role("row").nth(1)).to_contain_text("invalid email address 'not-an-address'")
    expect(refused.get_by_role("row").nth(2)).to_contain_text("unknown topic(s) astrology")
    skipped = page.get_by_role("table", name="Rows left as they were, by line in the file")
    expect(skipped).to_contain_text("ann.lee@example.com is on the list already; left as it is")
    expect(page.get_by_role("heading", name="Import report")).to_be_focused()
    shoot(page, live, "import-report")
    assert count(live, Subscriber) == 5 + IMPORT_ROWS
    assert reader_status(live, roster.ann) == "unsubscribed"  # the import left her as she was
    assert [row[:3] for row in audit_rows(live)] == [
        ("reader.unsubscribe", f"reader:{roster.ann}", "web"), ("readers.import", "csv", "web")]

    # An unknown reader: the error page keeps the navigation and a way back.
    page.goto(f"/editor/readers/{roster.eve + 100_000}")
    heading(page, "No such reader")
    page.get_by_role("link", name="Back to the readers").click()
    heading(page, "Readers")


def test_without_javascript_the_import_is_a_plain_form_with_the_same_report(
        browser: Browser, live: Stack, web: str) -> None:
    seed_roster(live.factory)
    make_user(live, EDITOR, "editor")
    context = browser.new_context(base_url=web, java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        page.goto("/login?next=/editor/readers/import")
        submit_sign_in(page, EDITOR)
        heading(page, "Import readers")
        page.get_by_label("CSV file").set_input_files(files=[{
            "name": "few.csv", "mimeType": "text/csv",
            "buffer": b"email,name\nplain@example.com,Plain\nbroken,\ncara@example.com,Cara\n"}])
        page.get_by_label("active at once").check()
        page.get_by_role("button", name="Import", exact=True).click()
        heading(page, "Import readers")
        expect(page.get_by_role("heading", name="Import report")).to_be_visible()
        expect(page.locator(".report-counts")).to_contain_text("1 imported, of 3 rows read")
        expect(page.get_by_role("table", name="Refused rows, by line in the file")).to_contain_text("broken")
        expect(page.get_by_role("table", name="Rows left as they were, by line in the file")).to_contain_text(
            "cara@example.com is on the list already")
        expect(page.locator("#import-progress-section")).to_be_hidden()
    finally:
        context.close()
    plain = reader_by_email(live, "plain@example.com")
    assert plain is not None and plain.status.value == "active"


def test_ops_read_readers_but_see_no_way_to_change_them(live: Stack, context: BrowserContext) -> None:
    roster = seed_roster(live.factory)
    make_user(live, OPS, "ops")
    page = context.new_page()
    page.goto("/login?next=/editor/readers")
    submit_sign_in(page, OPS)
    heading(page, "Readers")
    expect(page.get_by_text("You can look readers up; changing them is for editors.")).to_be_visible()
    expect(page.get_by_role("link", name="Import a CSV")).to_have_count(0)
    page.get_by_label("Status").select_option("bounced")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name="bob@example.org").click()
    heading(page, "bob@example.org")
    expect(page.get_by_role("table", name="Bounces and complaints, newest first")).to_contain_text("hard bounce")
    expect(page.get_by_role("button")).to_have_text(["Sign out"])  # nothing to press but leaving
    expect(page.get_by_role("checkbox")).to_have_count(0)
    shoot(page, live, "reader-ops")
    assert reader_status(live, roster.bob) == "bounced"
