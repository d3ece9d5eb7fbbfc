"""axe-core (WCAG 2.0 and 2.1, A and AA) on every HTML page digest serves, in a real browser
(Debian's Chromium), at desktop and phone width: no serious or critical violation anywhere;
every violation, moderate and minor ones too, goes to test-artifacts/axe/ (tests/support/axe.py).

Every page: the reader's (sign-up, sent, confirm, confirmed, preferences in each state,
unsubscribe, unsubscribed, erased, archive, test links, the embed frame, error pages) and
staff's (sign-in, password, dashboards, lists, edit forms, confirmation questions, import,
tokens, users, feeds, audit, error pages), with data in them: stories, readers, a newsletter,
an edition sent, one sending and one scheduled with stories. The list is complete by
construction: the app's GET routes are enumerated, and each must be visited by this test or
named in EXEMPT with the reason it answers no page of its own.

PostgreSQL only: what axe sees is the template over the same queries on either database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import APIRouter, FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from digest.config import Settings
from digest.delivery.pipeline import release_due
from digest.editions import PREVIEW_READER, SAMPLE_TOKENS, ab, create_newsletter, schedule_editions
from digest.readers import set_subscriptions
from digest.store import Edition, EditionStatus, Feed, Subscriber, SubscriberStatus, utcnow
from digest.web.app import Services, create_app
from tests.support.axe import Violation, audit_page, get_routes, route_of, start_report
from tests.support.browser import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    VIEW_HEIGHT,
    heading,
    launch_chromium,
    local_context,
    submit_sign_in,
)
from tests.support.factories import (
    add_active_reader,
    due_edition,
    make_api_token,
    make_user,
    seed_readers,
    seed_stories,
    send_due_edition,
)
from tests.support.mail import wait_for_mail
from tests.support.queries import story_ids
from tests.support.samples import TOPICS
from tests.support.stack import Stack
from tests.support.readers import big_csv
from tests.support.web import OPS, clear_rate_limits, confirm_link

pytestmark = pytest.mark.integration

ADMIN = "admin@example.org"

# GET routes that answer no page of their own, each with the reason. Anything else the app
# serves must be visited below: a page added later fails this test until it is.
EXEMPT = {
    "/": "a redirect to /subscribe",
    "/healthz": "JSON for load balancers",
    "/metrics": "Prometheus text",
    "/embed.js": "JavaScript that publishers' pages load",
    "/preferences/{token}/data.json": "the reader's data as a JSON download",
    "/archive.rss": "RSS",
    "/archive/newsletters/{slug}.rss": "RSS",
    "/editor/newsletters/schedule": "JSON for the newsletter form's schedule preview",
    "/editor/newsletters/{newsletter_id}/brand/preview": "JSON for the brand form's live preview (its HTML is checked in the newsletter page's preview frames)",
    "/editor/readers/export.csv": "a CSV download",
    "/editor/readers/export.json": "a JSON download",
    "/ops/audit.csv": "a CSV download",
    "/editor/editions/{edition_id}/stats.csv": "a CSV download",
    "/c/{edition}/{story}/{variant}/{signature}/{nonce}": "the click redirect (302, or a plain-text 404)",
    "/o/{edition}/{variant}/{signature}/{nonce}": "the open pixel (a 1x1 GIF, or a plain-text 404)",
    "/ops/panel": "the fragment /ops polls and swaps into itself: checked inside /ops",
    "/editor/upcoming": "the fragment the dashboard polls while editions send: checked inside /editor",
    "/editor/editions/{edition_id}/delivery": "the fragment a sending edition's page polls: checked inside it",
    "/ops/status.json": "JSON for monitoring",
    "/hooks/websub/{feed_id}": "a WebSub hub's verification: plain text echo",
    "/static/{path:path}": "files (scripts, the favicon)",
    "/api/v1/{path:path}": "the JSON API",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, live: Stack, web: str) -> Iterator[BrowserContext]:
    clear_rate_limits(live)
    yield from local_context(browser, base_url=web, bypass_csp=True)


@dataclass
class Tour:
    """One page object taken through the app: each page checked by axe, and the route it
    belongs to ticked off."""

    page: Page
    routes: list[str]
    visited: set[str] = field(default_factory=set)
    blocking: dict[str, list[Violation]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)

    def check(self, name: str, *, route: str | None = None) -> None:
        """axe on the page as it stands, counted for `route` (by default the one the page's
        own address matches)."""
        self.visited.add(route or route_of(self.routes, urlsplit(self.page.url).path))
        found = audit_page(self.page, name)
        # And on a phone, where tables stack and navigation wraps (the frames are the same).
        self.page.set_viewport_size({"width": PHONE_WIDTH, "height": VIEW_HEIGHT})
        try:
            found += [replace(v, rule=f"{v.rule} (at {PHONE_WIDTH} px)")
                      for v in audit_page(self.page, f"{name}-{PHONE_WIDTH}", frames=False)]
        finally:
            self.page.set_viewport_size({"width": DESKTOP_WIDTH, "height": VIEW_HEIGHT})
        assert name not in self.checked, f"two checks named {name}"
        self.checked.add(name)
        if found:
            self.blocking[name] = found

    def open(self, url: str, status: int = 200) -> None:
        """Open `url`, which must answer `status` itself (no redirect), without checking it."""
        response = self.page.goto(url)
        assert response is not None and response.status == status, (url, response and response.status)
        assert self.page.url.endswith(url), f"{url} went to {self.page.url}"

    def visit(self, name: str, url: str, status: int = 200) -> None:
        """Open `url` (the page asked for is the page checked) and check it."""
        self.open(url, status)
        self.check(name)

    def after(self, name: str, act: Callable[[], object], route: str) -> None:
        """Do `act` (a form sent) and check the page it answers with, counted for `route`."""
        with self.page.expect_navigation():
            act()
        self.check(name, route=route)


def test_the_axe_helper_reports_a_broken_page(browser: Browser) -> None:
    """A test of the test: an image without alt text and a button without a name are found,
    as serious or critical; the same page mended has neither."""
    for context in local_context(browser, bypass_csp=True):
        page = context.new_page()
        page.set_content('<!DOCTYPE html><html lang="en"><head><title>Broken</title></head><body><main>'
                         '<h1>Broken</h1><img src="data:image/png;base64,iVBORw0KGgo="><button></button>'
                         '</main></body></html>')
        found = {v.rule: v for v in audit_page(page, "self-test-broken")}
        assert {"image-alt", "button-name"} <= set(found), found
        assert all(v.blocking for v in found.values())
        page.set_content('<!DOCTYPE html><html lang="en"><head><title>Mended</title></head><body><main>'
                         '<h1>Mended</h1><img src="data:image/png;base64,iVBORw0KGgo=" alt="A chart">'
                         '<button>Send</button></main></body></html>')
        assert audit_page(page, "self-test-mended") == []
        # Inside a sandboxed frame where no script runs, as the email previews are.
        page.set_content('<!DOCTYPE html><html lang="en"><head><title>Framed</title></head><body><main>'
                         '<h1>Framed</h1><iframe title="Preview" sandbox="allow-same-origin" srcdoc="'
                         '<html lang=en><title>Email</title><img src=data:image/png;base64,iVBORw0KGgo=></html>">'
                         '</iframe></main></body></html>')
        assert [v.rule for v in audit_page(page, "self-test-framed")] == ["image-alt (in frame 1)"]


def _readers(live: Stack) -> dict[str, Subscriber]:
    """A reader in each state a preferences page shows differently."""
    found = {"active": add_active_reader(live, "active.reader@example.org", "Ada", topics=["politics"])}
    with live.factory.begin() as session:
        paused = {"paused_until": utcnow() + timedelta(days=14)}
        for state, status, extra in (("paused", SubscriberStatus.ACTIVE, paused),
                                     ("unsubscribed", SubscriberStatus.UNSUBSCRIBED, {}),
                                     ("bounced", SubscriberStatus.BOUNCED, {}),
                                     ("pending", SubscriberStatus.PENDING, {}),
                                     ("leaving", SubscriberStatus.ACTIVE, {}),
                                     ("erasing", SubscriberStatus.ACTIVE, {})):
            address = f"{state}.reader@example.org"
            reader = Subscriber(email=address, email_key=address, name=state.title(), status=status,
                                token=f"{state}-token-{'x' * 24}", consent_source="test", **extra)
            session.add(reader)
            found[state] = reader
    return found


def _newsroom(live: Stack) -> dict[str, int]:
    """Stories, readers, a newsletter with its editions (one sent), a one-off edition sending
    and a feed: what a newsroom's pages hold on an ordinary day."""
    seed_stories(live.factory)
    addresses = seed_readers(live.factory, 12)
    with live.factory.begin() as session:
        newsletter = create_newsletter(session, slug="morning-briefing", name="Morning Briefing",
                                       cron="0 7 * * 1-5", timezone="Europe/London", allowed_topics=TOPICS,
                                       topics=["politics", "world"])
        # Both opt-ins on, so their parts of the pages are checked too: the click-history box
        # on a reader's preferences, the opens line on the sent edition's page.
        newsletter.click_history = newsletter.open_pixel = True
        session.flush()
        for reader in session.scalars(select(Subscriber).where(Subscriber.email.in_(addresses))):
            set_subscriptions(session, reader, [newsletter.id])
        session.add(Feed(url="https://news.example.com/politics.xml", topics=["politics"], last_status="200",
                         last_fetched_at=utcnow()))
        newsletter_id = newsletter.id
    sent = send_due_edition(live, "Tuesday's briefing", newsletter_id=newsletter_id)
    with live.factory.begin() as session:
        schedule_editions(session, utcnow())
        scheduled = session.scalars(select(Edition.id).where(Edition.status == EditionStatus.SCHEDULED)
                                    .order_by(Edition.send_at)).first()
    sending = due_edition(live.factory, "Breaking: council vote")
    with live.factory.begin() as session:  # its page shows a subject test
        ab.set_ab(session, sending, ab.AbPlan("The council voted: what it means", 50, 60))
    assert release_due(live.factory, utcnow(), 50, lambda *batch: None) == [sending]  # no batch: it stays sending
    with live.factory() as session:
        feed_id = session.scalars(select(Feed.id)).one()
    assert scheduled is not None
    return {"newsletter": newsletter_id, "sent": sent, "scheduled": scheduled, "sending": sending, "feed": feed_id}


