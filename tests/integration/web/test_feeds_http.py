"""The feeds page over real HTTP (`digest serve`, the real database): an editor adds a feed
served by a loopback publisher (DIGEST_FETCH_ALLOW) and reads how its first poll went,
sees it listed with its story count, polls it now, pauses and resumes it, edits it (every
bad field at once, at its field), and removes it after being asked (its stories stay). A
feed that cannot be fetched says why in one line; ops cannot change feeds; /ops lists the
feeds needing a look first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from digest.store import Feed, Story
from tests.support.factories import make_user
from tests.support.http_server import LocalServer, conditional, local_server, page
from tests.support.queries import count
from tests.support.samples import RSS
from tests.support.stack import Stack
from tests.support.web import EDITOR, OPS, csrf_token, h1, signed_in, submit

# PostgreSQL only: the library underneath runs on SQLite in its unit tests, and CI keeps
# its half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

LAST_MODIFIED = "Mon, 22 May 2023 10:00:00 GMT"
GONE = b"<p>taken down</p>"


@pytest.fixture
def publisher(live: Stack) -> Iterator[LocalServer]:
    routes = {"/rss.xml": conditional(RSS, '"v1"', LAST_MODIFIED),
              "/missing.xml": page(b"<p>secret internal detail</p>", status=404),
              # Named so that their addresses' order is not the order they are listed in.
              "/z-gone.xml": page(GONE, status=410), "/b-paused.xml": page(RSS, "application/rss+xml"),
              "/a-missing.xml": page(b"<p>secret internal detail</p>", status=404)}
    with local_server(routes, port=live.publisher_port) as server:
        yield server


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as client:
        yield client


def add(client: httpx.Client, url: str, **fields: object) -> httpx.Response:
    return submit(client, "/editor/feeds", "/editor/feeds", {"url": url, "every_minutes": "15", **fields})


def follow(client: httpx.Client, response: httpx.Response) -> str:
    assert response.status_code == 303, (response.status_code, response.text[:2000])
    landed = client.get(response.headers["location"])
    assert landed.status_code == 200
    return landed.text


def post(client: httpx.Client, action: str, data: dict[str, object] | None = None) -> httpx.Response:
    return client.post(action, data={"csrf_token": csrf_token(client.get("/editor/feeds").text), **(data or {})})


def text_of(fragment: str) -> str:
    """What a reader sees: inline tags dropped, block tags as spaces."""
    inline = re.sub(r"</?(?:strong|span|a|code|time|em)\b[^>]*>", "", fragment)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def status_line(html: str, cls: str) -> str:
    """The one notice (`ok`) or warning (`warn`) line on the page."""
    found = re.findall(rf'<p class="{cls}" role="status">(.*?)</p>', html, re.DOTALL)
    assert len(found) == 1, html
    return text_of(found[0])


def row(html: str, feed_id: int) -> str:
    """The text of the feed's row in the list."""
    found = re.search(rf'<tr data-feed="{feed_id}"[^>]*>(.*?)</tr>', html, re.DOTALL)
    assert found, html
    return text_of(found.group(1))


def cell(html: str, feed_id: int, label: str) -> str:
    found = re.search(rf'<tr data-feed="{feed_id}"[^>]*>.*?<td[^>]*data-label="{label}"[^>]*>(.*?)</td>', html,
                      re.DOTALL)
    assert found, html
    return text_of(found.group(1))


def feed_ids(live: Stack) -> dict[str, int]:
    with live.factory() as session:
        return {url: feed_id for feed_id, url in session.execute(select(Feed.id, Feed.url))}


def field_errors(html: str) -> dict[str, str]:
    """Each message shown at a field, by field, and the field marked invalid and described by it."""
    errors = {name: text_of(message) for name, message in
              re.findall(r'<p class="field-error" id="([a-z_]+)-error">(.*?)</p>', html, re.DOTALL)}
    for name in errors:
        if name != "topics":  # a group of checkboxes: its fieldset is described by the message
            assert re.search(rf'id="{name}"[^>]*aria-describedby="[^"]*{name}-error"[^>]*aria-invalid="true"', html,
                             re.DOTALL), name
    return errors


# ------------------------------------------------------------------ add, list, poll, pause


