"""The editor pages and the JSON API over real HTTP: `digest serve` under uvicorn, the real
database, Redis for the sign-in limit and aiosmtpd for test sends.

Each action is done as a browser would (open the page for its CSRF token, post the form)
and checked twice: in what the page says and in what the database now holds, audit row
included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from importlib import resources

import httpx
import pytest
from sqlalchemy import func, select

from digest import staff
from digest.store.models import (
    ApiToken,
    AuditEntry,
    Delivery,
    Edition,
    EditionCuration,
    EditionStatus,
    Newsletter,
    Story,
    StoryStatus,
    utcnow,
)
from tests.support.factories import make_user, seed_readers, seed_stories
from tests.support.http_server import local_server, page
from tests.support.mail import wait_for_mail
from tests.support.queries import count, story_ids
from tests.support.samples import SAMPLE_WINDOW_HOURS
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, PASSWORD, csrf_token, sign_in

pytestmark = pytest.mark.integration

MAIL_TIMEOUT_SECONDS = 15


# ------------------------------------------------------------------ helpers


def submit(client: httpx.Client, page_path: str, action: str, data: dict[str, object] | None = None,
           **kwargs: object) -> httpx.Response:
    """Open `page_path` (for its CSRF token) and post `data` to `action`, as the page's form would."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    return client.post(action, data={"csrf_token": csrf_token(page.text), **(data or {})}, **kwargs)  # type: ignore[arg-type]


def audit_actions(live: Stack) -> list[str]:
    with live.factory() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def edition(live: Stack, edition_id: int) -> Edition:
    with live.factory() as session:
        return session.get_one(Edition, edition_id)


def h1(html: str) -> str:
    headings = re.findall(r"<h1>(.*?)</h1>", html, re.DOTALL)
    assert len(headings) == 1, headings
    return unescape(headings[0])


def srcdocs(html: str) -> list[str]:
    return [unescape(s) for s in re.findall(r'srcdoc="([^"]*)"', html)]


def draft(client: httpx.Client, subject: str = "Weekend reads", **fields: object) -> int:
    response = submit(client, "/editor/editions/new", "/editor/editions/new",
                      {"subject": subject, "send_at": "", "timezone": "UTC", "max_stories": "5",
                       "window_hours": "48", **fields})
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/editor/editions/(\d+)\?done=edition-added", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


# ------------------------------------------------------------------ fixtures



@pytest.fixture
def editor(live: Stack, client: httpx.Client) -> httpx.Client:
    make_user(live, EDITOR, "editor")
    assert sign_in(client, EDITOR).status_code == 303
    return client


@pytest.fixture
def feed_server(live: Stack) -> Iterator[str]:
    """A publisher's JSON feed on the port the stack may fetch from: what an editor pastes
    into "From a feed or an article page"."""
    body = json.dumps([{"url": "https://news.example.com/2023/05/from-the-feed", "title": "From the feed",
                        "summary": "Fetched over HTTP.", "published_at": "2023-05-20T09:00:00Z",
                        "topics": ["world"]}]).encode()
    with local_server({"/feed.json": page(body, "application/json")}, port=live.publisher_port) as server:
        yield server.url("/feed.json")


# ------------------------------------------------------------------ who may open the pages


EDITOR_PAGES = ["/editor", "/editor/stories", "/editor/editions/new", "/editor/newsletters/new", "/editor/tokens"]


def test_anonymous_visitors_are_sent_to_sign_in(client: httpx.Client) -> None:
    for path in [*EDITOR_PAGES, "/editor/editions/1"]:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"
    # Posting without a session changes nothing and also goes to sign in.
    assert client.post("/editor/tokens", data={"name": "x"}).status_code == 303


def test_ops_staff_get_403_and_editors_and_admins_get_in(live: Stack, client: httpx.Client) -> None:
    make_user(live, OPS, "ops")
    assert sign_in(client, OPS).status_code == 303
    for path in EDITOR_PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "cannot open this page" in response.text
    make_user(live, "admin@example.org", "admin")
    client.cookies.clear()
    assert sign_in(client, "admin@example.org").status_code == 303
    for path in EDITOR_PAGES:
        assert client.get(path).status_code == 200, path


