"""Mail to readers that failed: /ops lists failed confirmations and welcomes and sends a
confirmation again to a reader still waiting; a reader whose confirmation failed gets a new
one at once when they sign up again (the form's cooldown is for mail that went out)."""

from __future__ import annotations

from html import unescape

import httpx
import pytest
from sqlalchemy import select, update

from digest.store.models import AuditEntry, Notice, NoticeStatus
from tests.support.factories import make_user
from tests.support.mail import wait_for_mail
from tests.support.queries import reader_by_email
from tests.support.stack import Stack, settle
from tests.support.web import OPS, csrf_token, signed_in, subscribe

# PostgreSQL only: the notices' SQL is the same on SQLite, and the reader pages run on both.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

BOUNCE = "550 5.1.1 mailbox unavailable"



def fail_confirmations(live: Stack, address: str) -> int:
    """The address's confirmations marked failed, as a bounce report or exhausted retries leave them."""
    reader = reader_by_email(live, address)
    assert reader is not None
    with live.factory.begin() as session:
        session.execute(update(Notice).where(Notice.subscriber_id == reader.id, Notice.kind == "confirm")
                        .values(status=NoticeStatus.FAILED, last_error=BOUNCE))
    return reader.id


def test_a_failed_confirmation_is_listed_on_ops_and_sent_again(live: Stack, web: str, client: httpx.Client) -> None:
    address = "waiting@example.org"
    assert subscribe(client, address).status_code == 200
    wait_for_mail(live, address, subject="Confirm")
    reader_id = fail_confirmations(live, address)
    make_user(live, OPS, "ops")
    live.smtp.clear()

    with signed_in(web, OPS) as ops:
        page = ops.get("/ops").text
        section = page[page.index('data-section="failed-notices"'):]
        section = section[:section.index("</section>")]
        assert address in section and "confirmation" in section and BOUNCE in unescape(section)
        assert f'action="/ops/readers/{reader_id}/confirm"' in section
        assert ops.get("/ops/status.json").json()["failed_notices"][0] == {
            **ops.get("/ops/status.json").json()["failed_notices"][0], "reader_id": reader_id, "kind": "confirm",
            "can_resend": True}

        assert ops.post(f"/ops/readers/{reader_id}/confirm", data={}).status_code == 403  # no CSRF token
        sent = ops.post(f"/ops/readers/{reader_id}/confirm", data={"csrf_token": csrf_token(page)})
        assert sent.status_code == 303 and sent.headers["location"].startswith("/ops?done=confirm")
        assert "a new confirmation is on its way" in ops.get(sent.headers["location"]).text
        wait_for_mail(live, address, subject="Confirm")
        settle(live)
        after = ops.get("/ops").text
        assert f'action="/ops/readers/{reader_id}/confirm"' not in after  # the newest confirmation went out

    with live.factory() as session:
        audit = session.execute(select(AuditEntry.action, AuditEntry.via).where(AuditEntry.action == "reader.confirm")
                                ).all()
    assert audit == [("reader.confirm", "ops")]


def test_a_reader_whose_confirmation_failed_gets_a_new_one_at_once(live: Stack, client: httpx.Client) -> None:
    address = "again@example.org"
    assert subscribe(client, address).status_code == 200
    wait_for_mail(live, address, subject="Confirm")

    # Within the cooldown, while the first went out: nothing more.
    assert subscribe(client, address).status_code == 200
    settle(live)
    assert len(live.smtp.by_recipient()[address]) == 1

    # It failed after all: the next request sends a new one at once.
    fail_confirmations(live, address)
    assert subscribe(client, address).status_code == 200
    wait_for_mail(live, address, subject="Confirm", count=2)