def test_an_editor_adds_a_feed_polls_pauses_and_resumes_it(
        live: Stack, publisher: LocalServer, editor: httpx.Client) -> None:
    url = publisher.url("/rss.xml")
    html = follow(editor, add(editor, url, topics=["world"], featured_categories="Featured",
                              category_topics="Politics = politics\nWorld News = world\n"))
    assert status_line(html, "ok") == "Feed added: 2 stories in its first poll."
    feed_id = feed_ids(live)[url]
    assert cell(html, feed_id, "Stories") == "2"
    assert cell(html, feed_id, "Last poll").startswith("2 new")
    assert cell(html, feed_id, "State") == "active"
    assert cell(html, feed_id, "Every") == "15 minutes"
    assert cell(html, feed_id, "Next poll") == "in 15 minutes"
    with live.factory() as session:
        stories = {s.url: s for s in session.scalars(select(Story))}
    assert sorted(stories["https://news.example.com/first"].topics) == ["politics", "world"]
    assert stories["https://news.example.com/first"].featured is True
    assert stories["https://news.example.com/second"].topics == ["world"]

    # Poll now: the publisher answers 304 to the validators it gave.
    html = follow(editor, post(editor, f"/editor/feeds/{feed_id}/poll"))
    assert status_line(html, "ok") == "Polled: not modified since the last poll."
    assert cell(html, feed_id, "Last poll").startswith("not modified")
    assert {k.lower(): v for k, v in publisher.seen[-1][1].items()}["if-none-match"] == '"v1"'

    html = follow(editor, post(editor, f"/editor/feeds/{feed_id}/pause"))
    assert status_line(html, "ok").startswith("Feed paused")
    assert cell(html, feed_id, "State") == "paused Paused by staff"
    assert cell(html, feed_id, "Next poll") == "not polled while paused"
    assert f'aria-label="Resume: {url}"' in html and f'aria-label="Pause: {url}"' not in html

    html = follow(editor, post(editor, f"/editor/feeds/{feed_id}/pause"))
    assert status_line(html, "ok") == "Nothing to change: it was already so."

    html = follow(editor, post(editor, f"/editor/feeds/{feed_id}/resume"))
    assert status_line(html, "ok").startswith("Feed resumed")
    assert cell(html, feed_id, "State") == "active"
    assert count(live, Story) == 2

    # The same address again: refused at its field, nothing added.
    response = add(editor, url)
    assert response.status_code == 409
    assert field_errors(response.text) == {"url": "This feed is already registered."}
    assert len(feed_ids(live)) == 1


def test_a_feed_that_cannot_be_fetched_says_why_in_one_line(
        live: Stack, publisher: LocalServer, editor: httpx.Client) -> None:
    for url, reason in [(f"http://127.0.0.1:{live.web_port}/healthz", "refused (private address)"),
                        ("http://169.254.169.254/latest/meta-data/", "refused (private address)"),
                        (publisher.url("/missing.xml"), "HTTP 404")]:
        html = follow(editor, add(editor, url))
        line = f"could not fetch {url}: {reason}"
        assert status_line(html, "warn") == f"Feed added, but its first poll failed: {line}"
        assert "secret internal detail" not in html and "Traceback" not in html
        feed_id = feed_ids(live)[url]
        assert cell(html, feed_id, "Last poll").startswith(f"failed: {line}")
        assert "Needs a look" in row(html, feed_id)

        html = follow(editor, post(editor, f"/editor/feeds/{feed_id}/poll"))
        assert status_line(html, "warn") == f"The poll failed: {line}"
    assert count(live, Story) == 0


# ------------------------------------------------------------------ edit


def test_bad_fields_are_each_shown_at_their_field_all_at_once(
        live: Stack, publisher: LocalServer, editor: httpx.Client) -> None:
    bad = {"url": "ftp://news.example.com/rss", "every_minutes": "0", "topics": ["world", "astrology"],
           "category_topics": "World News = world\nSport, no topic"}
    response = add(editor, **bad)  # type: ignore[arg-type]
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert set(errors) == {"url", "every_minutes", "topics", "category_topics"}, errors
    assert "Line 2 (“Sport, no topic”)" in errors["category_topics"]
    assert "astrology" in errors["topics"]
    assert 'value="ftp://news.example.com/rss"' in response.text  # what was typed stays
    assert feed_ids(live) == {}

    url = publisher.url("/rss.xml")
    follow(editor, add(editor, url))
    feed_id = feed_ids(live)[url]
    form = editor.get(f"/editor/feeds/{feed_id}")
    assert form.status_code == 200 and h1(form.text).startswith("Edit feed")
    response = editor.post(f"/editor/feeds/{feed_id}", data={
        "csrf_token": csrf_token(form.text), "url": "not a url", "every_minutes": "soon",
        "topics": ["astrology"], "category_topics": "World News = mars"})
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert set(errors) == {"url", "every_minutes", "topics", "category_topics"}, errors
    assert "mars" in errors["category_topics"]
    with live.factory() as session:
        assert session.get(Feed, feed_id).every_minutes == 15  # nothing saved

    html = follow(editor, editor.post(f"/editor/feeds/{feed_id}", data={
        "csrf_token": csrf_token(form.text), "url": url, "every_minutes": "60", "topics": ["science"],
        "featured": "yes", "category_topics": "# comment\nWorld News = world\n"}))
    assert status_line(html, "ok") == "Feed saved. The changes apply from its next poll."
    assert cell(html, feed_id, "Every") == "60 minutes"
    with live.factory() as session:
        feed = session.get(Feed, feed_id)
        assert (feed.every_minutes, feed.topics, feed.featured, feed.category_topics) == (
            60, ["science"], True, {"world news": "world"})


