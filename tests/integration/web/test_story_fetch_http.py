"""Adding stories by URL over real HTTP, through the editor page and the API: the publisher's
pages come from a loopback server the stack may fetch from (DIGEST_FETCH_ALLOW), anything
else on the machine or the private network is refused with one line, at the field on the
page and as JSON from the API, and nothing is stored or audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.store.models import AuditEntry, Story
from digest.stories import load_source, parse_source
from tests.support.factories import make_user
from tests.support.http_server import LocalServer, local_server, page, redirect
from tests.support.queries import count
from tests.support.samples import article_page
from tests.support.stack import Stack
from tests.support.web import EDITOR, PASSWORD, clear_rate_limits, sign_in, submit

pytestmark = pytest.mark.integration

PLAIN = load_source("sample:sample_article.txt")
CANONICAL = "https://news.example.com/2023/05/zelensky-insists-bakhmut-is-not-occupied-by-russia"
FEED = b"""[{"url": "https://news.example.com/2023/05/by-url", "title": "By URL",
             "published_at": "2023-05-20T09:00:00Z", "topics": ["world"]}]"""


@pytest.fixture
def publisher(live: Stack) -> Iterator[LocalServer]:
    with local_server({"/feed.json": page(FEED, "application/json")}, port=live.publisher_port) as server:
        yield server


@pytest.fixture
def editor(live: Stack, web: str) -> Iterator[httpx.Client]:
    clear_rate_limits(live)
    make_user(live, EDITOR, "editor")
    with httpx.Client(base_url=web, timeout=30, follow_redirects=False) as client:
        assert sign_in(client, EDITOR).status_code == 303
        yield client


@pytest.fixture
def api(live: Stack, web: str) -> Iterator[httpx.Client]:
    with live.factory.begin() as session:
        user = staff.create_user(session, "api-fetch@example.org", "editor", PASSWORD)
        token = staff.create_api_token(session, user, "t")[1]
    with httpx.Client(base_url=f"{web}/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def audit_actions(live: Stack) -> list[str]:
    with live.factory() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def field_error(html: str) -> str:
    """The message shown at the address field (and only there), the field marked invalid."""
    found = re.findall(r'<p class="field-error" id="feed-url-error" role="alert">(.*?)</p>', html, re.DOTALL)
    assert len(found) == 1, html
    assert re.search(r'id="feed-url"[^>]*aria-invalid="true" aria-describedby="feed-url-error"', html)
    return unescape(found[0])


def refused_targets(live: Stack) -> list[tuple[str, str]]:
    """(URL asked for, the line the asker sees): the stack's other services, however spelled,
    and a redirect from the allowed server into one of them."""
    port = live.publisher_port
    return [
        (f"http://127.0.0.1:{live.web_port}/healthz", "refused (private address)"),
        ("http://2130706433:6379/", "refused (private address)"),
        ("http://0177.0.0.1:5432/", "refused (private address)"),
        ("http://[::1]:6379/", "refused (private address)"),
        ("http://169.254.169.254/latest/meta-data/", "refused (private address)"),
        (f"http://127.0.0.1:{port}/to-redis", "refused (private address)"),
        (f"http://127.0.0.1:{port}/to-file", "refused (only http and https)"),
        (f"http://127.0.0.1:{port}/missing", "HTTP 404"),
    ]


def test_a_feed_by_url_is_ingested_from_the_page_and_the_api(
        live: Stack, publisher: LocalServer, editor: httpx.Client, api: httpx.Client) -> None:
    response = submit(editor, "/editor/stories", "/editor/stories/ingest", {"url": publisher.url("/feed.json")})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/editor/stories?done=ingested&added=1&updated=0"

    response = api.post("/stories/ingest", json={"url": publisher.url("/feed.json")})
    assert response.status_code == 200, response.text
    assert response.json() == {"added": 0, "updated": 1}
    assert count(live, Story) == 1
    user_agent = {k.lower(): v for k, v in publisher.seen[-1][1].items()}["user-agent"]
    assert user_agent.startswith("digest/") and user_agent.endswith(f"(+{live.base_url})")


def test_private_addresses_are_refused_with_one_line_at_the_field_and_in_the_api(
        live: Stack, publisher: LocalServer, editor: httpx.Client, api: httpx.Client) -> None:
    publisher.routes["/to-redis"] = redirect("http://0x7f.1:6379/")
    publisher.routes["/to-file"] = redirect("file:///etc/passwd")
    publisher.routes["/missing"] = page(b"<p>secret internal detail</p>", status=404)
    for url, reason in refused_targets(live):
        line = f"could not fetch {url}: {reason}"

        response = submit(editor, "/editor/stories", "/editor/stories/ingest", {"url": url})
        assert response.status_code == 400, (url, response.status_code)
        assert field_error(response.text) == line
        assert "secret internal detail" not in response.text

        response = api.post("/stories/ingest", json={"url": url})
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"] == line
        assert response.json()["code"] in ("fetch_refused", "fetch_status")

    assert count(live, Story) == 0
    assert "stories.ingest" not in audit_actions(live)


def test_an_article_page_becomes_a_clean_story_from_the_page_and_the_api(
        live: Stack, publisher: LocalServer, editor: httpx.Client, api: httpx.Client) -> None:
    publisher.routes["/2023/05/zelensky"] = page(article_page(PLAIN.decode(), CANONICAL))
    [plain] = parse_source(PLAIN, origin="sample:sample_article.txt")

    response = submit(editor, "/editor/stories", "/editor/stories/ingest", {"url": publisher.url("/2023/05/zelensky")})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/editor/stories?done=ingested&added=1&updated=0"
    response = api.post("/stories/ingest", json={"url": publisher.url("/2023/05/zelensky")})
    assert response.json() == {"added": 0, "updated": 1}

    with live.factory() as session:
        (story,) = session.scalars(select(Story)).all()
        assert (story.url, story.title, story.published_at, story.summary, story.body) == (
            plain.url, plain.title, plain.published_at, plain.summary, plain.body)
        assert "Get the featured stories" not in story.body and "Biden Team" not in story.body
