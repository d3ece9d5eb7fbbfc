"""Actions on newsletters: create one (its editions appear ahead of their dates, by beat)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from digest import readers
from digest.actions.base import Actor, Deps, audited, staff_channel
from digest.actions.shapes import newsletter_json
from digest.editions import create_newsletter
from digest.readers import RequestContext


def add_newsletter(deps: Deps, actor: Actor, *, slug: str, name: str, cron: str, timezone: str,
                   topics: str | Iterable[str] | None = None, max_stories: int = 5, min_stories: int = 1,
                   subject_template: str = "{{ newsletter }}: {{ date }}", sender_name: str | None = None,
                   local_time: bool = False, subscribe_existing: bool = False) -> dict[str, Any]:
    """A recurring newsletter; with `subscribe_existing`, the active readers whose topics match
    join it at once (each with a consent event), so its first edition does not go to nobody.
    Returns its JSON with `subscribers`."""
    with audited(deps, actor, "newsletter.add") as (session, row):
        newsletter = create_newsletter(
            session, slug=slug, name=name, cron=cron, timezone=timezone, topics=topics,
            allowed_topics=deps.settings.topic_list, max_stories=max_stories, min_stories=min_stories,
            subject_template=subject_template, sender_name=sender_name, local_time=local_time)
        row.target = f"newsletter:{newsletter.id}"
        row.update(slug=newsletter.slug)
        joined = 0
        if subscribe_existing:
            joined = readers.subscribe_existing(session, newsletter, RequestContext(channel=staff_channel(actor)))
            row.update(subscribed_existing=joined)
        return {**newsletter_json(newsletter), "subscribers": joined}