def test_an_editor_signs_in_with_the_form_and_out_again(live: Stack, client: httpx.Client) -> None:
    make_user(live, EDITOR, "editor")
    wrong = sign_in(client, EDITOR, "not the password at all")
    assert wrong.status_code == 401
    assert "do not match" in wrong.text
    assert "digest_session" not in client.cookies

    response = sign_in(client, EDITOR)
    assert response.status_code == 303 and response.headers["location"] == "/editor"
    dashboard = client.get("/editor")
    assert dashboard.status_code == 200
    assert h1(dashboard.text) == "Editor dashboard"
    assert dashboard.headers["cache-control"] == "no-store"
    for link in ("/editor/stories", "/editor/editions/new", "/editor/newsletters/new", "/editor/tokens",
                 "/archive"):
        assert f'href="{link}"' in dashboard.text
    assert audit_actions(live) == ["login"]

    out = client.post("/logout", data={"csrf_token": csrf_token(dashboard.text)})
    assert out.status_code == 303
    assert client.get("/editor").status_code == 303


def test_a_form_without_its_csrf_token_changes_nothing(live: Stack, editor: httpx.Client) -> None:
    seed_stories(live.factory)
    story_id = story_ids(live)["City Council Approves Overhaul of Downtown Transit Routes"]
    response = editor.post(f"/editor/stories/{story_id}/flags", data={"status": "retracted", "confirm": "yes"})
    assert response.status_code == 403
    assert editor.post("/editor/editions/new", data={"subject": "x", "csrf_token": "forged"}).status_code == 403
    with live.factory() as session:
        assert session.get_one(Story, story_id).status == StoryStatus.PUBLISHED
    assert count(live, Edition) == 0
    assert audit_actions(live) == ["login"]


# ------------------------------------------------------------------ dashboard and newsletters


def test_a_new_newsletter_shows_on_the_dashboard_with_its_schedule(live: Stack, editor: httpx.Client) -> None:
    response = submit(editor, "/editor/newsletters/new", "/editor/newsletters/new", {
        "name": "Morning Briefing", "slug": "morning-briefing", "sender_name": "The Desk",
        "cron": "0 7 * * 1-5", "timezone": "Europe/Kyiv", "topics": ["politics", "world"],
        "max_stories": "4", "min_stories": "2", "subject_template": "{{ newsletter }}: {{ date }}"})
    with live.factory() as session:
        newsletter = session.scalars(select(Newsletter)).one()
    assert response.status_code == 303
    assert response.headers["location"] == f"/editor/newsletters/{newsletter.id}?done=added"
    with live.factory() as session:
        newsletter = session.scalars(select(Newsletter)).one()
        assert (newsletter.cron, newsletter.timezone, newsletter.topics) == ("0 7 * * 1-5", "Europe/Kyiv",
                                                                            ["politics", "world"])
        assert (newsletter.max_stories, newsletter.min_stories, newsletter.sender_name) == (4, 2, "The Desk")

    # A sent edition, to list under "Recent".
    with live.factory.begin() as session:
        session.add(Edition(subject="Last week's stories", send_at=utcnow() - timedelta(days=7),
                            status=EditionStatus.SENT, finished_at=utcnow() - timedelta(days=7)))
    upcoming_id = draft(editor, "Tomorrow's stories")

    created = editor.get(response.headers["location"])
    assert created.status_code == 200 and "Newsletter created." in created.text
    page = editor.get("/editor")
    assert page.status_code == 200
    assert "Morning Briefing" in page.text and "At 07:00, Monday through Friday, Kyiv time" in page.text
    with live.factory() as session:  # its first editions were made with it, ready to curate
        first = session.scalars(select(Edition).where(Edition.newsletter_id == newsletter.id)
                                .order_by(Edition.send_at)).first()
    assert first is not None and f'href="/editor/editions/{first.id}"' in page.text
    assert re.search(r"(EET|EEST)", page.text), "next time shown in the newsletter's own zone"
    upcoming, recent = page.text.split('id="recent-h"')[0], page.text.split('id="recent-h"')[1]
    assert f'href="/editor/editions/{upcoming_id}"' in upcoming and "draft" in upcoming
    assert "Last week&#39;s stories" in recent and "sent" in recent
    assert audit_actions(live) == ["login", "newsletter.add", "edition.add"]


