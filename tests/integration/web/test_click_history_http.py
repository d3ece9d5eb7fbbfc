"""Per-reader click history and the open pixel, from a real send: both off by default; the
history only where the newsletter offers it AND the reader said yes on their preferences
page; people's clicks only; in the reader's export; gone when they say no or are erased.
The open pixel only where a newsletter turned it on, counted without any reader."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import httpx
import pytest
import redis
from sqlalchemy import select, text

from digest.store import ClickHistory, ClickHistoryConsent, ConsentEvent, NewsletterSubscription, Subscriber
from tests.support.factories import make_api_token, make_user, seed_readers, seed_stories, send_due_edition
from tests.support.mail import html_part, text_part, wait_for_mail
from tests.support.processes import REPO
from tests.support.stack import Stack, settle
from tests.support.web import EDITOR, csrf_token, signed_in
from tests.support.zygote import run_digest

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
LINK = re.compile(r'href="(http[^"]+/c/\d+/\d+/0/[^"/]+/[0-9a-z]+)"')
READER_PART = re.compile(r"^[0-9a-f]{17,32}r([0-9a-f]+)s[0-9a-f]{24}$")
PIXEL = re.compile(r'<img src="(http[^"]+/o/(\d+)/0/[^"/]+/([^"/]+))" width="1" height="1"')
REMEMBER = "Remember which stories I click"


def newsletter(web: str, auth: dict[str, str], slug: str, **options: bool) -> dict:  # type: ignore[type-arg]
    made = httpx.post(f"{web}/api/v1/newsletters", headers=auth, timeout=10, json={
        "slug": slug, "name": slug.replace("-", " ").title(), "cron": "0 7 * * *", "timezone": "UTC"})
    assert made.status_code == 201, made.text
    assert made.json()["click_history"] is False and made.json()["open_pixel"] is False  # off by default
    if not options:
        return made.json()  # type: ignore[no-any-return]
    changed = httpx.patch(f"{web}/api/v1/newsletters/{made.json()['id']}", headers=auth, json=options, timeout=10)
    assert changed.status_code == 200, changed.text
    assert all(changed.json()[name] is value for name, value in options.items())
    return changed.json()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Reader:
    id: int
    email: str
    token: str


def subscribe(live: Stack, addresses: list[str], newsletter_id: int) -> dict[str, Reader]:
    with live.factory.begin() as session:
        found = {row.email: Reader(row.id, row.email, row.token) for row in session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.token).where(Subscriber.email.in_(addresses)))}
        session.add_all(NewsletterSubscription(newsletter_id=newsletter_id, subscriber_id=r.id) for r in found.values())
    return found


def links_of(live: Stack, address: str) -> list[str]:
    [received] = wait_for_mail(live, address)
    html = html_part(received.message)
    found = LINK.findall(html)
    assert found and len(found) == len(set(found))
    assert set(found[1:]) <= set(re.findall(r"http\S+/c/\S+", text_part(received.message)))
    return found


def story_of(link: str) -> int:
    return int(link.split("/c/", 1)[1].split("/")[1])


def click(link: str, address: str, agent: str = BROWSER, method: str = "GET") -> httpx.Response:
    return httpx.request(method, link, headers={"User-Agent": agent, "X-Forwarded-For": address},
                         follow_redirects=False, timeout=10)


def flush(live: Stack) -> None:
    live.client.send_task("digest.flush_clicks")
    settle(live)


def remembered(live: Stack) -> set[tuple[int, int, int]]:
    with live.factory() as session:
        return {(row[0], row[1], row[2]) for row in session.execute(
            select(ClickHistory.subscriber_id, ClickHistory.edition_id, ClickHistory.story_id))}


def save_preferences(web: str, token: str, history: list[int]) -> httpx.Response:
    with httpx.Client(base_url=web, timeout=10, follow_redirects=False) as reader:
        page = reader.get(f"/preferences/{token}")
        assert page.status_code == 200
        return reader.post(f"/preferences/{token}", data={
            "csrf_token": csrf_token(page.text), "name": "Reader", "frequency": "every", "pause_weeks": "0",
            "timezone": "", "click_history_offered": "1", "click_history": [str(n) for n in history]})


def test_click_history_only_with_the_option_and_consent_people_only_exported_and_erased(
        live: Stack, web: str, clean_clicks: redis.Redis) -> None:
    seed_stories(live.factory)
    auth = {"Authorization": f"Bearer {make_api_token(live, 'desk@example.org', 'editor')}"}
    offered = newsletter(web, auth, "with-history", click_history=True)
    addresses = seed_readers(live.factory, 3, prefix="hist") + seed_readers(live.factory, 1, prefix="elsewhere")
    subscribed = subscribe(live, addresses[:3], offered["id"])
    ann, bob, carol = (subscribed[a] for a in addresses[:3])
    # Without a newsletter that offers it, the box is not there; with one, it is, unticked.
    with live.factory() as session:
        dan_token = session.scalar(select(Subscriber.token).where(Subscriber.email == addresses[3]))
    assert REMEMBER not in httpx.get(f"{web}/preferences/{dan_token}", timeout=10).text
    page = httpx.get(f"{web}/preferences/{bob.token}", timeout=10).text
    assert REMEMBER in page and f'name="click_history" value="{offered["id"]}" aria' in page

    # Ann and Carol say yes; Bob does not: a consent event each, and the consent in force.
    for reader in (ann, carol):
        saved = save_preferences(web, reader.token, [offered["id"]])
        assert saved.status_code == 200 and "Saved." in saved.text
        assert f'name="click_history" value="{offered["id"]}" checked' in saved.text
    with live.factory() as session:
        assert set(session.scalars(select(ClickHistoryConsent.subscriber_id))) == {ann.id, carol.id}
        event = session.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == ann.id,
                                                           ConsentEvent.kind == "click-history")).one()
        assert event.channel == "preferences" and event.detail == {
            "newsletter_id": offered["id"], "remember_clicks": True, "text": REMEMBER}

    edition_id = send_due_edition(live, newsletter_id=offered["id"])
    links = {reader.id: links_of(live, reader.email) for reader in (ann, bob, carol)}
    # Only a consenting reader's links name them, each with a tag; Bob's end with the bare nonce.
    for reader in (ann, carol):
        parts = {link.rsplit("/", 1)[1] for link in links[reader.id]}
        assert len(parts) == 1 and int(READER_PART.match(parts.pop()).group(1), 16) == reader.id  # type: ignore[union-attr]
    assert all(re.fullmatch(r"[0-9a-f]{17,32}", link.rsplit("/", 1)[1]) for link in links[bob.id])

    # Another reader's id under Ann's tag, or a changed tag: 404, no redirect, nothing kept.
    first = links[ann.id][1]
    head, tag = first.rsplit("s", 1)
    as_bob = re.sub(r"r[0-9a-f]+$", f"r{bob.id:x}", head) + "s" + tag
    for forged in (as_bob, head + "s" + ("0" if tag[0] != "0" else "1") + tag[1:], first[:-1]):
        answer = click(forged, "198.51.100.60")
        assert answer.status_code == 404 and "location" not in answer.headers, forged

    time.sleep(2.1)  # past the scanners' window after sending (1 s in the tests)
    assert click(first, "198.51.100.61").status_code == 302                  # Ann, a person: kept
    second = links[ann.id][2]
    assert click(second, "198.51.100.62", method="HEAD").status_code == 302  # machines: not kept
    assert click(second, "198.51.100.62", agent="Slackbot-LinkExpanding 1.0").status_code == 302
    assert click(links[bob.id][1], "198.51.100.63").status_code == 302       # no consent: counted only
    # Carol's copy opened whole within a second by a scanner with a browser's agent: a burst.
    assert click(links[carol.id][1], "198.51.100.64").status_code == 302
    assert click(links[carol.id][2], "198.51.100.64").status_code == 302
    time.sleep(2.1)  # past the burst window
    assert click(links[carol.id][3], "198.51.100.65").status_code == 302    # Carol, a person: kept
    assert click(links[ann.id][0], "198.51.100.61").status_code == 302       # the masthead: not a story
    time.sleep(3.1)  # until no burst can undo the last click
    flush(live)
    assert remembered(live) == {(ann.id, edition_id, story_of(first)), (carol.id, edition_id, story_of(links[carol.id][3]))}
    assert clean_clicks.zcard("digest:clk:hist") == 0 and clean_clicks.zcard("digest:clk:hist:ready") == 0
    flush(live)  # again: nothing twice
    assert len(remembered(live)) == 2
    token = make_api_token(live, "analyst@example.org", "ops")
    got = httpx.get(f"{web}/api/v1/editions/{edition_id}/stats", headers={"Authorization": f"Bearer {token}"}).json()
    assert got["clicks"] == 4 and got["machine_clicks"] == 4  # the counts go on as before
    assert got["opens"] is None and got["unique_opens"] is None  # no pixel in this newsletter

    # Bob (the option on, no consent): nothing in any click table says he clicked.
    with live.engine.connect() as conn:
        held = " ".join(str(row) for table in ("click_counts", "click_uniques", "click_flushes", "click_history")
                        for row in conn.execute(text(f"SELECT * FROM {table}")))
    bob_nonce = links[bob.id][1].rsplit("/", 1)[1]
    assert bob_nonce not in held and bob.email not in held and bob.token not in held
    assert not [row for row in remembered(live) if row[0] == bob.id]

    # Ann's export lists her history, with the story; Bob's has none.
    export = httpx.get(f"{web}/preferences/{ann.token}/data.json", timeout=10).json()
    [kept] = export["click_history"]
    assert kept["edition_id"] == edition_id and kept["story_id"] == story_of(first) and kept["url"].startswith("http")
    assert kept["clicked_at"]
    assert httpx.get(f"{web}/preferences/{bob.token}/data.json", timeout=10).json()["click_history"] == []

    # Carol asks to be forgotten: her history and consent go with her.
    with httpx.Client(base_url=web, timeout=10) as reader:
        page = reader.get(f"/preferences/{carol.token}")
        erased = reader.post(f"/preferences/{carol.token}/erase",
                             data={"csrf_token": csrf_token(page.text), "confirm": "yes"})
    assert erased.status_code == 200
    assert remembered(live) == {(ann.id, edition_id, story_of(first))}

    # Ann says no: her history is deleted at once, the no is a consent event, and a later
    # click on her old links (they still name her) is not kept.
    saved = save_preferences(web, ann.token, [])
    assert saved.status_code == 200 and f'name="click_history" value="{offered["id"]}" aria' in saved.text
    assert remembered(live) == set()
    with live.factory() as session:
        assert set(session.scalars(select(ClickHistoryConsent.subscriber_id))) == set()
        kinds = [e.detail["remember_clicks"] for e in session.scalars(  # type: ignore[index]
            select(ConsentEvent).where(ConsentEvent.subscriber_id == ann.id, ConsentEvent.kind == "click-history")
            .order_by(ConsentEvent.id))]
    assert kinds == [True, False]
    assert click(links[ann.id][3], "198.51.100.66").status_code == 302
    time.sleep(3.1)
    flush(live)
    assert remembered(live) == set()
    assert httpx.get(f"{web}/preferences/{ann.token}/data.json", timeout=10).json()["click_history"] == []


def test_the_open_pixel_only_where_turned_on_counted_without_readers(
        live: Stack, web: str, clean_clicks: redis.Redis) -> None:
    seed_stories(live.factory)
    auth = {"Authorization": f"Bearer {make_api_token(live, 'desk@example.org', 'editor')}"}
    plain = newsletter(web, auth, "no-pixel")
    pixel = newsletter(web, auth, "with-pixel")
    # Turned on from the command line, as from the API or the editor's page.
    cli = run_digest(["newsletters", "edit", "with-pixel", "--open-pixel", "--json"], cwd=REPO, env=live.env(),
                     timeout=60)
    assert cli.returncode == 0 and json.loads(cli.stdout)["open_pixel"] is True, cli.stderr
    addresses = seed_readers(live.factory, 3, prefix="opens")
    subscribe(live, addresses[:2], pixel["id"])
    subscribe(live, addresses[2:], plain["id"])

    plain_edition = send_due_edition(live, newsletter_id=plain["id"])
    [received] = wait_for_mail(live, addresses[2])
    assert "/o/" not in html_part(received.message)  # off: no image at all
    pixel_edition = send_due_edition(live, newsletter_id=pixel["id"])
    pixels = []
    for address in addresses[:2]:
        [received] = wait_for_mail(live, address)
        html = html_part(received.message)
        [(url, edition, nonce)] = PIXEL.findall(html)
        assert int(edition) == pixel_edition and re.fullmatch(r"[0-9a-f]{17,32}", nonce)  # the copy, not the reader
        assert "/o/" not in text_part(received.message)
        pixels.append(url)

    for url in (pixels[0], pixels[0], pixels[1]):
        image = httpx.get(url, headers={"User-Agent": BROWSER}, timeout=10)
        assert image.status_code == 200 and image.headers["content-type"] == "image/gif"
        assert image.content.startswith(b"GIF89a") and image.headers["cache-control"].startswith("no-store")
    assert httpx.head(pixels[1], timeout=10).status_code == 200  # fetched no image: no open
    base, signature, nonce = pixels[0].rsplit("/", 2)
    other = "B" if signature.endswith("A") else "A"  # a changed signature, whatever it ended with
    for forged in (f"{base}/{signature[:-1]}{other}/{nonce}", f"{base}/{signature}/not-a-nonce",
                   pixels[0].replace(f"/o/{pixel_edition}/", f"/o/{plain_edition}/")):
        assert httpx.get(forged, timeout=10).status_code == 404
    flush(live)
    token = make_api_token(live, "analyst@example.org", "ops")

    def stats(edition_id: int) -> dict:  # type: ignore[type-arg]
        return httpx.get(f"{web}/api/v1/editions/{edition_id}/stats",  # type: ignore[no-any-return]
                         headers={"Authorization": f"Bearer {token}"}).json()

    got = stats(pixel_edition)
    assert got["opens"] == 3 and got["unique_opens"] == 2 and got["clicks"] == 0
    flush(live)
    assert stats(pixel_edition) == got  # written whole: a second flush changes nothing
    assert stats(plain_edition)["opens"] is None
    with live.engine.connect() as conn:
        held = " ".join(str(row) for row in conn.execute(text("SELECT * FROM open_counts")))
    assert held and all(n not in held for n in (nonce, *addresses))
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as editor:
        page = editor.get(f"/editor/editions/{pixel_edition}").text
        assert 'data-opens="3"' in page and "Apple Mail loads every image" in page
        assert 'id="opens"' not in editor.get(f"/editor/editions/{plain_edition}").text
    # The readers are told: those of the newsletter with the pixel, and no one else.
    with live.factory() as session:
        tokens = {row.email: row.token for row in session.execute(select(Subscriber.email, Subscriber.token))}
    told = httpx.get(f"{web}/preferences/{tokens[addresses[0]]}", timeout=10).text
    assert "With Pixel counts opens with a tiny image" in told and "no tracking pixel" not in told
    assert "no tracking pixel" in httpx.get(f"{web}/preferences/{tokens[addresses[2]]}", timeout=10).text
