"""What a spam filter makes of digest's mail: Debian's SpamAssassin with its local rules
only (`spamassassin -L -t`: no network tests), on every kind of message as the SMTP server
received it: the digest with images and without, the confirmation, the welcome, a digest
of a newsletter with a long non-ASCII name, a newsletter's brand with a logo (its digest,
confirmation and welcome), and a digest with both opt-ins on (the open pixel, a reader's
click history). Each scores at most 0.5 (5.0 is spam); the scores go to
test-artifacts/spam-scores.txt for the notes."""

from __future__ import annotations

import email
import re
import shutil
from email import policy
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from digest.editions import set_brand
from digest.store.models import ClickHistoryConsent, Newsletter, NewsletterSubscription, Story
from tests.support.factories import seed_readers, seed_stories, send_due_edition
from tests.support.mail import wait_for_mail
from tests.support.queries import reader_by_email
from tests.support.stack import Stack, settle
from tests.support.web import subscribe_and_confirm

# One stack is enough: the messages are built by the same code on either database.
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("stack", ["postgresql"], indirect=True)]

MAX_SCORE = 0.5
SA_TIMEOUT_SECONDS = 120
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
BRAND = {"logo_url": "https://news.example.com/static/logo.png", "logo_width": 220, "accent_color": "#0b5394",
         "link_color": "#1f3a5f", "font": "helvetica", "footer_text": "The Brand Desk is reader-funded.",
         "reply_to": "desk@news.example.com", "language": "en-GB"}
LONG_NAME = "Щоденні головні новини редакції «Київ» — Café Politique & Économie"


def spam_score(raw: bytes) -> tuple[float, str]:
    """(score, the rules that fired) from SpamAssassin's local tests."""
    binary = shutil.which("spamassassin")
    assert binary, "spamassassin is not installed: scripts/test.sh installs Debian's spamassassin"
    # No Bayes: nothing learnt from one message may change the next one's score.
    done = subprocess.run([binary, "-L", "-t", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"], input=raw, capture_output=True, timeout=SA_TIMEOUT_SECONDS,
                          check=False)
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")[-2000:]  # 1: spam, with -e only
    status = re.search(rb"^X-Spam-Status: (Yes|No), score=(-?[\d.]+) required=[\d.]+ tests=(.*?)\n\S",
                       done.stdout, re.MULTILINE | re.DOTALL)
    assert status, done.stdout[:2000]
    return float(status.group(2)), " ".join(status.group(3).decode().split())



def test_every_kind_of_message_scores_low_with_spamassassin(live: Stack, client: httpx.Client) -> None:
    seed_stories(live.factory)
    reader = "sa.reader@example.org"
    subscribe_and_confirm(live, client, reader, name="Olena", topics=("world",))
    [confirm] = wait_for_mail(live, reader, subject="Confirm")
    [welcome] = wait_for_mail(live, reader, subject="Welcome")
    messages = {"confirmation": confirm.data, "welcome": welcome.data}

    send_due_edition(live, "Digest with pictures")
    messages["digest, with images"] = wait_for_mail(live, reader, subject="Digest with pictures")[0].data

    with live.factory.begin() as session:
        session.execute(update(Story).values(image_url=None))
    send_due_edition(live, "Without pictures today")
    messages["digest, no images"] = wait_for_mail(live, reader, subject="Without pictures")[0].data

    # A brand with a logo: the newsletter's digest, and the confirmation and welcome of a
    # reader who joins it.
    with live.factory.begin() as session:
        branded = Newsletter(slug="brand", name="The Brand Desk", cron="0 7 * * *", timezone="UTC",
                             subject_template="{{ newsletter }}: {{ date }}")
        session.add(branded)
        session.flush()
        set_brand(session, branded.id, BRAND)
        branded_id = branded.id
    fan = "sa.brand@example.org"
    subscribe_and_confirm(live, client, fan, name="Ana", topics=("world",))
    messages["confirmation, a brand with a logo"] = wait_for_mail(live, fan, subject="Confirm")[0].data
    messages["welcome, a brand with a logo"] = wait_for_mail(live, fan, subject="Welcome")[0].data
    send_due_edition(live, "The Brand Desk today", newsletter_id=branded_id)
    messages["digest, a brand with a logo"] = wait_for_mail(live, fan, subject="The Brand Desk today")[0].data
    for kind in ("confirmation", "welcome", "digest"):
        parsed = email.message_from_bytes(messages[f"{kind}, a brand with a logo"], policy=policy.default)
        assert parsed["Reply-To"] == BRAND["reply_to"], kind
        html_part = parsed.get_body(("html",))
        assert html_part is not None and BRAND["logo_url"] in html_part.get_content(), kind

    subscriber = reader_by_email(live, reader)
    assert subscriber is not None
    with live.factory.begin() as session:
        newsletter = Newsletter(slug="kyiv", name=LONG_NAME, cron="0 7 * * *", timezone="Europe/Kyiv",
                                subject_template="{{ newsletter }}: {{ date }}")
        session.add(newsletter)
        session.flush()
        session.add(NewsletterSubscription(newsletter_id=newsletter.id, subscriber_id=subscriber.id))
        newsletter_id = newsletter.id
    send_due_edition(live, "Головне за день: «Київ» і світ", newsletter_id=newsletter_id)
    messages["digest, long non-ASCII newsletter name"] = wait_for_mail(live, reader, subject="Головне")[0].data

    # Both opt-ins on (off by default, so every message above has neither): the open pixel,
    # and a reader who asked for a click history (links that name them). A new reader: the
    # one above has had every story by now.
    [opted_reader] = seed_readers(live.factory, 1, prefix="sa.opted")
    opted_subscriber = reader_by_email(live, opted_reader)
    assert opted_subscriber is not None
    with live.factory.begin() as session:
        opted = Newsletter(slug="opted", name="The Opt-in Desk", cron="0 7 * * *", timezone="UTC",
                           subject_template="{{ newsletter }}: {{ date }}", open_pixel=True, click_history=True)
        session.add(opted)
        session.flush()
        session.add(NewsletterSubscription(newsletter_id=opted.id, subscriber_id=opted_subscriber.id))
        session.add(ClickHistoryConsent(newsletter_id=opted.id, subscriber_id=opted_subscriber.id))
        opted_id = opted.id
    send_due_edition(live, "The Opt-in Desk today", newsletter_id=opted_id)
    raw = wait_for_mail(live, opted_reader, subject="The Opt-in Desk today")[0].data
    assert b"/o/" in raw and re.search(rb"/c/\d+/\d+/0/[^/]+/[0-9a-f]+r[0-9a-f]+s", raw.replace(b"=\r\n", b""))
    messages["digest, open pixel and click history on"] = raw
    settle(live)

    scores = {kind: spam_score(raw) for kind, raw in messages.items()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "spam-scores.txt").write_text("".join(f"{kind}: {score:.1f} ({rules})\n"
                                                        for kind, (score, rules) in scores.items()))
    assert {kind: score for kind, (score, _) in scores.items() if score > MAX_SCORE} == {}, scores