BAD_NEWSLETTERS = [
    ("cron", "every morning", "cron expression"),
    ("cron", "61 7 * * *", "bad cron expression"),
    ("timezone", "Mars/Olympus_Mons", "unknown time zone"),
    ("subject_template", "Morning\r\nBcc: everyone@example.org", "must be one line"),
    ("sender_name", "Desk\r\nBcc: everyone@example.org", "sender name must be a single line"),
    ("slug", "Morning Briefing!", "slug must be lowercase"),
    ("max_stories", "lots", "most stories must be a whole number"),
    ("min_stories", "9", "fewest stories must not be more than most stories"),
    ("topics", "astrology", "unknown topic"),
]


def test_a_bad_newsletter_comes_back_as_the_form_with_the_reason(live: Stack, editor: httpx.Client) -> None:
    for field, value, message in BAD_NEWSLETTERS:
        fields = {"name": "Morning Briefing", "slug": "morning", "cron": "0 7 * * *", "timezone": "UTC",
                  "max_stories": "5", "min_stories": "1", "subject_template": "{{ newsletter }}", field: value}
        response = submit(editor, "/editor/newsletters/new", "/editor/newsletters/new", fields)
        assert response.status_code == 400, field
        at_field = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', response.text)
        assert at_field and message in unescape(at_field.group(1)), (field, message)  # shown at its field
        assert h1(response.text) == "New newsletter"
        assert 'value="Morning Briefing"' in response.text  # what was typed is kept
    assert count(live, Newsletter) == 0
    assert audit_actions(live) == ["login"]


# ------------------------------------------------------------------ editions: create


BAD_EDITIONS = [
    ({"subject": "Hello\r\nBcc: everyone@example.org"}, "subject"),
    ({"subject": "   "}, "subject must not be empty"),
    ({"timezone": "Europe/Atlantis", "send_at": "2030-01-01T07:00"}, "unknown time zone"),
    ({"send_at": "next tuesday"}, "send time 'next tuesday' is not an ISO 8601 date-time"),
    ({"max_stories": "0"}, "max stories must be between 1 and 50"),
    ({"window_hours": "a day"}, "Story window must be a whole number"),
    ({"topics": "astrology"}, "unknown topic"),
]


def test_a_bad_edition_comes_back_as_the_form_with_the_reason(live: Stack, editor: httpx.Client) -> None:
    for fields, message in BAD_EDITIONS:
        data = {"subject": "Weekend reads", "send_at": "", "timezone": "UTC", "max_stories": "5",
                "window_hours": "48", **fields}
        response = submit(editor, "/editor/editions/new", "/editor/editions/new", data)
        assert response.status_code == 400, fields
        assert message in unescape(response.text), (fields, message)
        assert h1(response.text) == "New edition"
    assert count(live, Edition) == 0
    assert audit_actions(live) == ["login"]


def test_a_new_edition_is_a_draft_at_the_time_given_in_its_zone(live: Stack, editor: httpx.Client) -> None:
    edition_id = draft(editor, "Election special", send_at="2030-03-01T07:30", timezone="Europe/Kyiv",
                       topics=["politics", "world"], max_stories="3", window_hours="72")
    row = edition(live, edition_id)
    assert row.status == EditionStatus.DRAFT
    assert row.send_at.isoformat() == "2030-03-01T05:30:00+00:00"
    assert (row.topics, row.max_stories, row.window_hours) == (["politics", "world"], 3, 72)
    page = editor.get(f"/editor/editions/{edition_id}?done=edition-added")
    assert h1(page.text) == "Election special"
    assert "Draft edition created." in page.text
    assert editor.get("/editor/editions/999999").status_code == 404


# ------------------------------------------------------------------ stories


