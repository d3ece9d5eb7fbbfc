"""The ops dashboard and its actions over real HTTP, while a real worker is sending.

The sends go through the ops lane (see tests/support/lane.py): a worker, two web servers and a
slowable, holdable aiosmtpd server of the tests' own, next to the session's, so that a
send can be kept "in progress" long enough to look at it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest

from tests.support.factories import due_edition, make_user, seed_readers
from tests.support.lane import (
    COUNTS,
    Lane,
    audit_rows,
    copies,
    edition_status,
    ledger,
    mixed_readers,
    page_token,
    press,
    quiet_release,
    status_json,
    wait_no_leases,
)
from tests.support.processes import REPO
from tests.support.stack import Stack
from tests.support.web import OPS, csrf_token, signed_in

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ helpers


def row_numbers(html: str, edition_id: int) -> dict[str, int]:
    """The data-col numbers of an edition's card (sending, paused) or row (the rest) on the dashboard."""
    row = re.search(rf'<(tr|article) (?:class="[^"]*" )?data-edition="{edition_id}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    assert row, f"no row for edition {edition_id}"
    return {col: int(value) for col, value in
            re.findall(r'data-col="(\w+)">\s*(\d+)\s*<', row.group(2)) if col in COUNTS}


def cli_status(lane: Lane, edition_id: int) -> dict[str, Any]:
    """`digest status --json ID`, as an operator runs it against the same database."""
    done = subprocess.run([sys.executable, "-m", "digest.cli", "status", "--json", str(edition_id)],
                          cwd=REPO, env=lane.env(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def numbers(health: dict[str, Any]) -> dict[str, int]:
    return {key: health[key] for key in COUNTS}



def release_and_expect_one_copy_each(live: Stack, lane: Lane, edition_id: int, addresses: list[str]) -> None:
    """Let the held send finish; then every reader got exactly one copy and the ledger says all were sent."""
    lane.smtp.release()
    lane.wait_for(edition_id, "sent")
    received = copies(lane.smtp)
    assert set(received) == set(addresses) and set(received.values()) == {1}
    assert ledger(live, edition_id) == {"planned": len(addresses), "sent": len(addresses), "failed": 0,
                                        "bounced": 0, "skipped": 0, "pending": 0}


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def ops(live: Stack, lane: Lane) -> Iterator[httpx.Client]:
    """An ops person's signed-in client on the lane's web server."""
    make_user(live, OPS, "ops")
    with signed_in(lane.web_url, OPS) as client:
        yield client


# ------------------------------------------------------------------ who may look


def test_the_ops_pages_want_ops_or_admin(live: Stack, lane: Lane) -> None:
    seed_readers(live.factory, 3)
    edition_id = quiet_release(live)
    pages = ["/ops", "/ops/panel", "/ops/status.json", "/ops/audit"]
    with httpx.Client(base_url=lane.web_url, timeout=20) as anonymous:
        for path in pages:
            response = anonymous.get(path)
            assert (response.status_code, response.headers.get("location")) == (303, f"/login?next={path}")
        response = anonymous.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": "x"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login")

    for email, role in [("editor@example.org", "editor"), ("admin@example.org", "admin"), (OPS, "ops")]:
        make_user(live, email, role)
    with signed_in(lane.web_url, "editor@example.org") as editor:
        for path in pages:
            response = editor.get(path)
            assert response.status_code == 403, path
            assert "Your role (editor) cannot open this page." in unescape(response.text)
        token = csrf_token(editor.get("/login").text)  # a valid token: the role is what refuses
        refused = editor.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": token})
        assert refused.status_code == 403 and "Your role (editor)" in unescape(refused.text)
    assert edition_status(live, edition_id)[0] == "sending"

    for email in ("admin@example.org", OPS):
        with signed_in(lane.web_url, email) as staff:
            for path in pages:
                assert staff.get(path).status_code == 200, (email, path)
            assert status_json(staff, edition_id)["status"] == "sending"
    assert audit_rows(live) == []


# ------------------------------------------------------------------ the numbers


def test_status_json_the_dashboard_and_the_cli_agree_with_the_ledger_mid_send(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    # One reader in five refuses: under the lane's auto-pause ratio, spread over the batches.
    addresses = mixed_readers(live, 6, 8, "reject", "tempfail")
    edition_id = due_edition(live.factory)
    lane.smtp.hold(after=17)
    assert lane.release_due() == [edition_id]
    lane.wait_held()  # both worker processes inside a message: the ledger is still

    mid = ledger(live, edition_id)
    assert mid["planned"] == len(addresses) == 60
    assert 0 < mid["sent"] <= 17 and mid["pending"] > 0, mid  # under way, not done
    health = status_json(ops, edition_id)
    assert health["status"] == "sending" and numbers(health) == mid
    assert health["rate_per_minute"] == mid["sent"]
    assert numbers(cli_status(lane, edition_id)) == mid
    assert row_numbers(ops.get("/ops").text, edition_id) == mid
    assert row_numbers(ops.get("/ops/panel").text, edition_id) == mid

    # The errors, grouped: as many as the ledger has refusals on record.
    errors = [g for g in ops.get("/ops/status.json").json()["errors"] if g["edition_id"] == edition_id]
    by_reason = {g["reason"][:3]: g["count"] for g in errors}
    # Which refusals are on record yet depends on which chunks were written before the hold.
    assert by_reason == {code: n for code, n in (("550", mid["bounced"]), ("451", mid["failed"])) if n}
    assert {g["domain"] for g in errors} <= {"example.org"}

    lane.smtp.release()
    lane.wait_for(edition_id, "sent")
    end = ledger(live, edition_id)
    assert end == {"planned": 60, "sent": 48, "failed": 6, "bounced": 6, "skipped": 0, "pending": 0}
    health = status_json(ops, edition_id)
    assert health["status"] == "sent" and numbers(health) == end and health["eta_seconds"] == 0
    assert numbers(cli_status(lane, edition_id)) == end
    assert row_numbers(ops.get("/ops").text, edition_id) == end
    received = copies(lane.smtp)
    assert set(received) == {a for a in addresses if not a.startswith(("reject", "tempfail"))}
    assert set(received.values()) == {1}


# ------------------------------------------------------------------ the actions


def test_pause_and_resume_change_the_edition_once_each_and_are_audited(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    addresses = seed_readers(live.factory, 45)
    edition_id = quiet_release(live)

    assert press(ops, edition_id, "pause") == f"edition {edition_id}: pause done"
    assert edition_status(live, edition_id) == ("paused", f"pause by {OPS}")
    assert press(ops, edition_id, "pause") == f"edition {edition_id}: pause had nothing (more) to do"
    assert edition_status(live, edition_id) == ("paused", f"pause by {OPS}")
    page = ops.get(f"/ops?done=pause&edition={edition_id}&changed=0").text
    assert f'<p class="ok" role="status">edition {edition_id}: pause had nothing (more) to do</p>' in page
    # a link cannot make the banner say anything else, in our voice
    for query in ("done=Your+password+expired:+sign+in+at+evil.example", "done=pause+now&edition=1"):
        page = ops.get(f"/ops?{query}").text
        assert 'role="status"' not in page and "evil.example" not in page
    assert f"pause by {OPS}" in page  # the paused list says why

    lane.smtp.hold()  # the resumed batches start, then wait: the edition stays sending
    assert press(ops, edition_id, "resume") == f"edition {edition_id}: resume done"
    assert edition_status(live, edition_id) == ("sending", None)
    lane.wait_held()
    assert press(ops, edition_id, "resume") == f"edition {edition_id}: resume had nothing (more) to do"
    assert edition_status(live, edition_id) == ("sending", None)
    release_and_expect_one_copy_each(live, lane, edition_id, addresses)
    target = f"edition:{edition_id}"
    assert audit_rows(live) == [(OPS, "edition.pause", target, {"changed": 1}),
                                (OPS, "edition.pause", target, {"changed": 0}),
                                (OPS, "edition.resume", target, {"changed": 1}),
                                (OPS, "edition.resume", target, {"changed": 0})]
    audit_page = unescape(ops.get("/ops/audit").text)
    assert audit_page.count("<code>edition.resume</code>") == 2 and OPS in audit_page  # rows, not filter options

    # Resuming what has been sent is refused, and says why.
    token = page_token(ops)
    refused = ops.post(f"/ops/editions/{edition_id}/resume", data={"csrf_token": token})
    assert refused.status_code == 409 and "cannot resume an edition that is sent" in unescape(refused.text)


def test_cancel_then_send_missing_reaches_only_those_not_yet_sent(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    addresses = seed_readers(live.factory, 60)
    edition_id = due_edition(live.factory)
    lane.smtp.hold(after=20)
    lane.release_due()
    lane.wait_held()
    # Cancel from paused, once the batches under way have stopped and recorded what they
    # sent (a cancel while messages are in flight: see test_ops_concurrency).
    assert press(ops, edition_id, "pause") == f"edition {edition_id}: pause done"
    lane.smtp.release()
    wait_no_leases(live, edition_id)
    before = ledger(live, edition_id)
    first_round = copies(lane.smtp)
    assert before["sent"] == sum(first_round.values()) and 20 <= before["sent"] < 60

    # Cancel sits beside Pause: pressed alone it only asks, naming who would miss out.
    asked = ops.post(f"/ops/editions/{edition_id}/cancel", data={"csrf_token": page_token(ops)})
    assert asked.status_code == 303 and asked.headers["location"] == f"/ops/editions/{edition_id}/cancel"
    assert edition_status(live, edition_id)[0] == "paused"
    question = re.sub(r"<[^>]+>", "", unescape(ops.get(asked.headers["location"]).text))
    assert f"{before['pending']} readers have not received it yet" in question
    assert press(ops, edition_id, "cancel") == f"edition {edition_id}: cancel done"
    assert edition_status(live, edition_id) == ("cancelled", f"cancel by {OPS}")
    after_cancel = ledger(live, edition_id)
    assert after_cancel == {**before, "skipped": before["pending"], "pending": 0}
    assert press(ops, edition_id, "cancel") == f"edition {edition_id}: cancel had nothing (more) to do"
    assert ledger(live, edition_id) == after_cancel

    lane.smtp.hold()
    assert press(ops, edition_id, "send-missing") == f"edition {edition_id}: send-missing done ({before['pending']})"
    assert edition_status(live, edition_id) == ("sending", "sending to the missing")
    assert press(ops, edition_id, "send-missing") == f"edition {edition_id}: send-missing had nothing (more) to do"
    release_and_expect_one_copy_each(live, lane, edition_id, addresses)
    target = f"edition:{edition_id}"
    assert [(a, t, d) for _, a, t, d in audit_rows(live)] == [
        ("edition.pause", target, {"changed": 1}),
        ("edition.cancel", target, {"changed": 1}), ("edition.cancel", target, {"changed": 0}),
        ("edition.send-missing", target, {"changed": before["pending"]}),
        ("edition.send-missing", target, {"changed": 0})]


def test_send_missing_on_an_edition_with_nothing_missing_changes_nothing(
        live: Stack, lane: Lane, ops: httpx.Client) -> None:
    seed_readers(live.factory, 5)
    edition_id = due_edition(live.factory)
    lane.release_due()
    lane.wait_for(edition_id, "sent")
    assert press(ops, edition_id, "send-missing") == f"edition {edition_id}: send-missing had nothing (more) to do"
    assert edition_status(live, edition_id)[0] == "sent"


def test_retry_failed_resends_only_the_failed_once(live: Stack, lane: Lane, ops: httpx.Client) -> None:
    addresses = mixed_readers(live, 4, 8, "tempfail")
    edition_id = due_edition(live.factory)
    lane.smtp.tempfail_always = True
    lane.release_due()
    lane.wait_for(edition_id, "sent")  # finished, with the refused left failed (one attempt allowed)
    assert ledger(live, edition_id) == {"planned": 36, "sent": 32, "failed": 4, "bounced": 0, "skipped": 0,
                                        "pending": 0}
    lane.smtp.tempfail_always = False
    lane.smtp.hold()
    assert press(ops, edition_id, "retry-failed") == f"edition {edition_id}: retry-failed done (4)"
    assert edition_status(live, edition_id) == ("sending", "retrying failed deliveries")
    lane.wait_held(1)
    assert press(ops, edition_id, "retry-failed") == f"edition {edition_id}: retry-failed had nothing (more) to do"
    release_and_expect_one_copy_each(live, lane, edition_id, addresses)
    assert [(a, d) for _, a, _, d in audit_rows(live)] == [
        ("edition.retry-failed", {"changed": 4}), ("edition.retry-failed", {"changed": 0})]
    assert {actor for actor, *_ in audit_rows(live)} == {OPS}


# ------------------------------------------------------------------ refusals


def test_an_unknown_action_is_a_404_page(live: Stack, lane: Lane, ops: httpx.Client) -> None:
    seed_readers(live.factory, 3)
    edition_id = quiet_release(live)
    token = page_token(ops)
    response = ops.post(f"/ops/editions/{edition_id}/explode", data={"csrf_token": token})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no action 'explode'." in unescape(response.text)
    assert edition_status(live, edition_id)[0] == "sending"
    assert audit_rows(live) == []


def test_an_action_without_its_csrf_token_changes_nothing(live: Stack, lane: Lane, ops: httpx.Client) -> None:
    seed_readers(live.factory, 3)
    edition_id = quiet_release(live)
    for data in ({}, {"csrf_token": "forged"}):
        response = ops.post(f"/ops/editions/{edition_id}/pause", data=data)
        assert response.status_code == 403
        assert "This form has expired or was not sent from our page." in unescape(response.text)
    # A token from the page, sent with the session but without the CSRF cookie it belongs to
    # (what another site's form posting to us would look like).
    token = page_token(ops)
    session_only = {"digest_session": ops.cookies["digest_session"]}
    with httpx.Client(base_url=lane.web_url, timeout=20, cookies=session_only) as stray:
        assert stray.get("/ops").status_code == 200  # signed in all the same
        assert stray.post(f"/ops/editions/{edition_id}/pause", data={"csrf_token": token}).status_code == 403
    assert edition_status(live, edition_id)[0] == "sending"
    assert audit_rows(live) == []

