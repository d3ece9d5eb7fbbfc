"""Sign-up from a publisher's page over real HTTP (DIGEST_EMBED_ORIGINS): a listed Origin
needs no CSRF cookie and gets CORS headers for itself alone; any other Origin is refused;
no Origin needs digest's own CSRF token as before; a filled honeypot does nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from digest import readers
from digest.store.models import ConsentEvent, Subscriber
from tests.support.front_door import FrontDoor
from tests.support.mail import wait_for_mail
from tests.support.queries import count, reader_by_email
from tests.support.stack import Stack, settle
from tests.support.web import clear_rate_limits, csrf_token, h1

pytestmark = pytest.mark.integration

JSON = {"Accept": "application/json"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits(live: Stack) -> None:
    clear_rate_limits(live)


@pytest.fixture
def digest(live: Stack, front_door: FrontDoor) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front_door.base_url, timeout=10, follow_redirects=False) as c:
        yield c


def from_publisher(door: FrontDoor, path: str = "/2026/12/01/an-article.html") -> dict[str, str]:
    """What a browser sends with a form posted from the publisher's article page (the full
    Referer only when the page's referrer policy allows it)."""
    return {"Origin": door.publisher_origin, "Referer": f"{door.publisher_origin}{path}"}


def test_a_listed_origin_signs_up_without_csrf_and_reads_the_json_answer(
        live: Stack, front_door: FrontDoor, digest: httpx.Client) -> None:
    response = digest.post("/subscribe", data={"email": "embed@example.org", "topics": ["science"]},
                           headers={**from_publisher(front_door), **JSON})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "sent"
    assert response.headers["access-control-allow-origin"] == front_door.publisher_origin
    assert "origin" in response.headers["vary"].lower()
    assert "access-control-allow-credentials" not in response.headers
    assert "set-cookie" not in response.headers

    wait_for_mail(live, "embed@example.org")
    subscriber = reader_by_email(live, "embed@example.org")
    assert subscriber is not None and subscriber.consent_source == "embed-snippet-v1"
    with live.factory() as session:
        [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
    assert (event.kind, event.channel, event.form) == ("subscribe", "embed", "embed-snippet-v1")
    assert event.detail is not None
    assert event.detail["page"] == f"{front_door.publisher_origin}/2026/12/01/an-article.html"
    assert event.consent_text == readers.CONSENT_TEXT


def test_without_script_the_reader_lands_on_check_your_inbox_with_a_way_back(
        live: Stack, front_door: FrontDoor, digest: httpx.Client) -> None:
    response = digest.post("/subscribe", data={"email": "nojs@example.org"}, headers=from_publisher(front_door))
    assert response.status_code == 200
    assert h1(response.text) == "Check your inbox"
    assert f'href="{front_door.publisher_origin}/2026/12/01/an-article.html"' in response.text
    # A Referer on another site is not linked to (no open redirect): the listed origin is.
    elsewhere = digest.post("/subscribe", data={"email": "nojs2@example.org"},
                            headers={"Origin": front_door.publisher_origin, "Referer": "https://evil.example/x"})
    assert elsewhere.status_code == 200
    assert "evil.example" not in elsewhere.text
    assert f'href="{front_door.publisher_origin}"' in elsewhere.text
    wait_for_mail(live, "nojs2@example.org")


def test_the_preflight_is_answered_for_a_listed_origin_only(front_door: FrontDoor, digest: httpx.Client) -> None:
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = digest.options("/subscribe", headers={"Origin": front_door.publisher_origin, **asked})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == front_door.publisher_origin
    assert "POST" in ok.headers["access-control-allow-methods"]
    refused = digest.options("/subscribe", headers={"Origin": "https://evil.example", **asked})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "http://localhost"])
def test_any_other_origin_is_refused_even_with_our_csrf_token(
        live: Stack, digest: httpx.Client, origin: str) -> None:
    token = csrf_token(digest.get("/subscribe").text)  # a visitor's own cookie and token
    response = digest.post("/subscribe", data={"csrf_token": token, "email": "foreign@example.org"},
                           headers={"Origin": origin, **JSON})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    settle(live)
    assert reader_by_email(live, "foreign@example.org") is None
    assert live.smtp.by_recipient() == {}


def test_no_origin_or_our_own_still_needs_the_csrf_token(
        live: Stack, front_door: FrontDoor, digest: httpx.Client) -> None:
    assert digest.post("/subscribe", data={"email": "plain@example.org"}).status_code == 403
    for n, origin in enumerate([None, "null", front_door.base_url]):
        token = csrf_token(digest.get("/subscribe").text)
        headers = {"Origin": origin} if origin else {}
        response = digest.post("/subscribe", data={"csrf_token": token, "email": f"own{n}@example.org"},
                               headers=headers)
        assert response.status_code == 200, (origin, response.text)
        assert "access-control-allow-origin" not in response.headers
    wait_for_mail(live, "own2@example.org")
    subscriber = reader_by_email(live, "own0@example.org")
    assert subscriber is not None and subscriber.consent_source == "subscribe-page-v1"


def test_a_filled_honeypot_gets_the_usual_answer_and_nothing_happens(
        live: Stack, front_door: FrontDoor, digest: httpx.Client) -> None:
    bot = digest.post("/subscribe", data={"email": "bot@example.org", "website": "https://spam.example"},
                      headers={**from_publisher(front_door), **JSON})
    person = digest.post("/subscribe", data={"email": "person@example.org", "website": ""},
                         headers={**from_publisher(front_door), **JSON})
    assert bot.status_code == person.status_code == 200
    assert bot.json() == person.json()
    wait_for_mail(live, "person@example.org")
    settle(live)
    assert reader_by_email(live, "bot@example.org") is None
    assert "bot@example.org" not in live.smtp.by_recipient()
    assert count(live, Subscriber) == 1


def test_a_bad_address_from_a_script_is_a_json_400_it_can_read(
        live: Stack, front_door: FrontDoor, digest: httpx.Client) -> None:
    response = digest.post("/subscribe", data={"email": "not an address"},
                           headers={**from_publisher(front_door), **JSON})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.headers["access-control-allow-origin"] == front_door.publisher_origin
    assert count(live, Subscriber) == 0


def test_embed_js_is_ours_small_and_loadable_from_other_sites(digest: httpx.Client) -> None:
    response = digest.get("/embed.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert len(response.content) < 4096
    assert "http" not in response.text.replace("https://DIGEST/embed.js", "")  # loads nothing from elsewhere


def test_the_sign_up_frame_may_be_framed_by_the_listed_origins_only(live: Stack, front_door: FrontDoor) -> None:
    with httpx.Client(base_url=front_door.base_url, timeout=10) as client:
        frame = client.get("/embed/frame", params={"topics": "world"})
        elsewhere = client.get("/subscribe")
        unknown = client.get("/embed/frame", params={"newsletter": "no-such-newsletter"})
        forged = client.post("/subscribe", data={"email": "forged@example.org", "frame_token": "made-up"})
    assert frame.status_code == 200 and 'name="frame_token"' in frame.text
    assert f"frame-ancestors {front_door.publisher_origin}" in frame.headers["content-security-policy"]
    assert "x-frame-options" not in frame.headers
    assert elsewhere.headers["x-frame-options"] == "DENY"  # every other page: never framed
    assert "frame-ancestors 'none'" in elsewhere.headers["content-security-policy"]
    assert unknown.status_code == 404 and "frame-ancestors" in unknown.headers["content-security-policy"]
    assert forged.status_code == 403  # a stamp we did not sign is no stand-in for the CSRF pair