def test_stories_are_searched_filtered_featured_retracted_and_restored(live: Stack, editor: httpx.Client) -> None:
    seed_stories(live.factory)
    total = count(live, Story)
    page = editor.get("/editor/stories")
    assert page.status_code == 200 and h1(page.text) == "Stories"
    assert f"{total} stories" in page.text

    found = editor.get("/editor/stories", params={"q": "council"})
    assert "1 story" in found.text and "City Council Approves" in found.text
    politics = editor.get("/editor/stories", params={"topic": "politics"})
    assert "City Council Approves" in politics.text and "Water Utility" not in politics.text
    featured = editor.get("/editor/stories", params={"featured": "yes"})
    with live.factory() as session:
        n_featured = session.scalar(select(func.count()).select_from(Story).where(Story.featured.is_(True)))
    assert f"{n_featured} stor" in featured.text
    dated = editor.get("/editor/stories", params={"published_from": "2023-05-15", "published_to": "2023-05-15"})
    assert "City Council Approves" in dated.text
    assert "0 stories" in editor.get("/editor/stories", params={"published_from": "2031-01-01"}).text
    assert editor.get("/editor/stories", params={"published_from": "yesterday"}).status_code == 400
    assert editor.get("/editor/stories", params={"status": "deleted"}).status_code == 400
    assert editor.get("/editor/stories", params={"featured": "maybe"}).status_code == 400

    story_id = story_ids(live)["Regional Water Utility Posts Surprise Quarterly Profit"]
    back = "/editor/stories?q=water"
    response = submit(editor, back, f"/editor/stories/{story_id}/flags", {"featured": "1", "back": back})
    assert response.status_code == 303 and response.headers["location"] == back + "&done=story-updated"
    # Retracting asks first, naming the story; nothing changes until the answer.
    response = submit(editor, back, f"/editor/stories/{story_id}/flags", {"status": "retracted", "back": back})
    assert response.status_code == 303
    assert response.headers["location"] == f"/editor/stories/{story_id}/retract?back=%2Feditor%2Fstories%3Fq%3Dwater"
    question = editor.get(response.headers["location"])
    assert h1(question.text) == "Retract “Regional Water Utility Posts Surprise Quarterly Profit”?"
    with live.factory() as session:
        assert session.get_one(Story, story_id).status == StoryStatus.PUBLISHED
    response = submit(editor, back, f"/editor/stories/{story_id}/flags",
                      {"status": "retracted", "back": back, "confirm": "yes"})
    assert response.headers["location"] == back + f"&done=story-retracted&undo={story_id}"
    with live.factory() as session:
        story = session.get_one(Story, story_id)
        assert story.featured and story.status == StoryStatus.RETRACTED
    assert "1 story" in editor.get("/editor/stories", params={"status": "retracted"}).text
    page = editor.get(response.headers["location"])
    assert "was retracted." in page.text and ">Undo</button>" in page.text  # undone in one click
    assert "Restore" in page.text and "Unfeature" in page.text

    # An open redirect is not possible through "back".
    response = submit(editor, back, f"/editor/stories/{story_id}/flags",
                      {"status": "published", "back": "https://evil.example/"})
    assert response.headers["location"] == "/editor/stories?done=story-updated"
    with live.factory() as session:
        assert session.get_one(Story, story_id).status == StoryStatus.PUBLISHED
    assert submit(editor, back, "/editor/stories/999999/flags", {"featured": "1"}).status_code == 404
    assert audit_actions(live) == ["login", "story.update", "story.update", "story.update"]


