"""Clicks from a real send: the links the readers received, followed over HTTP against
`digest serve`, counted in Redis, flushed by the worker's task, read back as stats; and
nothing in the database says who clicked."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
import redis
from sqlalchemy import inspect, select, text, update

from digest.mail import click_key, click_prefix
from digest.store import Delivery, Edition, EditionStatus, Story, StoryStatus, Subscriber, utcnow
from tests.support.factories import make_api_token, make_user, seed_readers, seed_stories, send_due_edition
from tests.support.mail import html_part, text_part, wait_for_mail
from tests.support.processes import REPO, free_port, launch_web, stop_web
from tests.support.stack import Stack, settle
from tests.support.web import EDITOR, signed_in
from tests.support.zygote import run_digest

pytestmark = pytest.mark.integration

SECRET = "integration-test-secret-0123456789"  # the stack's DIGEST_SECRET_KEY
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"
LINK = re.compile(r'href="(http[^"]+/c/\d+/\d+/0/[^"/]+/[0-9a-f]+)"')
CLICK_TABLES = {"click_counts": {"edition_id", "story_id", "variant", "clicks", "machine_clicks"},
                "click_uniques": {"edition_id", "story_id", "variant", "unique_clicks"},
                "click_hours": {"edition_id", "hour", "clicks", "machine_clicks"},
                "click_flushes": {"id", "flushed_at"},
                "open_counts": {"edition_id", "variant", "opens", "unique_opens"}}


def links_of(live: Stack, address: str) -> list[str]:
    [received] = wait_for_mail(live, address)
    html, plain = html_part(received.message), text_part(received.message)
    found = LINK.findall(html)
    # The masthead and each story once in the HTML; the text part carries the same story links.
    assert found and len(found) == len(set(found))
    assert set(found[1:]) <= set(re.findall(r"http\S+/c/\S+", plain))
    return found


def story_of(link: str) -> int:
    return int(link.split("/c/", 1)[1].split("/")[1])


def click(link: str, address: str, agent: str = BROWSER, method: str = "GET") -> httpx.Response:
    response = httpx.request(method, link, headers={"User-Agent": agent, "X-Forwarded-For": address},
                             follow_redirects=False, timeout=10)
    return response


def flush(live: Stack) -> None:
    live.client.send_task("digest.flush_clicks")
    settle(live)


def stats(web: str, token: str, edition_id: int) -> dict:  # type: ignore[type-arg]
    response = httpx.get(f"{web}/api/v1/editions/{edition_id}/stats", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_clicks_from_a_real_send_count_people_not_machines_and_not_who(
        live: Stack, web: str, clean_clicks: redis.Redis) -> None:
    seed_stories(live.factory)
    readers = seed_readers(live.factory, 5)
    edition_id = send_due_edition(live)
    links = {address: links_of(live, address) for address in readers}
    ann, bob, scanned, flooded, carol = (links[a] for a in readers)
    with live.factory() as session:
        urls = {row.id: row.url for row in session.execute(select(Story.id, Story.url))}
        nonces = [link.rsplit("/", 1)[1] for found in links.values() for link in found]
        identities = [*readers, *session.scalars(select(Subscriber.token)), *nonces,
                      *(m for m in session.scalars(select(Delivery.message_id)) if m)]
    first = ann[1]
    # Retracted after the send (before its first click: the redirect remembers a story 30 s).
    with live.factory.begin() as session:
        session.execute(update(Story).where(Story.id == story_of(carol[4])).values(status=StoryStatus.RETRACTED))
    time.sleep(2.1)  # past the scanners' window after sending (1 s in the tests, 20 s by default)

    # A person: 302 to the stored story's address.
    answer = click(first, "198.51.100.1")
    assert answer.status_code == 302 and answer.headers["location"] == urls[story_of(first)]
    # Another reader opens the same story twice (one unique copy), and a second story later.
    assert click(bob[1], "198.51.100.2").status_code == 302
    assert click(bob[1], "198.51.100.2").status_code == 302
    # A HEAD, a link preview's agent: redirected, counted as machines.
    head = click(ann[3], "198.51.100.3", method="HEAD")
    assert head.status_code == 302 and head.headers["location"] == urls[story_of(ann[3])]
    assert click(ann[3], "198.51.100.3", agent="Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
                 ).status_code == 302
    # A scanner with a browser's agent opens every link of a copy at once: all machine.
    for link in scanned:
        assert click(link, "203.0.113.50").status_code == 302
    # A story retracted since: the edition's archive page instead.
    answer = click(carol[4], "198.51.100.4")
    assert answer.status_code == 302 and answer.headers["location"] == f"{web}/archive/{edition_id}"

    # Forged, cut short, moved to another edition, unknown edition: 404, no Location.
    edition_part, story_part, _, signature, nonce = first.split("/c/", 1)[1].split("/")
    base = first.split("/c/", 1)[0]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = [f"{base}/c/{edition_part}/{story_part}/0/{flipped}/{nonce}",
              f"{base}/c/{edition_part}/{story_part}/0/{signature[:-2]}/{nonce}",
              f"{base}/c/{int(edition_part) + 1}/{story_part}/0/{signature}/{nonce}",
              f"{base}/c/{edition_part}/{story_of(ann[2])}/0/{signature}/{nonce}",
              f"{base}/c/{edition_part}/{story_part}/1/{signature}/{nonce}",
              click_prefix(base, click_key(SECRET), 987654, int(story_part), 0) + nonce,
              f"{base}/c/{edition_part}/{story_part}/0/{signature}/not-a-nonce",
              f"{base}/c/x{edition_part}/{story_part}/0/{signature}/{nonce}"]
    for link in forged:
        answer = click(link, "198.51.100.9")
        assert answer.status_code == 404 and "location" not in answer.headers, link

    time.sleep(2.1)  # past the burst window: these are people's
    assert click(bob[2], "198.51.100.2").status_code == 302
    masthead = click(carol[0], "198.51.100.4")  # the publisher's site
    assert masthead.status_code == 302 and masthead.headers["location"].startswith("https://")
    time.sleep(3.1)  # the last clicks join the unique count once no burst can undo them

    flush(live)
    token = make_api_token(live, "analyst@example.org", "ops")
    got = stats(web, token, edition_id)
    by_story = {s["id"]: s for s in got["stories"]}
    # People: Ann 1, Bob 2 + 1, Carol 2 (the retracted story, the masthead); 3 copies of 5.
    assert got["sent"] == 5
    assert got["clicks"] == 6
    assert got["machine_clicks"] == 2 + len(scanned)
    assert got["unique_clicks"] == 3 and got["click_rate"] == 0.6
    assert by_story[story_of(first)]["clicks"] == 3 and by_story[story_of(first)]["unique_clicks"] == 2
    assert by_story[story_of(bob[2])]["clicks"] == 1 and by_story[story_of(bob[2])]["unique_clicks"] == 1
    assert by_story[story_of(carol[4])]["clicks"] == 1
    assert by_story[story_of(ann[3])]["clicks"] == 0
    assert by_story[story_of(first)]["url"] == urls[story_of(first)]
    assert got["variants"] == [{"subject": "Today's featured stories", "sent": 5, "clicks": 6, "unique_clicks": 3}]
    # Per hour of the click (all within a minute or two here): the same people and machines.
    assert 1 <= len(got["hours"]) <= 2 and all(h["hour"].endswith(":00:00+00:00") for h in got["hours"])
    assert sum(h["clicks"] for h in got["hours"]) == 6
    assert sum(h["machine_clicks"] for h in got["hours"]) == got["machine_clicks"]
    # The flush is idempotent: again, and the numbers stay.
    flush(live)
    assert stats(web, token, edition_id) == got
    csv = httpx.get(f"{web}/api/v1/editions/{edition_id}/stats.csv", headers={"Authorization": f"Bearer {token}"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[-1] == f"{edition_id},,,,5,6,3,0.6,{got['machine_clicks']}"

    # The same numbers on the command line, and on the editor's page with its CSV.
    cli = run_digest(["editions", "stats", str(edition_id), "--json"], cwd=REPO, env=live.env(), timeout=60)
    assert cli.returncode == 0 and json.loads(cli.stdout) == got, cli.stderr
    missing = run_digest(["editions", "stats", "987654"], cwd=REPO, env=live.env(), timeout=60)
    assert missing.returncode == 1 and missing.stdout == "" and len(missing.stderr.splitlines()) == 1
    assert httpx.get(f"{web}/api/v1/editions/987654/stats", headers={"Authorization": f"Bearer {token}"}
                     ).status_code == 404
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as editor:
        page = editor.get(f"/editor/editions/{edition_id}")
        assert page.status_code == 200
        assert 'data-clicks="6"' in page.text and f'href="/editor/editions/{edition_id}/stats.csv"' in page.text
        assert f'<tr data-story="{story_of(first)}">' in page.text
        # The charts: clicks per story and per hour since sending, each with its table.
        assert 'id="story-clicks"' in page.text and 'id="hour-clicks"' in page.text
        assert editor.get(f"/editor/editions/{edition_id}/stats.csv").text == csv.text

    # A flood from one address: past 60 a minute, every click is a machine's.
    prefix = flooded[1].rsplit("/", 1)[0]
    if time.time() % 60 > 50:  # the limit counts per clock minute: all 65 in one
        time.sleep(61 - time.time() % 60)
    for number in range(65):
        assert click(f"{prefix}/{int(time.time()) - 3600:08x}00000000{number:x}", "192.0.2.77").status_code == 302
    flush(live)
    after = stats(web, token, edition_id)
    assert after["clicks"] == got["clicks"] + 60
    assert after["machine_clicks"] == got["machine_clicks"] + 5

    # What the database holds after clicks: numbers by edition, story and variant (and by
    # edition and hour), nothing else.
    tables = inspect(live.engine)
    for table, columns in CLICK_TABLES.items():
        assert {c["name"] for c in tables.get_columns(table)} == columns
    with live.engine.connect() as conn:
        held = " ".join(str(row) for table in CLICK_TABLES for row in conn.execute(text(f"SELECT * FROM {table}")))
    assert held
    for identity in identities:
        assert identity not in held
    assert "198.51.100" not in held and "192.0.2.77" not in held and "203.0.113" not in held
    # Per-reader history is off (no newsletter offers it, no reader asked): not one row; the
    # links carried no reader (test_click_history_http has the case where both said yes).
    with live.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM click_history")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM click_history_consents")).scalar() == 0
    assert all(re.fullmatch(r"[0-9a-f]+", nonce) for nonce in nonces)
    # Nor does the web server's log: its access log has no line for a click.
    web_log = (REPO / "test-artifacts" / f"web-{live.backend}.log").read_text(errors="replace")
    assert f"/api/v1/editions/{edition_id}/stats" in web_log and f"/c/{edition_id}/" not in web_log
    assert not [nonce for nonce in nonces if nonce in web_log]


def test_a_test_copys_links_redirect_and_are_never_counted(live: Stack, web: str, clean_clicks: redis.Redis) -> None:
    seed_stories(live.factory)
    [reader] = seed_readers(live.factory, 1)
    edition_id = send_due_edition(live)
    token = make_api_token(live, "desk@example.org", "editor")
    sent = httpx.post(f"{web}/api/v1/editions/{edition_id}/test", json={"email": "proof@example.org"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert sent.status_code == 200, sent.text
    [copy] = wait_for_mail(live, "proof@example.org", subject="[TEST] ")
    links = re.findall(r'href="(http[^"]+/c/[^"]+/test)"', html_part(copy.message))
    assert len(links) >= 2
    time.sleep(1.1)
    for link in links:
        assert click(link, "198.51.100.20").status_code == 302
    flush(live)
    got = stats(web, token, edition_id)
    assert got["clicks"] == 0 and got["machine_clicks"] == 0 and got["unique_clicks"] == 0
    # The reader's preferences page says what is kept about clicks.
    with live.factory() as session:
        reader_token = session.scalar(select(Subscriber.token).where(Subscriber.email == reader))
    page = httpx.get(f"{web}/preferences/{reader_token}", timeout=10)
    assert page.status_code == 200
    kept = re.search(r'<p id="clicks-kept">([^<]+)</p>', page.text)
    assert kept and "Nothing that says who clicked" in kept.group(1) and "no tracking pixel" in kept.group(1)


def test_with_redis_down_the_redirect_still_answers(live: Stack, clean_clicks: redis.Redis) -> None:
    seed_stories(live.factory)
    seed_readers(live.factory, 1)
    edition_id = send_due_edition(live)
    with live.factory() as session:
        story_id, url = session.execute(select(Story.id, Story.url).limit(1)).one()
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    log = REPO / "test-artifacts" / f"web-no-redis-{live.backend}.log"
    proc = launch_web(live.env(DIGEST_REDIS_URL=dead_redis, DIGEST_BASE_URL=f"http://127.0.0.1:{port}"), port, log)
    try:
        link = click_prefix(f"http://127.0.0.1:{port}", click_key(SECRET), edition_id, story_id, 0) + \
            f"{int(time.time()) - 3600:08x}00000000aa"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = click(link, "198.51.100.30")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.2)
        assert answer.status_code == 302 and answer.headers["location"] == url
        assert "click not counted, Redis unavailable" in log.read_text(errors="replace")
    finally:
        stop_web(proc)


def test_a_newsletter_that_tags_links_sends_readers_with_utm_parameters(live: Stack, web: str,
                                                                       clean_clicks: redis.Redis) -> None:
    seed_stories(live.factory)
    token = make_api_token(live, "desk@example.org", "editor")
    auth = {"Authorization": f"Bearer {token}"}
    made = httpx.post(f"{web}/api/v1/newsletters", headers=auth, timeout=10, json={
        "slug": "morning-brief", "name": "Morning Brief", "cron": "0 7 * * *", "timezone": "UTC"})
    assert made.status_code == 201, made.text
    newsletter = made.json()
    assert newsletter["utm_tags"] is False
    tagged = httpx.patch(f"{web}/api/v1/newsletters/{newsletter['id']}", headers=auth, json={"utm_tags": True},
                         timeout=10)
    assert tagged.status_code == 200 and tagged.json()["utm_tags"] is True
    # Engagement order: off by default, on through the API, bad values refused by field.
    assert newsletter["engagement_order"] is False
    ordered = httpx.patch(f"{web}/api/v1/newsletters/{newsletter['id']}", headers=auth,
                          json={"engagement_order": True}, timeout=10)
    assert ordered.status_code == 200 and ordered.json()["engagement_order"] is True
    refused = httpx.patch(f"{web}/api/v1/newsletters/{newsletter['id']}", headers=auth,
                          json={"engagement_order": [1]}, timeout=10)
    assert refused.status_code == 422 and "engagement_order" in refused.text
    with live.factory.begin() as session:
        story_id, url = session.execute(select(Story.id, Story.url).limit(1)).one()
        edition = Edition(subject="Tagged", send_at=utcnow(), status=EditionStatus.SENT,
                          newsletter_id=newsletter["id"])
        session.add(edition)
    link = click_prefix(web, click_key(SECRET), edition.id, story_id, 0) + f"{int(time.time()) - 60:08x}0000000001"
    answer = click(link, "198.51.100.40")
    assert answer.status_code == 302
    assert answer.headers["location"] == (
        f"{url}{'&' if '?' in url else '?'}utm_source=digest&utm_medium=email&utm_campaign={newsletter['slug']}")
    # The preview says why its stories come in their order (no edition of it sent before).
    preview = httpx.get(f"{web}/api/v1/editions/{edition.id}/preview", headers=auth, timeout=30)
    assert preview.status_code == 200 and preview.json()["order"].startswith("No sent edition of this newsletter")
