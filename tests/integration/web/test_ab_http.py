"""Subject A/B tests through the real stack: an edition created over the API with a second
subject, released by the worker, the test copies received by aiosmtpd, their links followed
over HTTP against `digest serve`, the decision taken by the worker's task and the rest sent;
every reader exactly one copy, its subject matching its delivery's variant and its links.

The worker counts a test's wait in seconds (DIGEST_AB_WAIT_UNIT_SECONDS=1 in the stack), so
"12 minutes" is 12 s; everything else is as in production."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import redis
from sqlalchemy import func, select

from digest.store import AbTest, AuditEntry, Delivery, DeliveryStatus, Edition, Subscriber, utcnow
from tests.support.factories import make_api_token, make_user, seed_readers, seed_stories
from tests.support.mail import html_part, text_part
from tests.support.processes import REPO
from tests.support.samples import SAMPLE_WINDOW_HOURS
from tests.support.stack import Stack, settle
from tests.support.web import EDITOR, signed_in
from tests.support.zygote import run_digest

pytestmark = pytest.mark.integration

FIRST, SECOND = "Morning digest: five stories", "You will want to read these five"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
LINK = re.compile(r'href="(http[^"]+/c/(\d+)/(\d+)/(\d+)/[^"/]+/[0-9a-f]+)"')


@pytest.fixture
def api(live: Stack, web: str) -> Iterator[httpx.Client]:
    client = redis.Redis.from_url(live.broker_url)
    keys = list(client.scan_iter("digest:clk:*"))
    if keys:
        client.delete(*keys)
    client.close()
    token = make_api_token(live, "tester@example.org", "editor")
    with httpx.Client(base_url=f"{web}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        yield http


def create(api: httpx.Client, **ab: object) -> int:
    answer = api.post("/editions", json={"subject": FIRST, "draft": False, "max_stories": 5,
                                         "window_hours": SAMPLE_WINDOW_HOURS, **ab})
    assert answer.status_code == 201, answer.text
    assert answer.json()["ab"]["alternative"] == ab["ab_subject"]
    return int(answer.json()["id"])


def copies(live: Stack) -> dict[str, list[tuple[str, str, list[tuple[int, int]]]]]:
    """Per reader, each copy received: (subject, html, [(story, variant) of every click link])."""
    got: dict[str, list[tuple[str, str, list[tuple[int, int]]]]] = {}
    for address, received in live.smtp.by_recipient().items():
        for one in received:
            message = one.message
            html = html_part(message)
            links = [(int(story), int(variant)) for _, _, story, variant in LINK.findall(html)]
            assert links and set(re.findall(r"/c/\d+/\d+/(\d+)/", text_part(message))) <= {str(v) for _, v in links}
            got.setdefault(address, []).append((str(message["Subject"]), html, links))
    return got


def wait_for_copies(live: Stack, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(live.smtp.messages) < count:
        assert time.monotonic() < deadline, f"{len(live.smtp.messages)} messages of {count}"
        time.sleep(0.1)


def variants(live: Stack, edition_id: int) -> dict[str, int | None]:
    """Each reader's delivery's variant, by address."""
    with live.factory() as session:
        return {email: variant for email, variant in session.execute(
            select(Subscriber.email, Delivery.variant).join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.edition_id == edition_id))}


def click(web_link: str, address: str) -> None:
    answer = httpx.get(web_link, headers={"User-Agent": BROWSER, "X-Forwarded-For": address},
                       follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text


def wait_out(live: Stack, edition_id: int) -> None:
    """Until the test's decision is due (and a little)."""
    with live.factory() as session:
        due = session.get_one(AbTest, edition_id).decide_at
    assert due is not None
    time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.5)


def decide(live: Stack) -> None:
    live.client.send_task("digest.decide_ab_tests")
    settle(live)