def test_stories_come_in_from_a_feed_a_file_and_by_hand(live: Stack, editor: httpx.Client,
                                                       feed_server: str) -> None:
    response = submit(editor, "/editor/stories", "/editor/stories/ingest", {"url": feed_server})
    assert response.status_code == 303
    assert response.headers["location"] == "/editor/stories?done=ingested&added=1&updated=0"
    assert "1 stories added, 0 updated." in editor.get(response.headers["location"]).text

    sample = (resources.files("digest") / "data" / "sample_feed.json").read_bytes()
    page = editor.get("/editor/stories")
    response = editor.post("/editor/stories/upload", data={"csrf_token": csrf_token(page.text)},
                           files={"file": ("stories.json", sample, "application/json")})
    assert response.status_code == 303
    assert response.headers["location"] == f"/editor/stories?done=ingested&added={len(json.loads(sample))}&updated=0"

    response = submit(editor, "/editor/stories", "/editor/stories/add", {
        "url": "https://news.example.com/2023/05/by-hand", "title": "Written  by\thand",
        "summary": "An editor typed this.", "published_at": "2023-05-21T10:15",
        "image_url": "https://news.example.com/images/by-hand.jpg", "topics": ["science", "health"]})
    assert response.status_code == 303 and "done=story-added" in response.headers["location"]
    with live.factory() as session:
        story = session.scalars(select(Story).where(Story.url == "https://news.example.com/2023/05/by-hand")).one()
        assert story.title == "Written by hand" and story.topics == ["science", "health"]
        assert story.published_at.isoformat() == "2023-05-21T10:15:00+00:00"
        assert story.image_url == "https://news.example.com/images/by-hand.jpg"
    assert count(live, Story) == 1 + len(json.loads(sample)) + 1
    assert audit_actions(live) == ["login", "stories.ingest", "stories.upload", "story.add"]


BAD_STORIES = [
    ("/editor/stories/ingest", {"url": "file:///etc/passwd"}, "must start with http"),
    ("/editor/stories/ingest", {"url": "http://127.0.0.1:9/feed"},
     "could not fetch http://127.0.0.1:9/feed: refused (private address)"),
    ("/editor/stories/ingest", {"url": "http://0x7f.1:6379/"}, "could not fetch http://0x7f.1:6379/: refused (private address)"),
    ("/editor/stories/add", {"url": "javascript:alert(1)", "title": "x"}, "not an http(s) URL"),
    ("/editor/stories/add", {"url": "https://news.example.com/a", "title": "  "}, "title: missing"),
    ("/editor/stories/add", {"url": "https://news.example.com/a", "title": "x", "published_at": "soon"},
     "not a date"),
    ("/editor/stories/add", {"url": "https://news.example.com/a", "title": "x", "image_url": "data:x"},
     "not an http(s) URL"),
]


def test_bad_stories_are_refused_with_the_reason(live: Stack, editor: httpx.Client) -> None:
    for action, data, message in BAD_STORIES:
        response = submit(editor, "/editor/stories", action, data)
        assert response.status_code == 400, (action, data)
        assert message in unescape(response.text), (action, message)
        assert h1(response.text) == "Stories"
    assert count(live, Story) == 0
    assert audit_actions(live) == ["login"]


def test_a_bad_upload_is_refused(live: Stack, editor: httpx.Client) -> None:
    token = csrf_token(editor.get("/editor/stories").text)
    response = editor.post("/editor/stories/upload", data={"csrf_token": token},
                           files={"file": ("stories.json", b'{"not": "a list"}', "application/json")})
    assert response.status_code == 400 and "JSON must be a list" in response.text
    response = editor.post("/editor/stories/upload", data={"csrf_token": token},
                           files={"file": ("stories.json", b"", "application/json")})
    assert response.status_code == 400 and "Choose a file" in response.text
    response = editor.post("/editor/stories/upload", data={"csrf_token": "forged"},
                           files={"file": ("stories.json", b"[]", "application/json")})
    assert response.status_code == 403
    too_big = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    response = editor.post("/editor/stories/upload", data={"csrf_token": token},
                           files={"file": ("stories.json", too_big, "application/json")})
    assert response.status_code == 413
    assert count(live, Story) == 0


# ------------------------------------------------------------------ curation


