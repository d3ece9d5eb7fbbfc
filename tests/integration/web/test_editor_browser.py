"""An editor in a real browser (Debian's Chromium driven by Playwright): sign in, make a
one-off edition, pin and order its stories, rewrite a headline, write the note, look at the
preview, send a test, schedule it; then the worker sends it and readers get what the editor
arranged.

Every editor page is photographed at desktop and phone width into
test-artifacts/screenshots/editor-<page>-<width>.png for a person to look at, and checked
for the basics: each input has a label, one h1, nothing wider than a 375 px phone.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import func, select

from digest.editions import create_newsletter
from digest.readers import set_subscriptions
from digest.store.models import (
    ANY,
    AuditEntry,
    ClickCount,
    ClickHour,
    ClickUnique,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionStory,
    Subscriber,
)
from tests.support.browser import (
    check_and_shoot,
    heading,
    submit_sign_in,
)
from tests.support.factories import make_user, seed_readers, seed_stories
from tests.support.mail import html_part, wait_for_mail
from tests.support.queries import story_ids
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.web import EDITOR

# The browser drives the pages, not the store: PostgreSQL only (the pages' SQLite runs are
# in the HTTP tests), which keeps CI's half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

WATER = "Regional Water Utility Posts Surprise Quarterly Profit"
COUNCIL = "City Council Approves Overhaul of Downtown Transit Routes"
NEW_HEADLINE = "Water utility’s surprise profit, explained"


def shoot(page: Page, live: Stack, name: str) -> None:
    """The accessibility basics at both widths; editor-<name>-<width>.png screenshots once (the
    pages do not differ by database, so the PostgreSQL run takes them)."""
    check_and_shoot(page, name, prefix="editor" if live.backend == "postgresql" else None)


def notice(page: Page, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def test_an_editor_curates_previews_tests_and_schedules_an_edition_that_readers_get(
        live: Stack, context: BrowserContext) -> None:
    seed_stories(live.factory)
    readers = seed_readers(live.factory, 3)
    make_user(live, EDITOR, "editor")
    ids = story_ids(live)
    page = context.new_page()

    # Signing in: the editor pages send a stranger to the form and back.
    page.goto("/editor/stories")
    expect(page).to_have_url(re.compile(r"/login\?next=/editor/stories$"))
    submit_sign_in(page, EDITOR)
    heading(page, "Stories")
    shoot(page, live, "stories")

    # Feature a story from the list.
    page.get_by_label("Search titles").fill("council")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="1 story")).to_be_visible()
    page.get_by_role("button", name=f"Unfeature: {COUNCIL}").click()
    notice(page, "Story updated.")
    expect(page.get_by_role("button", name=f"Feature: {COUNCIL}")).to_be_visible()

    # A newsletter, for the dashboard.
    page.get_by_role("link", name="Newsletters", exact=True).click()
    page.get_by_role("link", name="New newsletter").click()
    heading(page, "New newsletter")
    shoot(page, live, "newsletter-new")
    page.get_by_label("Name", exact=True).fill("Morning Briefing")
    page.get_by_label("Short name").fill("morning-briefing")
    page.get_by_label("When (cron)").fill("0 7 * * 1-5")
    page.get_by_label("Time zone").fill("Europe/Kyiv")
    page.get_by_label("politics").check()
    page.get_by_role("button", name="Create newsletter").click()
    heading(page, "Morning Briefing active")
    notice(page, "Newsletter created.")

    # A one-off edition, a draft, due as soon as it is scheduled.
    page.get_by_role("link", name="New edition", exact=True).first.click()
    heading(page, "New edition")
    shoot(page, live, "edition-new")
    page.get_by_label("Subject", exact=True).fill("Editor’s picks")
    page.get_by_role("button", name="Create draft").click()
    heading(page, "Editor’s picks")
    notice(page, "Draft edition created.")
    edition_id = int(re.search(r"/editor/editions/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    expect(page.get_by_text("No story qualifies yet")).to_be_visible()  # the sample stories are old

    # Find two stories and pin them: water first, then the council.
    for query, title in (("water", WATER), ("council", COUNCIL)):
        page.get_by_label("Search published stories").fill(query)
        page.get_by_label("Search published stories").press("Enter")
        page.get_by_role("button", name=f"Pin to this edition: {title}").click()
        notice(page, "Story pinned to this edition.")
    stories = page.locator("ol.story-list > li")
    expect(stories).to_have_count(2)
    expect(stories.nth(0)).to_contain_text(WATER)

    # Council to the top; a new headline for the water story; the note.
    page.get_by_role("button", name=f"Move up: {COUNCIL}").click()
    notice(page, "Order saved.")
    expect(stories.nth(0)).to_contain_text(COUNCIL)
    expect(page.get_by_role("button", name=f"Move up: {COUNCIL}")).to_be_disabled()
    water = page.locator(f"#story-{ids[WATER]}")
    water.get_by_text("Headline and summary for this edition").click()
    water.get_by_label("Headline").fill(NEW_HEADLINE)
    water.get_by_role("button", name="Save for this edition").click()
    notice(page, "Headline and summary saved")
    expect(stories.nth(1)).to_contain_text(NEW_HEADLINE)
    expect(stories.nth(1)).to_contain_text(f"Original headline: {WATER}")
    page.get_by_label("Shown above the stories").fill("Two stories worth your morning.")
    page.get_by_role("button", name="Save note").click()
    notice(page, "Editor's note saved.")

    # The preview: the email itself, at both widths, and its text part.
    frames = page.locator(".previews iframe")
    expect(frames).to_have_count(2)
    srcdoc = frames.first.get_attribute("srcdoc") or ""
    assert NEW_HEADLINE in srcdoc and "Two stories worth your morning." in srcdoc
    assert srcdoc.index(COUNCIL) < srcdoc.index(NEW_HEADLINE)
    assert frames.first.get_attribute("sandbox") == "allow-same-origin" and frames.nth(1).get_attribute("width") == "375"
    expect(page.frame_locator(".previews iframe").first.get_by_text(NEW_HEADLINE, exact=True)).to_be_visible()
    expect(page.locator("pre.text-part")).to_contain_text(NEW_HEADLINE)
    shoot(page, live, "edition")

    # A test to the desk: [TEST] in the subject, and no reader's ledger row.
    page.get_by_label("Send one copy to").fill("desk@example.org")
    page.get_by_role("button", name="Send test").click()
    notice(page, "Test sent.")
    [test_copy] = wait_for_mail(live, "desk@example.org", subject="[TEST] ")
    assert str(test_copy.message["Subject"]) == "[TEST] Editor’s picks"
    assert NEW_HEADLINE in html_part(test_copy.message)
    with live.factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0

    # Schedule it: due now, it is released at once by the schedule itself (no beat runs,
    # and the test sends no release task) and the worker sends it.
    page.get_by_role("button", name="Schedule", exact=True).click()
    notice(page, "Edition scheduled: its time has come, so it is going out now.")
    assert live.wait_for_edition(edition_id) == "sent"
    with live.factory() as session:
        sent = session.scalars(select(Delivery.status).where(Delivery.edition_id == edition_id)).all()
        assert sorted(sent) == [DeliveryStatus.SENT] * len(readers)
        assert session.get_one(Edition, edition_id).status == EditionStatus.SENT

    for address in readers:
        [message] = wait_for_mail(live, address, subject="Editor’s picks")
        assert str(message.message["Subject"]).startswith("Editor’s picks")
        body = html_part(message.message)
        assert body.index(COUNCIL) < body.index(NEW_HEADLINE), "pinned stories in the editor's order"
        assert WATER not in body and "Two stories worth your morning." in body
        headlines = re.findall(r'class="headline"[^>]*>\s*<a [^>]*>([^<]+)</a>', body)
        assert [h.replace("&#39;", "'").replace("&rsquo;", "’") for h in headlines[:2]] == [COUNCIL, NEW_HEADLINE]

    # Readers' clicks, as the flush leaves them (two on the first story, in the hour it went out).
    with live.factory.begin() as session:
        first = session.scalars(select(EditionStory.story_id).where(EditionStory.edition_id == edition_id)
                                .order_by(EditionStory.position)).first()
        started = session.get_one(Edition, edition_id).started_at
        assert first is not None and started is not None
        session.add(ClickCount(edition_id=edition_id, story_id=first, variant=0, clicks=2, machine_clicks=1))
        session.add(ClickUnique(edition_id=edition_id, story_id=ANY, variant=ANY, unique_clicks=2))
        session.add(ClickHour(edition_id=edition_id, hour=started.replace(minute=0, second=0, microsecond=0),
                              clicks=2, machine_clicks=1))

    # After sending, the page says why nothing can be changed, and charts the clicks.
    page.reload()
    for chart in ("story-clicks", "hour-clicks"):
        figure = page.locator(f"figure#{chart}")
        expect(figure.locator("canvas").first).to_be_visible(timeout=10_000)  # drawn by uPlot
        figure.locator("details summary").click()
        expect(figure.locator("details tbody tr")).to_have_count(1)
        expect(figure.locator("details tbody tr td").first).to_have_text("2")
    expect(page.locator(".status-bar .badge")).to_have_text("sent")
    expect(page.get_by_text("This edition is sent: its stories are frozen")).to_be_visible()
    expect(page.get_by_role("link", name="Edit subject, time and limits")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Move up"))).to_have_count(0)

    # The dashboard lists it under recent editions; the newsletter's next run is shown.
    page.get_by_role("link", name="Dashboard").click()
    heading(page, "Editor dashboard")
    expect(page.get_by_role("link", name="Editor’s picks").first).to_be_visible()
    best = page.get_by_role("region", name="Most clicked stories, the last 7 days")
    expect(best.locator("figure canvas").first).to_be_visible(timeout=10_000)
    expect(best.locator("table.best-stories tbody tr")).to_have_count(1)
    newsletters = page.get_by_role("region", name="Newsletters")
    expect(newsletters.get_by_role("cell", name=re.compile("Morning Briefing"))).to_be_visible()
    # Its first editions were made with it: upcoming, ready to curate.
    expect(page.get_by_role("region", name="Upcoming editions").get_by_role(
        "link", name=re.compile("^Morning Briefing: ")).first).to_be_visible()
    shoot(page, live, "dashboard")

    # A token for scripts, shown once.
    page.get_by_role("link", name="Tokens").click()
    heading(page, "API tokens")
    page.get_by_label("Name").fill("CMS sync")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("Your new token")).to_have_value(re.compile(r"^dgt_"))
    shoot(page, live, "tokens")

    # An error page keeps the navigation and a way back.
    page.goto(f"/editor/editions/{edition_id + 1000}")
    heading(page, "No such edition")
    shoot(page, live, "error")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def test_an_editor_edits_an_edition_and_picks_its_newsletter_and_sees_the_audience_change(
        live: Stack, context: BrowserContext) -> None:
    readers = seed_readers(live.factory, 3, prefix="audience")
    with live.factory.begin() as session:
        morning = create_newsletter(session, slug="morning-briefing", name="Morning Briefing", cron="0 7 * * *",
                                    timezone="Europe/Kyiv", allowed_topics=TOPICS)
        first = session.scalars(select(Subscriber).where(Subscriber.email == readers[0])).one()
        set_subscriptions(session, first, [morning.id])
        morning_id = morning.id
    make_user(live, EDITOR, "editor")
    page = context.new_page()
    page.goto("/login?next=/editor/editions/new")
    submit_sign_in(page, EDITOR)

    # A one-off for every active reader, to go out in May.
    heading(page, "New edition")
    expect(page.get_by_label("Newsletter")).to_have_value("")
    page.get_by_label("Subject", exact=True).fill("Weekend reads")
    page.get_by_label("Send at").fill("2031-05-01T08:00")
    page.get_by_label("Time zone").fill("Europe/Kyiv")
    page.get_by_role("button", name="Create draft").click()
    heading(page, "Weekend reads")
    expect(page.locator("[data-audience]")).to_contain_text("Goes to 3 readers")
    sends = page.locator(".status-bar time")
    expect(sends).to_have_text("Thu 1 May 2031, 05:00 UTC")  # the site's zone: no newsletter yet
    edition_id = int(re.search(r"/editor/editions/(\d+)", page.url).group(1))  # type: ignore[union-attr]

    # The edit page: a zone it does not know comes back at its field, the rest kept.
    page.get_by_role("link", name="Edit subject, time and limits").click()
    heading(page, "Edit “Weekend reads”")
    expect(page.get_by_label("Send at")).to_have_value("2031-05-01T05:00")
    shoot(page, live, "edition-edit")
    page.get_by_label("Subject", exact=True).fill("Sunday reads")
    page.get_by_label("Time zone").fill("Europe/Kiev-on-Mars")
    page.get_by_role("button", name="Save changes").click()
    heading(page, "Edit “Weekend reads”")
    expect(page.locator("#timezone-error")).to_contain_text("unknown time zone 'Europe/Kiev-on-Mars'")
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Sunday reads")
    shoot(page, live, "edition-edit-error")

    # Subject, time and the newsletter: its readers only, and its zone on the page.
    page.get_by_label("Send at").fill("2031-05-03T09:15")
    page.get_by_label("Time zone").fill("Europe/Kyiv")
    page.get_by_label("Newsletter").select_option(label="Morning Briefing (1 reader)")
    page.get_by_role("button", name="Save changes").click()
    notice(page, "Edition saved.")
    heading(page, "Sunday reads")
    expect(page.locator("[data-audience]")).to_contain_text("Goes to 1 reader")
    expect(sends).to_have_text("Sat 3 May 2031, 09:15 EEST")
    expect(sends).to_have_attribute("title", "Sat 3 May 2031, 06:15 UTC")
    expect(page.get_by_text("Times on this page are in Europe/Kyiv")).to_be_visible()
    shoot(page, live, "edition-edited")

    with live.factory() as session:
        edition = session.get_one(Edition, edition_id)
        assert (edition.subject, edition.send_at.isoformat(), edition.newsletter_id, edition.status) == (
            "Sunday reads", "2031-05-03T06:15:00+00:00", morning_id, EditionStatus.DRAFT)
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "edition.edit")).all()
        assert entry.detail["changed"] == ["subject", "send_at", "newsletter_id"]  # type: ignore[index]
