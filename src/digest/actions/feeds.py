"""Actions on feeds: register one (and poll it at once, so the editor sees it work), change,
pause, resume, remove it, and poll now. Beat's own polls go through digest.feeds directly:
they act for no one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.actions.base import Actor, Deps, Outcome, audited
from digest.actions.shapes import feed_json
from digest.feeds import (
    FeedSettings,
    PollResult,
    add_feed,
    due_feeds,
    edit_feed,
    get_feed,
    list_feeds,
    poll_feed,
    remove_feed,
    set_active,
)
from digest.store import FeedItem, utcnow


def feed_detail(session: Session, feed_id: int) -> dict[str, Any]:
    feed = get_feed(session, feed_id)
    stories = session.scalar(select(func.count()).select_from(FeedItem).where(FeedItem.feed_id == feed.id)) or 0
    return feed_json(feed, stories)


def feeds_json(deps: Deps) -> list[dict[str, Any]]:
    """Every feed, those that need a look first (paused by themselves, then failing)."""
    with deps.factory() as session:
        return [feed_json(feed, stories) for feed, stories in list_feeds(session)]


def poll_json(result: PollResult) -> dict[str, Any]:
    return {"feed_id": result.feed_id, "outcome": result.outcome, "added": result.added,
            "updated": result.updated, "error": result.error}


def add(deps: Deps, actor: Actor, url: str, settings: FeedSettings, *, poll: bool = True) -> dict[str, Any]:
    """Register a feed; with `poll`, poll it at once (its first stories, or why it fails,
    are on the answer: `poll`). Returns its JSON."""
    with audited(deps, actor, "feed.add") as (session, row):
        feed = add_feed(session, url, settings, deps.settings.topic_list)
        row.target = f"feed:{feed.id}"
        row.update(url=feed.url)
        feed_id = feed.id
    first = poll_feed(deps.factory, feed_id, force=True) if poll else None
    with deps.factory() as session:
        data = feed_detail(session, feed_id)
    return {**data, "poll": poll_json(first) if first else None}


def edit(deps: Deps, actor: Actor, feed_id: int, settings: FeedSettings, url: str | None = None) -> Outcome:
    with audited(deps, actor, "feed.edit", f"feed:{feed_id}") as (session, row):
        changed = edit_feed(session, feed_id, settings, deps.settings.topic_list, url)
        for name, (was, new) in changed.items():
            row.update(**{name: new, f"{name}_was": was})
        row.write = bool(changed)
        data = feed_detail(session, feed_id)
    return Outcome(bool(changed), data={"feed": data, "changed": list(changed)})


def set_state(deps: Deps, actor: Actor, feed_id: int, action: str) -> Outcome:
    """pause or resume (a resumed feed is due at once; beat polls it within its tick)."""
    if action not in ("pause", "resume"):
        raise ValueError(action)
    with audited(deps, actor, f"feed.{action}", f"feed:{feed_id}") as (session, row):
        changed = set_active(session, feed_id, action == "resume", utcnow())
        row.write = changed
        data = feed_detail(session, feed_id)
    return Outcome(changed, data={"feed": data})


def remove(deps: Deps, actor: Actor, feed_id: int) -> dict[str, Any]:
    """Forget the feed; the stories it brought stay."""
    with audited(deps, actor, "feed.remove", f"feed:{feed_id}") as (session, row):
        data = feed_detail(session, feed_id)
        remove_feed(session, feed_id)
        row.update(url=data["url"])
    return data


def poll(deps: Deps, actor: Actor, feed_id: int | None = None) -> list[PollResult]:
    """Poll one feed now (even if paused or not due), or every feed that is due; here, not
    on a worker, so the asker sees how it went."""
    if feed_id is not None:
        return [poll_feed(deps.factory, feed_id, force=True)]  # FeedNotFound for an unknown id
    with deps.factory() as session:
        due = due_feeds(session, utcnow())
    return [poll_feed(deps.factory, one) for one in due]