def test_an_edition_is_curated_previewed_tested_and_scheduled(live: Stack, editor: httpx.Client) -> None:
    seed_stories(live.factory)
    reader = seed_readers(live.factory, 1, prefix="preview-reader")[0]
    ids = story_ids(live)
    first, second = (ids["Regional Water Utility Posts Surprise Quarterly Profit"],
                     ids["City Council Approves Overhaul of Downtown Transit Routes"])
    # Due tomorrow: scheduled, it stays scheduled (one due now would be released at once).
    edition_id = draft(editor, send_at=f"{utcnow() + timedelta(days=1):%Y-%m-%dT%H:%M}")
    page_path = f"/editor/editions/{edition_id}"
    # Sample stories are old: outside the 48-hour window, so only pins will show.
    page = editor.get(page_path, params={"q": "water"})
    assert "No story qualifies yet" in page.text
    assert "Regional Water Utility" in page.text and "City Council" not in page.text

    for story_id in (first, second):
        response = submit(editor, page_path, f"{page_path}/stories/{story_id}/pin")
        assert response.status_code == 303
        assert response.headers["location"] == f"{page_path}?done=pinned#stories"
    page = editor.get(page_path)
    listed = page.text.split('id="stories-h"')[1].split('id="note-h"')[0]
    assert listed.index("Regional Water Utility") < listed.index("City Council Approves")

    assert submit(editor, page_path, f"{page_path}/stories/{first}/down").status_code == 303
    with live.factory() as session:
        pins = session.scalars(select(EditionCuration).where(EditionCuration.edition_id == edition_id,
                                                             EditionCuration.action == "pin")
                               .order_by(EditionCuration.position)).all()
        assert [p.story_id for p in pins] == [second, first]

    bad = submit(editor, page_path, f"{page_path}/stories/{first}",
                 {"headline": "Water\r\nBcc: everyone@example.org", "summary": ""})
    assert bad.status_code == 400 and "headline" in bad.text
    response = submit(editor, page_path, f"{page_path}/stories/{first}",
                      {"headline": "Water utility: the surprise profit, explained", "summary": "Why it matters."})
    assert response.status_code == 303
    response = submit(editor, page_path, f"{page_path}/note", {"note": "Two stories we think you missed."})
    assert response.status_code == 303 and response.headers["location"].endswith("#note")
    # Said in the note's own section, where the page lands, not at the top out of view.
    noted = editor.get(response.headers["location"].split("#")[0]).text
    assert noted.count('role="status">Editor&#39;s note saved.') == 1
    assert noted.index('id="note-h"') < noted.index("Editor&#39;s note saved.") < noted.index('id="add-h"')

    page = editor.get(page_path)
    assert "Original headline: Regional Water Utility Posts Surprise Quarterly Profit" in page.text
    desktop, phone = srcdocs(page.text)
    assert desktop == phone
    assert "Water utility: the surprise profit, explained" in desktop and "Two stories we think you missed." in desktop
    assert desktop.index("City Council Approves") < desktop.index("Water utility: the surprise profit")
    assert page.text.count("sandbox") >= 2
    assert "Water utility: the surprise profit, explained" in unescape(page.text.split('class="text-part"')[1])

    as_reader = editor.get(page_path, params={"email": reader})
    assert as_reader.status_code == 200 and "Name 0" in srcdocs(as_reader.text)[0]
    # An unknown address answers as a new reader there would be served: no "no such
    # reader", which would tell staff who is subscribed.
    unknown = editor.get(page_path, params={"email": "nobody@example.org"})
    assert unknown.status_code == 200 and "no subscriber" not in unknown.text
    assert "Hello," in srcdocs(unknown.text)[0] and "Name 0" not in srcdocs(unknown.text)[0]

    response = submit(editor, page_path, f"{page_path}/test", {"email": "desk@example.org"})
    assert response.status_code == 303 and "done=test-sent" in response.headers["location"]
    [received] = live.smtp.by_recipient()["desk@example.org"]
    assert str(received.message["Subject"]).startswith("[TEST] Weekend reads")
    assert count(live, Delivery) == 0
    assert submit(editor, page_path, f"{page_path}/test", {"email": "not an address"}).status_code == 400

    response = submit(editor, page_path, f"{page_path}/stories/{second}/exclude")
    assert response.status_code == 303
    page = editor.get(page_path)
    assert "Left out" in page.text and "allow again" in page.text
    assert submit(editor, page_path, f"{page_path}/stories/{second}/clear").status_code == 303
    assert submit(editor, page_path, f"{page_path}/stories/{first}/unpin").status_code == 303
    with live.factory() as session:
        row = session.get_one(EditionCuration, (edition_id, first))
        assert row.action == "edit" and row.headline == "Water utility: the surprise profit, explained"

    for action, status in (("schedule", EditionStatus.SCHEDULED), ("unschedule", EditionStatus.DRAFT),
                           ("schedule", EditionStatus.SCHEDULED)):
        response = submit(editor, page_path, f"{page_path}/status", {"action": action, "anyway": "yes"})
        assert response.status_code == 303 and response.headers["location"] == f"{page_path}?done={action}"
        assert edition(live, edition_id).status == status
    response = submit(editor, page_path, f"{page_path}/status", {"action": "schedule", "anyway": "yes"})
    assert response.headers["location"] == f"{page_path}?done=unchanged"
    # Cancelling asks first, naming the edition and who it would still reach.
    asked = submit(editor, page_path, f"{page_path}/status", {"action": "cancel"})
    assert asked.status_code == 303 and asked.headers["location"] == f"{page_path}/cancel"
    assert edition(live, edition_id).status == EditionStatus.SCHEDULED
    question = editor.get(asked.headers["location"])
    assert h1(question.text).startswith("Cancel “") and "cannot be undone" in question.text
    assert submit(editor, page_path, f"{page_path}/status", {"action": "cancel", "confirm": "yes"}).status_code == 303
    assert edition(live, edition_id).status == EditionStatus.CANCELLED
    assert submit(editor, page_path, f"{page_path}/status", {"action": "schedule", "anyway": "yes"}).status_code == 409
    assert submit(editor, page_path, f"{page_path}/status", {"action": "explode"}).status_code == 400

    assert audit_actions(live) == [
        "login", "edition.add", "edition.pin", "edition.pin", "edition.reorder", "edition.override", "edition.note",
        "edition.test", "edition.exclude", "edition.clear", "edition.reorder", "edition.schedule",
        "edition.unschedule", "edition.schedule", "edition.schedule", "edition.cancel"]


