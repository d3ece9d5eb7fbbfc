"""Actions on newsletters: create one, change it or its brand, pause, resume, archive and
restore it.

Beat makes each newsletter's editions a day or two ahead; a change here reaches the
editions already made that have not started (digest.editions.newsletters says how).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from digest import readers
from digest.actions.base import Actor, Deps, Outcome, audited, staff_channel
from digest.actions.shapes import newsletter_json
from digest.editions import (
    DEFAULT_SUBJECT,
    NewsletterChanges,
    change_state,
    create_newsletter,
    edit_newsletter,
    get_newsletter,
    schedule_newsletter,
    set_brand,
)
from digest.readers import RequestContext, subscriber_counts
from digest.store import NewEditions, utcnow


def newsletter_detail(session: Session, ref: str | int) -> dict[str, Any]:
    """A newsletter's JSON with `subscribers`: its active readers."""
    newsletter = get_newsletter(session, ref)
    return {**newsletter_json(newsletter), "subscribers": subscriber_counts(session).get(newsletter.id, 0)}


def add_newsletter(deps: Deps, actor: Actor, *, slug: str, name: str, cron: str | None, timezone: str,
                   topics: str | Iterable[str] | None = None, max_stories: int = 5, min_stories: int = 1,
                   subject_template: str = DEFAULT_SUBJECT, sender_name: str | None = None,
                   local_time: bool = False, subscribe_existing: bool = False, window_hours: int = 48,
                   new_editions: str = NewEditions.SCHEDULED, trigger_stories: int | None = None,
                   trigger_every_minutes: int = 60, trigger_hold_minutes: int = 0) -> dict[str, Any]:
    """A recurring newsletter; with `subscribe_existing`, the active readers whose topics match
    join it at once (each with a consent event), so its first edition does not go to nobody.
    Without a cron it is sent by its stories alone (`trigger_stories`: digest.editions.triggers).
    Returns its JSON with `subscribers`."""
    with audited(deps, actor, "newsletter.add") as (session, row):
        newsletter = create_newsletter(
            session, slug=slug, name=name, cron=cron, timezone=timezone, topics=topics,
            allowed_topics=deps.settings.topic_list, max_stories=max_stories, min_stories=min_stories,
            subject_template=subject_template, sender_name=sender_name, local_time=local_time,
            window_hours=window_hours, new_editions=new_editions, trigger_stories=trigger_stories,
            trigger_every_minutes=trigger_every_minutes, trigger_hold_minutes=trigger_hold_minutes)
        row.target = f"newsletter:{newsletter.id}"
        row.update(slug=newsletter.slug)
        joined = 0
        if subscribe_existing:
            joined = readers.subscribe_existing(session, newsletter, RequestContext(channel=staff_channel(actor)))
            row.update(subscribed_existing=joined)
        # Its first editions now, not at beat's next tick: the editor goes on to curate them.
        schedule_newsletter(session, newsletter, newsletter.created_at)
        return {**newsletter_json(newsletter), "subscribers": joined}


def edit(deps: Deps, actor: Actor, ref: str | int, changes: NewsletterChanges) -> Outcome:
    """Change a newsletter's fields (all checked first; NewsletterError.fields names each bad
    one). The audit row lists each field changed with its new and old value. `data`: the
    newsletter's JSON with `subscribers` (`newsletter`) and the fields changed (`changed`)."""
    with audited(deps, actor, "newsletter.edit") as (session, row):
        newsletter = get_newsletter(session, ref)
        row.target = f"newsletter:{newsletter.id}"
        changed = edit_newsletter(session, newsletter.id, changes, deps.settings.topic_list, utcnow())
        row.update(changed=list(changed))
        for name, (was, new) in changed.items():
            row.update(**{name: new, f"{name}_was": was})
        data = newsletter_detail(session, newsletter.id)
    return Outcome(bool(changed), data={"newsletter": data, "changed": list(changed)})


def brand(deps: Deps, actor: Actor, ref: str | int, changes: Mapping[str, Any]) -> Outcome:
    """Change a newsletter's brand: the fields given (digest.mail.BRAND_FIELDS; None or ""
    for the default), all checked first (BrandError.fields names each bad one, and a colour
    refused says its contrast). The audit row lists each field changed with its new and old
    value. `data`: the newsletter's JSON (`newsletter`, with `brand`) and the fields changed."""
    with audited(deps, actor, "newsletter.brand") as (session, row):
        newsletter = get_newsletter(session, ref)
        row.target = f"newsletter:{newsletter.id}"
        changed = set_brand(session, newsletter.id, changes)
        row.update(changed=list(changed))
        for name, (was, new) in changed.items():
            row.update(**{name: new, f"{name}_was": was})
        data = newsletter_detail(session, newsletter.id)
    return Outcome(bool(changed), data={"newsletter": data, "changed": list(changed)})


def set_state(deps: Deps, actor: Actor, ref: str | int, action: str) -> Outcome:
    """pause, resume, archive or restore. `count`: editions held back, scheduled again or
    made (resume), or cancelled (archive). `data["newsletter"]`: its JSON."""
    with audited(deps, actor, f"newsletter.{action}") as (session, row):
        newsletter = get_newsletter(session, ref)
        row.target = f"newsletter:{newsletter.id}"
        changed, moved = change_state(session, newsletter.id, action, utcnow())
        row.update(changed=changed, editions=moved)
        data = newsletter_detail(session, newsletter.id)
    return Outcome(changed, moved, data={"newsletter": data})
