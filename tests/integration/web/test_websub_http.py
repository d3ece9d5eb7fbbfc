"""WebSub over real HTTP: a feed that advertises a hub is subscribed at a local hub
stand-in, which verifies intent at digest's callback (the running `digest serve`) and
pushes signed updates; a pushed story is filed at once, a forged or unsigned push is
ignored, and a verification digest never asked for is refused."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select

from digest.config import get_settings
from digest.feeds import FeedSettings, add_feed, poll_feed
from digest.store import Feed, Story, utcnow
from tests.support.http_server import allow_loopback, local_server, page
from tests.support.samples import TOPICS
from tests.support.stack import Stack

# PostgreSQL only: the library underneath runs on SQLite in its unit tests, and CI keeps
# its half hour.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]


@dataclass
class Hub:
    """A hub stand-in: keeps each subscription request's form."""

    port: int
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"


@pytest.fixture
def hub() -> Iterator[Hub]:
    state = Hub(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            state.requests.append({key: values[0] for key, values in form.items()})
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def feed_xml(hub_url: str, topic: str, *items: tuple[str, str]) -> bytes:
    entries = "".join(f"<item><guid>{slug}</guid><link>https://news.example.com/2026/{slug}</link>"
                      f"<title>{title}</title><pubDate>Tue, 01 Dec 2026 08:00:00 GMT</pubDate></item>"
                      for slug, title in items)
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
            f'<title>Desk</title><link>https://news.example.com/</link><atom:link rel="hub" href="{hub_url}"/>'
            f'<atom:link rel="self" href="{topic}"/>{entries}</channel></rss>').encode()


def signed(secret: str, body: bytes, method: str = "sha256") -> str:
    return f"{method}={hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()}"


def titles(live: Stack) -> set[str]:
    with live.factory() as session:
        return set(session.scalars(select(Story.title)))


def test_a_feed_with_a_hub_is_subscribed_verified_and_pushed_to(live: Stack, web: str, hub: Hub,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_BASE_URL", live.base_url)
    allow_loopback(monkeypatch, f"127.0.0.1:{live.publisher_port}", f"127.0.0.1:{hub.port}")
    topic = "https://news.example.com/feed.xml"
    with local_server(port=live.publisher_port) as publisher:
        publisher.routes["/feed.xml"] = page(feed_xml(hub.url, topic, ("first", "First Story")),
                                             "application/rss+xml")
        with live.factory.begin() as session:
            feed_id = add_feed(session, publisher.url("/feed.xml"), FeedSettings(featured=True), TOPICS).id

        assert poll_feed(live.factory, feed_id, force=True).outcome == "stories"

    [asked] = hub.requests
    callback = f"{live.base_url}/hooks/websub/{feed_id}"
    assert asked["hub.mode"] == "subscribe" and asked["hub.topic"] == topic and asked["hub.callback"] == callback
    secret = asked["hub.secret"]
    with httpx.Client(timeout=10) as client:
        # Intent verification: the challenge echoed for our topic only.
        stranger = client.get(callback, params={"hub.mode": "subscribe", "hub.topic": "https://evil.example/x",
                                                "hub.challenge": "c1", "hub.lease_seconds": "600"})
        assert stranger.status_code == 404
        verified = client.get(callback, params={"hub.mode": "subscribe", "hub.topic": topic,
                                                "hub.challenge": "c2-xyz", "hub.lease_seconds": "600"})
        assert (verified.status_code, verified.text) == (200, "c2-xyz")
        with live.factory() as session:
            feed = session.get_one(Feed, feed_id)
            assert feed.hub_state == "verified"
            assert abs(feed.hub_lease_until - (utcnow() + timedelta(seconds=600))) < timedelta(seconds=30)

        pushed = feed_xml(hub.url, topic, ("breaking", "Breaking: Dam Holds"), ("first", "First Story"))
        forged = feed_xml(hub.url, topic, ("forged", "Forged Story"))
        headers = {"Content-Type": "application/rss+xml"}
        assert client.post(callback, content=forged, headers={**headers, "X-Hub-Signature": signed("wrong", forged)}
                           ).status_code == 200
        assert client.post(callback, content=forged, headers=headers).status_code == 200  # unsigned
        assert client.post(callback, content=pushed, headers={**headers, "X-Hub-Signature": signed(secret, pushed)}
                           ).json()["status"] == "accepted"
        sha1 = feed_xml(hub.url, topic, ("sha1", "Signed With SHA-1"))
        assert client.post(callback, content=sha1, headers={**headers, "X-Hub-Signature": signed(secret, sha1, "sha1")}
                           ).json()["status"] == "accepted"
        # A push for a feed that does not exist, and an unsubscribe we did not ask for.
        assert client.post(f"{live.base_url}/hooks/websub/999999", content=pushed).status_code == 404
        assert client.get(callback, params={"hub.mode": "unsubscribe", "hub.topic": topic,
                                            "hub.challenge": "c3"}).status_code == 404

    # Filed within the request: the pushed story is there when the hub's POST is answered.
    assert titles(live) == {"First Story", "Breaking: Dam Holds", "Signed With SHA-1"}
    with live.factory() as session:
        assert session.scalar(select(Story.featured).where(Story.title == "Breaking: Dam Holds")) is True


def test_a_lease_near_its_end_is_renewed_by_the_next_poll(live: Stack, hub: Hub,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_BASE_URL", live.base_url)
    allow_loopback(monkeypatch, f"127.0.0.1:{live.publisher_port}", f"127.0.0.1:{hub.port}")
    topic = "https://news.example.com/feed.xml"
    with local_server(port=live.publisher_port) as publisher:
        publisher.routes["/feed.xml"] = page(feed_xml(hub.url, topic, ("first", "First Story")),
                                             "application/rss+xml")
        with live.factory.begin() as session:
            feed_id = add_feed(session, publisher.url("/feed.xml"), FeedSettings(), TOPICS).id
        poll_feed(live.factory, feed_id, force=True)
        poll_feed(live.factory, feed_id, force=True)
        assert len(hub.requests) == 1  # asked once; not again while the request is fresh
        with live.factory.begin() as session:
            feed = session.get_one(Feed, feed_id)
            feed.hub_state, feed.hub_lease_until = "verified", utcnow() + timedelta(hours=3)
        poll_feed(live.factory, feed_id, force=True)
    assert len(hub.requests) == 2 and hub.requests[1]["hub.secret"] != hub.requests[0]["hub.secret"]
    get_settings.cache_clear()