# ------------------------------------------------------------------ remove


def test_remove_asks_first_and_the_stories_stay(live: Stack, publisher: LocalServer, editor: httpx.Client) -> None:
    url = publisher.url("/rss.xml")
    follow(editor, add(editor, url))
    feed_id = feed_ids(live)[url]

    response = post(editor, f"/editor/feeds/{feed_id}/remove")  # no confirmation: asked first
    assert response.status_code == 303 and response.headers["location"] == f"/editor/feeds/{feed_id}/remove"
    question = editor.get(response.headers["location"])
    assert h1(question.text) == "Remove this feed?"
    assert url in question.text and "The 2 stories it brought stay" in text_of(question.text)
    assert feed_ids(live) == {url: feed_id}

    html = follow(editor, editor.post(f"/editor/feeds/{feed_id}/remove",
                                      data={"csrf_token": csrf_token(question.text), "confirm": "yes"}))
    assert status_line(html, "ok") == "Feed removed. The stories it brought stay in the library."
    assert feed_ids(live) == {}
    assert count(live, Story) == 2

    missing = post(editor, f"/editor/feeds/{feed_id}/poll")
    assert missing.status_code == 404 and "No such feed" in missing.text


# ------------------------------------------------------------------ roles and /ops


def test_ops_cannot_change_feeds_and_sees_those_needing_a_look_first_on_ops(
        live: Stack, web: str, publisher: LocalServer, editor: httpx.Client) -> None:
    good, failing, gone = publisher.url("/rss.xml"), publisher.url("/a-missing.xml"), publisher.url("/z-gone.xml")
    for url in (good, failing, gone):
        follow(editor, add(editor, url))
    ids = feed_ids(live)
    paused = publisher.url("/b-paused.xml")
    follow(editor, add(editor, paused))
    follow(editor, post(editor, f"/editor/feeds/{feed_ids(live)[paused]}/pause"))

    html = editor.get("/editor/feeds").text
    order = [int(n) for n in re.findall(r'<tr data-feed="(\d+)"', html)]
    assert order[:2] == [ids[gone], ids[failing]]  # stopped by itself, then failing
    assert cell(html, ids[gone], "State").startswith("stopped Stopped by itself: gone: could not fetch")

    make_user(live, OPS, "ops")
    with signed_in(web, OPS) as ops:
        assert ops.get("/editor/feeds").status_code == 403
        token = csrf_token(ops.get("/ops").text)
        refused = ops.post("/editor/feeds", data={"csrf_token": token, "url": publisher.url("/other.xml")})
        assert refused.status_code == 403
        assert ops.post(f"/editor/feeds/{ids[good]}/pause", data={"csrf_token": token}).status_code == 403
        assert len(feed_ids(live)) == 4

        panel = ops.get("/ops").text
        section = re.search(r'data-section="feeds">(.*?)</section>', panel, re.DOTALL)
        assert section, panel
        listed = [int(n) for n in re.findall(r'data-feed="(\d+)"', section.group(1))]
        assert listed == [ids[gone], ids[failing], feed_ids(live)[paused]]  # the well one only counted
        words = text_of(section.group(1))
        assert "1 polled and well · 1 failing · 2 paused" in words
        assert f"failing {failing}: 1 failed poll in a row: could not fetch {failing}: HTTP 404" in words
        assert f"{paused}: paused by staff" in words
        assert ops.get("/ops/status.json").json()["feeds"]["failing"] == 1
