"""What an edition says: its stories in order, with the editor's overrides, and whose
newsletter it is. The one place that turns rows into an EditionView for rendering."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editions.branding import newsletter_brand
from digest.editions.selector import select_for_edition
from digest.mail import EditionView, StoryView
from digest.store import Edition, EditionCuration, EditionStory, Story


def primary_story_ids(session: Session, edition: Edition) -> list[int]:
    """The frozen list most readers get: the first max_stories not pulled since planning."""
    ids = session.scalars(
        select(EditionStory.story_id).where(EditionStory.edition_id == edition.id,
                                            EditionStory.pulled_at.is_(None))
        .order_by(EditionStory.position))
    return list(ids)[: edition.max_stories]


def edition_view(session: Session, edition: Edition, story_ids: list[int] | None = None) -> EditionView:
    """The edition as readers will see it. Without `story_ids`: the frozen list once
    planned, or what the selector would choose now (for previews before sending)."""
    if story_ids is None:
        story_ids = primary_story_ids(session, edition) if edition.story_rows else select_for_edition(
            session, edition)
    stories = {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(story_ids)))}
    overrides = {
        row.story_id: row
        for row in session.scalars(select(EditionCuration).where(EditionCuration.edition_id == edition.id))
    }

    newsletter = edition.newsletter
    return EditionView(
        id=edition.id,
        subject=edition.subject,
        send_at=edition.send_at,
        stories=tuple(story_view(stories[i], overrides.get(i)) for i in story_ids if i in stories),
        note=edition.note,
        newsletter=newsletter.name if newsletter else None,
        newsletter_slug=newsletter.slug if newsletter else None,
        sender_name=newsletter.sender_name if newsletter and newsletter.sender_name else None,
        brand=newsletter_brand(newsletter),
        open_pixel=bool(newsletter and newsletter.open_pixel),
    )


def story_view(story: Story, override: EditionCuration | None = None) -> StoryView:
    """A story as an edition shows it, with the editor's headline and summary for it."""
    return StoryView(
        id=story.id,
        title=(override.headline if override and override.headline else story.title),
        url=story.url,
        summary=(override.summary if override and override.summary else story.summary),
        published_at=story.published_at,
        image_url=story.image_url,
        image_width=story.image_width,
        image_height=story.image_height,
        author=story.author,
        topics=tuple(story.topics or ()),
    )


def load_edition_view(session: Session, edition_id: int) -> EditionView:
    return edition_view(session, session.get_one(Edition, edition_id))