def test_people_clicking_the_second_subject_send_it_to_the_rest(live: Stack, web: str, api: httpx.Client) -> None:
    seed_stories(live.factory)
    readers = seed_readers(live.factory, 300)
    edition_id = create(api, ab_subject=SECOND, ab_share=20, ab_wait=12)

    # The test: 20 % of 300, 30 with each subject; the other 240 wait in the database.
    wait_for_copies(live, 60)
    time.sleep(1)
    assert len(live.smtp.messages) == 60
    held = variants(live, edition_id)
    assert Counter(held.values()) == {None: 240, 1: 30, 2: 30}
    test = copies(live)
    for address, [(subject, _, links)] in test.items():
        # The subject each copy carried is its delivery's, and its links say so.
        assert subject == {1: FIRST, 2: SECOND}[held[address]]  # type: ignore[index]
        assert {variant for _, variant in links} == {held[address]}
    with live.factory() as session:
        assert session.scalar(select(Edition.status).where(Edition.id == edition_id)).value == "sending"

    # People open a story in 16 of the 30 copies with the second subject (past the scanners'
    # window); nobody in the first subject's.
    time.sleep(1.2)
    second = [address for address, [(subject, _, _)] in test.items() if subject == SECOND]
    for number, address in enumerate(second[:16]):
        link = LINK.findall(test[address][0][1])[1][0]
        assert f"/{edition_id}/" in link and "/2/" in link.split(f"/c/{edition_id}/", 1)[1]
        click(link, f"198.51.100.{number + 1}")
    # Before the wait is over the decision does not come, however often beat asks.
    decide(live)
    decide(live)
    assert len(live.smtp.messages) == 60
    with live.factory() as session:
        assert session.get(AbTest, edition_id).decided_at is None  # type: ignore[union-attr]

    # After it, two runs at once: one decision, the rest get the second subject, once each.
    wait_out(live, edition_id)
    live.client.send_task("digest.decide_ab_tests")
    decide(live)
    live.wait_for_edition(edition_id)
    wait_for_copies(live, 300)
    settle(live)
    got = copies(live)
    assert sorted(got) == sorted(readers) and all(len(one) == 1 for one in got.values())
    # Every copy its own nonce (the worker's two processes too), or copies would count as one.
    assert len({LINK.findall(html)[1][0].rsplit("/", 1)[1] for [(_, html, _)] in got.values()}) == 300
    final = variants(live, edition_id)
    assert Counter(final.values()) == {1: 30, 2: 270}
    for address, [(subject, _, links)] in got.items():
        assert subject == {1: FIRST, 2: SECOND}[final[address]]  # type: ignore[index]
        assert {variant for _, variant in links} == {final[address]}
    with live.factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == edition_id, Delivery.status == DeliveryStatus.SENT)) == 300
        decisions = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "edition.ab-decide")))
    assert len(decisions) == 1 and decisions[0].actor == "system"
    assert decisions[0].detail["winner_variant"] == 2 and decisions[0].detail["rest"] == 240

    # The decision, its numbers and its reason: in the API's stats, on the command line and
    # on the edition's page.
    stats = api.get(f"/editions/{edition_id}/stats").json()
    test_stats = stats["ab"]
    assert (test_stats["subject"], test_stats["alternative"], test_stats["share"], test_stats["wait_minutes"]) == (
        FIRST, SECOND, 20, 12)
    assert test_stats["winner_variant"] == 2 and test_stats["reason_code"] == "higher_click_rate"
    # Unique clicking copies are a HyperLogLog's estimate: 16, or one off now and then.
    unique = test_stats["test"][1]["unique_clicks"]
    assert 15 <= unique <= 17, test_stats
    assert test_stats["decided_at"] and f"({unique} of 30) against 0.0% (0 of 30)" in test_stats["reason"]
    assert [(t["sent"], t["clicks"], t["unique_clicks"]) for t in test_stats["test"]] == [(30, 0, 0),
                                                                                       (30, 16, unique)]
    assert stats["variants"] == [{"subject": FIRST, "sent": 30, "clicks": 0, "unique_clicks": 0},
                                 {"subject": SECOND, "sent": 270, "clicks": 16, "unique_clicks": unique}]
    assert stats["sent"] == 300 and stats["clicks"] == 16
    cli = run_digest(["editions", "stats", str(edition_id), "--json"], cwd=REPO, env=live.env(), timeout=60)
    assert cli.returncode == 0 and json.loads(cli.stdout) == stats, cli.stderr
    make_user(live, EDITOR, "editor")
    with signed_in(web, EDITOR, next_path="/editor") as editor:
        page = editor.get(f"/editor/editions/{edition_id}").text
    assert 'data-ab-decision="higher_click_rate"' in page and 'data-winner="2"' in page
    assert "Subject 2 went to the rest" in page and SECOND in page


def test_too_few_clicks_send_the_first_subject_and_say_so(live: Stack, web: str, api: httpx.Client) -> None:
    seed_stories(live.factory)
    readers = seed_readers(live.factory, 40)
    edition_id = create(api, ab_subject=SECOND, ab_share=50, ab_wait=6)
    wait_for_copies(live, 20)
    time.sleep(1.2)
    test = copies(live)
    second = [address for address, [(subject, _, _)] in test.items() if subject == SECOND]
    for number, address in enumerate(second[:3]):  # 3 people's clicks: too few to tell
        click(LINK.findall(test[address][0][1])[1][0], f"198.51.100.{number + 1}")
    wait_out(live, edition_id)
    decide(live)
    live.wait_for_edition(edition_id)
    wait_for_copies(live, 40)
    settle(live)
    got = copies(live)
    assert sorted(got) == sorted(readers) and all(len(one) == 1 for one in got.values())
    assert Counter(variants(live, edition_id).values()) == {1: 30, 2: 10}
    stats = api.get(f"/editions/{edition_id}/stats").json()
    assert stats["ab"]["winner_variant"] == 1 and stats["ab"]["reason_code"] == "too_few_clicks"
    assert stats["ab"]["reason"].startswith("too few clicks to tell: 3 human clicks")