def test_scheduling_a_draft_whose_time_has_passed_sends_it_now_not_never(live: Stack, editor: httpx.Client) -> None:
    seed_stories(live.factory)
    [reader] = seed_readers(live.factory, 1, prefix="overdue-reader")
    edition_id = draft(editor, "Curated all afternoon", send_at="2020-01-01T07:00",
                       window_hours=str(SAMPLE_WINDOW_HOURS))
    page_path = f"/editor/editions/{edition_id}"
    assert "Its send time has passed, so scheduling sends it straight away." in editor.get(page_path).text
    before = utcnow()
    response = submit(editor, page_path, f"{page_path}/status", {"action": "schedule", "anyway": "yes"})
    assert response.status_code == 303 and response.headers["location"] == f"{page_path}?done=schedule-now"
    # Released at once, by the action itself: no beat, no release task sent by the test.
    assert live.wait_for_edition(edition_id, timeout=MAIL_TIMEOUT_SECONDS) == "sent"
    [received] = wait_for_mail(live, reader, subject="Curated all afternoon")
    assert str(received.message["Subject"]) == "Curated all afternoon"
    row = edition(live, edition_id)
    assert row.send_at >= before - timedelta(seconds=1)
    assert "it is going out now" in editor.get(f"{page_path}?done=schedule-now").text
    with live.factory() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "edition.schedule")).one()
        assert entry.detail == {"changed": True, "send_at_was": "2020-01-01T07:00:00+00:00"}


def test_curating_an_edition_that_is_sending_or_sent_is_a_409_page(live: Stack, editor: httpx.Client) -> None:
    seed_stories(live.factory)
    story_id = story_ids(live)["City Council Approves Overhaul of Downtown Transit Routes"]
    for status in (EditionStatus.SENDING, EditionStatus.SENT):
        with live.factory.begin() as session:
            row = Edition(subject=f"Already {status.value}", send_at=utcnow(), status=status)
            session.add(row)
            session.flush()
            edition_id = row.id
        page_path = f"/editor/editions/{edition_id}"
        page = editor.get(page_path)
        assert page.status_code == 200
        assert f"This edition is {status.value}: its stories are frozen" in page.text
        assert "/pin" not in page.text and "/note" not in page.text
        for action, data in ((f"/stories/{story_id}/pin", {}), (f"/stories/{story_id}/up", {}),
                             (f"/stories/{story_id}", {"headline": "New"}), ("/note", {"note": "Hi"})):
            response = submit(editor, page_path, page_path + action, data)
            assert response.status_code == 409, action
            assert h1(response.text) == "This edition is frozen"
            assert f"Edition {edition_id} is {status.value}: its stories are frozen." in response.text
        assert submit(editor, page_path, f"{page_path}/status", {"action": "schedule", "anyway": "yes"}).status_code == 409
    assert count(live, EditionCuration) == 0
    assert audit_actions(live) == ["login"]


