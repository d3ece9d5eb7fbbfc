"""What a reader will get, before it is sent: a preview (as a sample reader or a chosen
one, with their own story list) and a test send to any address ([TEST] in the subject,
no delivery row: it is not a send to a reader).

A preview or test "as" an address that no reader holds answers exactly as for a reader
with no name and no history (what a new reader at that address would get): an error
there would tell staff who is subscribed."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.editions.branding import newsletter_brand
from digest.editions.content import edition_view, story_view
from digest.editions.create import get_edition
from digest.editions.selector import select_for_edition
from digest.editions.variants import SPARE_STORIES, choose, live_candidates, reader_history
from digest.mail import (
    TEST_NONCE,
    Brand,
    EditionView,
    MessageHeaders,
    Personal,
    Reader,
    Transport,
    build_message,
    reader_values,
    render_edition,
    shared_headers,
)
from digest.readers import normalise_email
from digest.store import Edition, Newsletter, Story, StoryStatus, Subscriber, utcnow

TEST_SUBJECT_PREFIX = "[TEST] "
# Gmail clips a message's HTML past 102 KB ("[Message clipped]", the rest and the
# unsubscribe link behind a click): the editor is warned well before.
GMAIL_CLIP_BYTES = 102 * 1024
CLIP_WARNING_BYTES = 90 * 1024
BRAND_PREVIEW_STORIES = 3
DARK_MEDIA = "@media (prefers-color-scheme: dark)"


PREVIEW_READER = Reader(email="reader@example.com", name="Sample Reader", token="preview-token")
TEST_TOKEN = "test-preview"
# The reader tokens of previews and test sends: never a real reader's (those are 43
# characters from `secrets`), so their links lead to a page saying it was a test.
SAMPLE_TOKENS = frozenset({PREVIEW_READER.token, TEST_TOKEN})


def preview_edition(session: Session, edition_id: int, email: str | None = None) -> tuple[str, str, str]:
    """(subject, html, text) exactly as a reader would get it; before planning, with the
    stories the selector would choose now. For a chosen reader, the stories they already
    received elsewhere are replaced by the spares, as the send loop will do."""
    edition = get_edition(session, edition_id)
    reader = PREVIEW_READER
    story_ids = None
    if email:
        address, name, story_ids = _as_reader(session, edition, email)
        # Their name and stories, never their token: a staff member holding a reader's live
        # link could change, export or erase them as if they were the reader.
        reader = Reader(email=address, name=name, token=PREVIEW_READER.token)
    view = edition_view(session, edition, story_ids)
    rendered = render_edition(view)
    body_html, body_text = rendered.personalise(reader_values(reader, TEST_NONCE))
    return rendered.subject, body_html, body_text


def clip_warning(body_html: str) -> str | None:
    """What to tell the editor when an edition's HTML nears Gmail's clipping; None under
    CLIP_WARNING_BYTES."""
    size = len(body_html.encode("utf-8"))
    if size <= CLIP_WARNING_BYTES:
        return None
    return (f"This edition's HTML is {size / 1024:.0f} KB: Gmail clips messages over {GMAIL_CLIP_BYTES // 1024} KB, "
            "hiding the rest and the unsubscribe link behind \"View entire message\". "
            "Fewer stories or shorter summaries bring it under.")


def brand_preview(session: Session, newsletter_id: int, brand: Brand | None = None) -> dict[str, str]:
    """A digest of the newsletter in `brand` (default: its own) as the sample reader gets it:
    its latest edition's stories, or the newest published ones. `html`, `dark_html` (the
    dark-mode rules applied whatever the browser prefers, for a preview that shows them) and
    `text`."""
    newsletter = session.get_one(Newsletter, newsletter_id)
    edition = session.scalar(select(Edition).where(Edition.newsletter_id == newsletter_id)
                             .order_by(Edition.send_at.desc()).limit(1))
    if edition is not None:
        view = edition_view(session, edition)
    else:
        stories = session.scalars(select(Story).where(Story.status == StoryStatus.PUBLISHED)
                                  .order_by(Story.published_at.desc()).limit(BRAND_PREVIEW_STORIES))
        view = EditionView(id=0, subject=newsletter.name, send_at=utcnow(), stories=tuple(map(story_view, stories)),
                           newsletter=newsletter.name, newsletter_slug=newsletter.slug,
                           sender_name=newsletter.sender_name)
    view = replace(view, brand=brand or newsletter_brand(newsletter))
    body_html, body_text = render_edition(view).personalise(reader_values(PREVIEW_READER))
    return {"html": body_html, "dark_html": body_html.replace(DARK_MEDIA, "@media all"), "text": body_text}


def _as_reader(session: Session, edition: Edition, email: str) -> tuple[str, str | None, list[int]]:
    """(address, name, story ids) of the copy the reader at `email` would get; for an
    address no reader holds, a new reader's: no name, nothing seen before. InvalidReader
    when `email` is not an address."""
    address, key = normalise_email(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
    if subscriber is None:
        return address, None, _their_stories(session, edition, set())
    seen = reader_history(session, edition.id, [subscriber.id], utcnow()).get(subscriber.id, set())
    return subscriber.email, subscriber.name, _their_stories(session, edition, seen)


def _their_stories(session: Session, edition: Edition, seen: set[int]) -> list[int]:
    """The stories a reader's copy would carry: the edition's, less what they already had
    (`seen`), the spares filling in, as the send loop will do."""
    candidates = (live_candidates(session, edition.id, utcnow()) if edition.story_rows
                  else select_for_edition(session, edition, spare=SPARE_STORIES))
    return list(choose(candidates, seen, edition.max_stories))


def send_test(session: Session, edition_id: int, address: str, transport: Transport,
              settings: Settings, as_email: str | None = None) -> str:
    """One copy to `address`, subject prefixed [TEST]; no delivery row (it is not a send to
    a reader). With `as_email`, the copy that reader would get: their name and their
    stories; its links still lead to the test page and never touch them. Returns the
    Message-ID."""
    edition = get_edition(session, edition_id)
    to_address, _ = normalise_email(address)
    name, story_ids = None, None
    if as_email:
        _, name, story_ids = _as_reader(session, edition, as_email)
    view = edition_view(session, edition, story_ids)
    rendered = render_edition(view)
    reader = Reader(email=to_address, name=name, token=TEST_TOKEN)
    values = reader_values(reader, TEST_NONCE)  # its story links redirect, never counted
    body_html, body_text = rendered.personalise(values)
    shared = shared_headers(view, TEST_SUBJECT_PREFIX + rendered.subject, settings)
    message_id = f"<test.{edition_id}.{int(utcnow().timestamp() * 1000)}@{settings.sender_domain}>"
    message = build_message(
        MessageHeaders(sender=shared.sender, subject=shared.subject, list_id=shared.list_id,
                       feedback_id=shared.feedback_id, unsubscribe_mailto=shared.unsubscribe_mailto,
                       reply_to=shared.reply_to),
        Personal(to_name=None, to_address=to_address, message_id=message_id, date=utcnow(),
                 unsubscribe_url=values["unsubscribe_url"], unsubscribe_token=reader.token,
                 text=body_text, html=body_html),
    )
    with transport.connect() as connection:
        connection.send(settings.sender_address, to_address, message)
    return message_id