def test_pause_in_the_wait_and_cancel_in_the_test_keep_every_guarantee(live: Stack, web: str,
                                                                      api: httpx.Client) -> None:
    seed_stories(live.factory)
    readers = seed_readers(live.factory, 60)
    paused = create(api, ab_subject=SECOND, ab_share=20, ab_wait=4)
    wait_for_copies(live, 12)
    assert api.post(f"/editions/{paused}/pause").status_code == 200
    wait_out(live, paused)
    # Paused: the wait is over, but nothing is decided and nothing more goes out.
    decide(live)
    live.client.send_task("digest.sweep")
    settle(live)
    with live.factory() as session:
        assert session.get_one(AbTest, paused).decided_at is None
    assert len(live.smtp.messages) == 12 and Counter(variants(live, paused).values())[None] == 48
    # Resumed: the decision comes at the next tick, and the rest go, each reader once.
    assert api.post(f"/editions/{paused}/resume").status_code == 200
    decide(live)
    live.wait_for_edition(paused)
    wait_for_copies(live, 60)
    settle(live)
    got = copies(live)
    assert sorted(got) == sorted(readers) and all(len(one) == 1 for one in got.values())
    assert api.get(f"/editions/{paused}/stats").json()["ab"]["reason_code"] == "too_few_clicks"

    # Cancelled while its test copies go out: the held rows are skipped, the decision never
    # comes, nothing more is sent; sending to the missing later decides and sends the rest.
    live.smtp.clear()
    cancelled = create(api, ab_subject=SECOND, ab_share=50, ab_wait=3)
    wait_for_copies(live, 1)
    assert api.post(f"/editions/{cancelled}/cancel").status_code == 200
    settle(live)
    sent_in_test = len(live.smtp.messages)
    wait_out(live, cancelled)
    decide(live)
    live.client.send_task("digest.sweep")
    settle(live)
    assert len(live.smtp.messages) == sent_in_test
    with live.factory() as session:
        assert session.get_one(AbTest, cancelled).decided_at is None
        assert session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.edition_id == cancelled, Delivery.status == DeliveryStatus.QUEUED)) == 0
    ops = make_api_token(live, "ops@example.org", "ops")
    answer = api.post(f"/editions/{cancelled}/send-missing", headers={"Authorization": f"Bearer {ops}"})
    assert answer.status_code == 200, answer.text
    decide(live)
    live.wait_for_edition(cancelled)
    wait_for_copies(live, 60)
    settle(live)
    got = copies(live)
    assert sorted(got) == sorted(readers) and all(len(one) == 1 for one in got.values())
    assert None not in variants(live, cancelled).values()


def test_bad_tests_are_refused_by_field(live: Stack, web: str, api: httpx.Client) -> None:
    for body, field in (({"ab_subject": FIRST}, "ab_subject"), ({"ab_subject": SECOND, "ab_share": 51}, "ab_share"),
                        ({"ab_subject": SECOND, "ab_share": 0}, "ab_share"),
                        ({"ab_subject": SECOND, "ab_wait": 1441}, "ab_wait"), ({"ab_share": 10}, "ab_subject")):
        answer = api.post("/editions", json={"subject": FIRST, **body})
        assert answer.status_code == 422 and field in answer.json()["fields"], (body, answer.text)
    draft = api.post("/editions", json={"subject": FIRST}).json()["id"]
    assert api.patch(f"/editions/{draft}", json={"ab_subject": SECOND, "ab_wait": 0}).status_code == 422
    changed = api.patch(f"/editions/{draft}", json={"ab_subject": SECOND, "ab_wait": 30})
    assert changed.status_code == 200 and changed.json()["ab"]["wait_minutes"] == 30
    assert changed.json()["ab"]["share"] == 20
    assert api.patch(f"/editions/{draft}", json={"subject": SECOND}).status_code == 400
    assert api.patch(f"/editions/{draft}", json={"ab_subject": None}).json()["ab"] is None
    cli = run_digest(["editions", "create", "--subject", FIRST, "--ab-subject", SECOND, "--ab-share", "80",
                      "--draft"], cwd=REPO, env=live.env(), timeout=60)
    assert cli.returncode == 1 and cli.stdout == "" and len(cli.stderr.splitlines()) == 1 and "share" in cli.stderr
    made = run_digest(["editions", "create", "--subject", FIRST, "--ab-subject", SECOND, "--ab-share", "10",
                       "--ab-wait", "90", "--draft", "--json"], cwd=REPO, env=live.env(), timeout=60)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["ab"] == {"subject": FIRST, "alternative": SECOND, "share": 10,
                                             "wait_minutes": 90, "decided_at": None, "winner_variant": None,
                                             "reason_code": None, "reason": None}
    made_id = str(json.loads(made.stdout)["id"])
    edited = run_digest(["editions", "edit", made_id, "--ab-wait", "45", "--json"], cwd=REPO, env=live.env(),
                        timeout=60)
    assert edited.returncode == 0 and json.loads(edited.stdout)["ab"]["wait_minutes"] == 45, edited.stderr
    dropped = run_digest(["editions", "edit", made_id, "--no-ab", "--json"], cwd=REPO, env=live.env(), timeout=60)
    assert dropped.returncode == 0 and json.loads(dropped.stdout)["ab"] is None, dropped.stderr