# ------------------------------------------------------------------ tokens and the API


def test_tokens_are_shown_once_work_on_the_api_and_stop_when_revoked(live: Stack, editor: httpx.Client) -> None:
    response = submit(editor, "/editor/tokens", "/editor/tokens", {"name": "CMS sync"})
    assert response.status_code == 200
    [secret] = re.findall(r'value="(dgt_[^"]+)"', response.text)
    assert "it is not shown again" in response.text
    page = editor.get("/editor/tokens")
    assert secret not in page.text and "CMS sync" in page.text and secret[:10] in page.text

    api = httpx.Client(base_url=str(editor.base_url), timeout=15, headers={"Authorization": f"Bearer {secret}"})
    with api:
        assert api.get("/api/v1/stories").status_code == 200
        created = api.post("/api/v1/editions", json={"subject": "From a script"})
        assert created.status_code == 201 and created.json()["status"] == "draft"

        with live.factory() as session:
            token_id = session.scalars(select(ApiToken.id)).one()
        response = submit(editor, "/editor/tokens", f"/editor/tokens/{token_id}/revoke")
        assert response.status_code == 303 and response.headers["location"] == "/editor/tokens?done=token-revoked"
        assert "revoked" in editor.get("/editor/tokens").text
        refused = api.get("/api/v1/stories")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    again = submit(editor, "/editor/tokens", f"/editor/tokens/{token_id}/revoke")
    assert again.headers["location"] == "/editor/tokens?done=token-unknown"
    assert audit_actions(live) == ["login", "token.create", "edition.add", "token.revoke"]


def test_the_api_wants_a_token_with_the_right_role(live: Stack, web: str) -> None:
    with live.factory.begin() as session:
        editor = staff.create_user(session, EDITOR, "editor", PASSWORD)
        ops = staff.create_user(session, OPS, "ops", PASSWORD)
        _, editor_token = staff.create_api_token(session, editor, "script")
        _, ops_token = staff.create_api_token(session, ops, "ops script")
    with httpx.Client(base_url=web, timeout=15) as api:
        missing = api.get("/api/v1/editions")
        assert missing.status_code == 401 and missing.json()["error"].startswith("a valid API token")
        assert api.get("/api/v1/editions", headers={"Authorization": "Bearer dgt_made-up"}).status_code == 401
        good = {"Authorization": f"Bearer {editor_token}"}
        created = api.post("/api/v1/editions", json={"subject": "Via the API", "draft": True}, headers=good)
        assert created.status_code == 201
        assert api.get(f"/api/v1/editions/{created.json()['id']}", headers=good).json()["subject"] == "Via the API"
        bad = api.post("/api/v1/editions", json={"subject": "Hi\r\nBcc: x@example.org"}, headers=good)
        assert bad.status_code == 400

        as_ops = {"Authorization": f"Bearer {ops_token}"}
        assert api.get("/api/v1/editions", headers=as_ops).status_code == 200
        forbidden = api.post("/api/v1/editions", json={"subject": "Ops edition"}, headers=as_ops)
        assert forbidden.status_code == 403 and "ops" in forbidden.json()["error"]

        schema = api.get("/api/v1/openapi.json")
        assert schema.status_code == 200
        document = json.loads(schema.text)
        assert document["openapi"].startswith("3.") and "/editions" in document["paths"]
        assert "/stories" in document["paths"] and "/tokens" in document["paths"]
    assert count(live, Edition) == 1
