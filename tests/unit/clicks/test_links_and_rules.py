"""Click links and the rules that tell people from machines: pure functions."""

from __future__ import annotations

import logging
import os
import time

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from digest.clicks import Click, ClickTargets, first_look, is_machine_agent, with_utm
from digest.mail import NONCE_PATTERN, TEST_NONCE, click_key, click_prefix, new_click_nonce, nonce_sent_at, valid_click
from digest.observe import ClickPrivacy
from digest.store import Edition, EditionStatus, Newsletter, Story, StoryStatus, utcnow

KEY = click_key("unit-test-secret-0123456789")
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


def test_a_signature_covers_edition_story_and_variant_and_nothing_else_passes() -> None:
    link = click_prefix("https://d.example", KEY, 7, 42, 0)
    signature = link.rstrip("/").rsplit("/", 1)[1]
    assert link == f"https://d.example/c/7/42/0/{signature}/"
    assert valid_click(KEY, 7, 42, 0, signature)
    for edition, story, variant in ((8, 42, 0), (7, 43, 0), (7, 42, 1)):
        assert not valid_click(KEY, edition, story, variant, signature)
    assert not valid_click(KEY, 7, 42, 0, signature[:-1])
    assert not valid_click(KEY, 7, 42, 0, signature + "A")
    assert not valid_click(KEY, 7, 42, 0, "é" * len(signature))
    assert not valid_click(click_key("another-secret-0123456789"), 7, 42, 0, signature)


def test_nonces_are_unique_carry_the_send_time_and_match_the_pattern() -> None:
    nonces = [new_click_nonce() for _ in range(1000)]
    assert len(set(nonces)) == 1000
    assert all(NONCE_PATTERN.match(n) for n in nonces)
    assert abs(nonce_sent_at(nonces[0]) - time.time()) < 2  # type: ignore[operator]
    assert nonce_sent_at(TEST_NONCE) is None and NONCE_PATTERN.match(TEST_NONCE)
    assert not NONCE_PATTERN.match("../../etc") and not NONCE_PATTERN.match("")


@pytest.mark.parametrize("agent", [
    None, "", "  ", "Mozilla/5.0 (compatible; BingPreview/1.0b)", "Slackbot-LinkExpanding 1.0",
    "facebookexternalhit/1.1", "python-httpx/0.27.0", "curl/8.5.0", "Mozilla/5.0 HeadlessChrome/120.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)", "Mimecast-URL-Protect",
])
def test_machine_agents(agent: str | None) -> None:
    assert is_machine_agent(agent)


def test_browsers_are_people() -> None:
    assert not is_machine_agent(SAFARI)
    assert not is_machine_agent("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")


def click(nonce: str, method: str = "GET", agent: str | None = SAFARI) -> Click:
    return Click(edition_id=1, story_id=2, variant=0, nonce=nonce, method=method, user_agent=agent, address="x")


def test_first_look() -> None:
    now = 1_800_000_000
    old = f"{now - 3600:08x}0123abcd1"
    assert first_look(click(old), now, 20) == "human"
    assert first_look(click(old, method="HEAD"), now, 20) == "machine"
    assert first_look(click(old, agent="Proofpoint URL Defense"), now, 20) == "machine"
    assert first_look(click(f"{now - 5:08x}0123abcd1"), now, 20) == "machine"  # seconds after sending
    assert first_look(click(f"{now - 25:08x}0123abcd1"), now, 20) == "human"
    assert first_look(click(TEST_NONCE), now, 20) == "test"


def test_utm_tags_replace_any_the_story_had() -> None:
    assert with_utm("https://n.example/a?x=1&utm_source=rss#top", "morning") == (
        "https://n.example/a?x=1&utm_source=digest&utm_medium=email&utm_campaign=morning#top")


def test_targets_come_from_the_store(engine: Engine) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        tagged = Newsletter(slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                            subject_template="x", utm_tags=True)
        plain = Newsletter(slug="evening", name="Evening", cron="0 19 * * *", timezone="UTC", subject_template="x")
        session.add_all([tagged, plain])
        session.flush()
        editions = [Edition(subject="s", send_at=utcnow(), status=EditionStatus.SENT, newsletter_id=n.id)
                    for n in (tagged, plain)]
        live = Story(url="https://n.example/live", title="Live", published_at=utcnow())
        gone = Story(url="https://n.example/gone", title="Gone", published_at=utcnow(), status=StoryStatus.RETRACTED)
        session.add_all([*editions, live, gone])
    targets = ClickTargets(factory, "https://d.example", "https://n.example")
    assert targets.target(editions[0].id, live.id) == (
        "https://n.example/live?utm_source=digest&utm_medium=email&utm_campaign=morning")
    assert targets.target(editions[1].id, live.id) == "https://n.example/live"
    assert targets.target(editions[1].id, gone.id) == f"https://d.example/archive/{editions[1].id}"
    assert targets.target(editions[1].id, 987654) == f"https://d.example/archive/{editions[1].id}"
    assert targets.target(editions[0].id, 0) == "https://n.example"  # the masthead: never tagged
    assert targets.target(987654, live.id) is None


def test_the_access_log_keeps_no_line_for_a_click() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("198.51.100.7:5123", "GET", "/c/1/2/0/abcdef/6b0f923295b370711", "1.1", 302), None)
    assert not ClickPrivacy().filter(record)
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                              ("198.51.100.7:5123", "GET", "/archive/1", "1.1", 200), None)
    assert ClickPrivacy().filter(other)


def test_a_forked_process_makes_nonces_of_its_own() -> None:
    """Celery's prefork children are forked after digest.mail is imported: each must not
    repeat its siblings' nonces (a copy would count as another's in the unique count)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its nonce, then out at once
        os.write(write, new_click_nonce().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    mine = new_click_nonce()
    assert child[8:16] != mine[8:16]  # the process's prefix