def _app(database_url: str) -> FastAPI:
    """The app as `digest serve` builds it, for its routes only: nothing is asked of it."""
    settings = Settings(env="test", secret_key="routes-only-0123456789", database_url=database_url)
    services = Services(settings=settings, factory=sessionmaker(), redis=None,  # type: ignore[arg-type]
                        enqueue_notice=lambda _: None, enqueue_inbound=lambda _: None)
    return create_app(services)


def test_a_page_added_later_is_among_the_routes_to_check(tmp_path: Path) -> None:
    """The enumeration the tour is held to sees a page however it is added: on the app, or
    on a router included with a prefix (as every page of digest's is)."""
    app = _app(f"sqlite:///{tmp_path / 'unused.db'}")
    before = get_routes(app)
    assert {"/subscribe", "/editor/editions/{edition_id}", "/ops/audit", "/static/{path:path}"} <= set(before)
    router = APIRouter(prefix="/editor")
    router.add_api_route("/brand-new/{thing_id}", lambda thing_id: thing_id, methods=["GET"])
    app.include_router(router)
    app.add_api_route("/another-new", lambda: "", methods=["GET"])
    app.add_api_route("/posted-only", lambda: "", methods=["POST"])
    added = sorted(set(get_routes(app)) - set(before))
    assert added == ["/another-new", "/editor/brand-new/{thing_id}"]
    assert route_of(get_routes(app), "/editor/brand-new/7") == "/editor/brand-new/{thing_id}"


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
def test_every_page_passes_axe(live: Stack, web: str, context: BrowserContext) -> None:
    start_report()
    ids = _newsroom(live)
    readers = _readers(live)
    make_user(live, ADMIN, "admin")
    make_user(live, OPS, "ops")
    other_user = make_user(live, "colleague@example.org", "editor")
    make_api_token(live, "robot@example.org", "editor")
    story = story_ids(live)["City Council Approves Overhaul of Downtown Transit Routes"]
    tour = Tour(context.new_page(), get_routes(_app(live.database_url)))
    page = tour.page

    # ---------------------------------------------------------------- a reader
    tour.visit("subscribe", "/subscribe")
    page.get_by_label("Email").fill("new.reader@example.org")
    tour.after("subscribe-sent", lambda: page.get_by_role("button", name="Subscribe").click(), "/subscribe")
    [confirmation] = wait_for_mail(live, "new.reader@example.org", subject="Confirm")
    tour.visit("confirmed", confirm_link(confirmation, web).removeprefix(web))
    wait_for_mail(live, "new.reader@example.org", subject="Welcome")
    tour.visit("confirm-bad-link", "/confirm/not-a-token", status=400)
    for state in ("active", "paused", "unsubscribed", "bounced", "pending"):
        tour.visit(f"preferences-{state}", f"/preferences/{readers[state].token}")
    tour.open(f"/preferences/{readers['active'].token}")
    tour.after("preferences-saved", lambda: page.get_by_role("button", name="Save preferences").click(),
               "/preferences/{token}")
    expect(page.get_by_role("status")).to_have_text("Saved.")
    tour.visit("preferences-unknown", "/preferences/no-such-reader-token", status=404)
    tour.visit("unsubscribe", f"/unsubscribe/{readers['leaving'].token}")
    tour.after("unsubscribed", lambda: page.get_by_role("button", name="Unsubscribe").click(), "/unsubscribe/{token}")
    tour.visit("preferences-erasing", f"/preferences/{readers['erasing'].token}")
    page.get_by_label("Delete my address").check()
    tour.after("erased", lambda: page.get_by_role("button", name="Delete me").click(), "/preferences/{token}")
    test_copy_token = min(SAMPLE_TOKENS - {PREVIEW_READER.token})  # a test copy's links carry it
    tour.visit("test-link-unsubscribe", f"/unsubscribe/{test_copy_token}")
    tour.visit("test-link-preferences", f"/preferences/{PREVIEW_READER.token}")
    tour.visit("archive", "/archive")
    tour.visit("archive-newsletter", "/archive/newsletters/morning-briefing")
    tour.visit("archive-edition", f"/archive/{ids['sent']}")
    tour.visit("archive-missing", "/archive/999999", status=404)
    tour.visit("embed-frame", "/embed/frame")
    tour.visit("embed-frame-unknown", "/embed/frame?newsletter=no-such-list", status=404)

    # ---------------------------------------------------------------- staff
    tour.visit("login", "/login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill("wrong password")
    tour.after("login-refused", lambda: page.get_by_role("button", name="Sign in").click(), "/login")
    submit_sign_in(page, ADMIN)
    heading(page, "Editor dashboard")
    for name, url in (("editor-dashboard", "/editor"),
                      ("account-password", "/account/password"),
                      ("stories", "/editor/stories"),
                      ("story-retract", f"/editor/stories/{story}/retract"),
                      ("feeds", "/editor/feeds"),
                      ("feed-edit", f"/editor/feeds/{ids['feed']}"),
                      ("feed-remove", f"/editor/feeds/{ids['feed']}/remove"),
                      ("newsletters", "/editor/newsletters"),
                      ("newsletter-new", "/editor/newsletters/new"),
                      ("newsletter-edit", f"/editor/newsletters/{ids['newsletter']}"),
                      ("newsletter-archive", f"/editor/newsletters/{ids['newsletter']}/archive"),
                      ("edition-new", "/editor/editions/new"),
                      ("edition-scheduled", f"/editor/editions/{ids['scheduled']}"),
                      ("edition-sending", f"/editor/editions/{ids['sending']}"),
                      ("edition-sent", f"/editor/editions/{ids['sent']}"),
                      ("edition-edit", f"/editor/editions/{ids['scheduled']}/edit"),
                      ("edition-cancel", f"/editor/editions/{ids['scheduled']}/cancel"),
                      ("embed", "/editor/embed"),
                      ("tokens", "/editor/tokens"),
                      ("users", "/editor/users"),
                      ("user-disable", f"/editor/users/{other_user}/disable"),
                      ("readers", "/editor/readers"),
                      ("readers-import", "/editor/readers/import"),
                      ("reader", f"/editor/readers/{readers['active'].id}"),
                      ("reader-unsubscribe", f"/editor/readers/{readers['active'].id}/unsubscribe"),
                      ("reader-erase", f"/editor/readers/{readers['active'].id}/erase"),
                      ("ops", "/ops"),
                      ("ops-cancel", f"/ops/editions/{ids['sending']}/cancel"),
                      ("ops-audit", "/ops/audit")):
        tour.visit(name, url)
    tour.visit("staff-missing", "/editor/editions/999999", status=404)
    # A form sent back with errors at its fields; an action's answer; an import's report.
    tour.open("/editor/newsletters/new")
    tour.after("newsletter-new-errors", lambda: page.get_by_role("button", name="Create newsletter").click(),
               "/editor/newsletters/new")
    tour.open(f"/editor/editions/{ids['scheduled']}")
    page.get_by_label("Send one copy to").fill("desk@example.org")
    tour.after("edition-test-sent", lambda: page.get_by_role("button", name="Send test").click(),
               "/editor/editions/{edition_id}")
    expect(page.get_by_role("status").filter(has_text="Test sent")).to_be_visible()
    tour.open("/editor/readers/import")
    page.get_by_label("CSV file").set_input_files(files=[{
        "name": "readers.csv", "mimeType": "text/csv",
        "buffer": big_csv(5, bad={3: "not-an-address,Nobody,"}).encode()}])
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import report")).to_be_visible()
    tour.check("readers-import-report")

    # Another role: ops, kept out of an editor's page.
    page.get_by_role("button", name="Sign out").click()
    page.goto("/login?next=/ops")
    submit_sign_in(page, OPS)
    heading(page, "Send queue")
    tour.check("ops-as-ops")
    tour.visit("staff-not-allowed", "/editor/stories", status=403)
    wait_for_mail(live, "desk@example.org", subject="[TEST] ")  # nothing left in flight

    missed = sorted(set(tour.routes) - tour.visited - set(EXEMPT))
    assert not missed, f"pages axe did not check (visit them here, or exempt them with a reason): {missed}"
    stale = sorted(set(EXEMPT) - set(tour.routes))
    assert not stale, f"exempt routes the app no longer has: {stale}"
    assert not tour.blocking, "serious or critical axe violations:\n" + "\n".join(
        f"  {name}:\n    " + "\n    ".join(str(v) for v in found) for name, found in tour.blocking.items())
