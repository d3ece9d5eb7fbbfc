"""/api/v1/feeds: register the publisher's feeds, see their health, change, pause, resume,
remove them and poll one now."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from digest import actions
from digest.feeds import FeedSettings
from digest.web.api.models import FeedIn, FeedPatch, PathId
from digest.web.deps import ApiEditor, ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/feeds", tags=["feeds"])


@router.get("")
def feeds(services: ServicesDep, user: ApiStaff) -> list[dict[str, Any]]:
    """Every feed and its health (`last_status`, `last_error`, `failures`, `paused_reason`),
    those that stopped by themselves first, then failing ones."""
    return actions.feeds.feeds_json(services.deps())


@router.get("/{feed_id}")
def feed(services: ServicesDep, user: ApiStaff, feed_id: PathId) -> dict[str, Any]:
    with services.factory() as session:
        return actions.feeds.feed_detail(session, feed_id)


@router.post("", status_code=201)
def add_feed(services: ServicesDep, user: ApiEditor, body: FeedIn) -> dict[str, Any]:
    """Register a feed and (unless `poll` is false) poll it once now: `poll` on the answer
    says how (`outcome`, `added`, `error`). 409 when the URL is already registered."""
    return actions.feeds.add(services.deps(), actor(user, "api"), body.url, FeedSettings(
        every_minutes=body.every_minutes, topics=body.topics, category_topics=body.category_topics,
        featured=body.featured, featured_categories=body.featured_categories), poll=body.poll)


@router.patch("/{feed_id}")
def patch_feed(services: ServicesDep, user: ApiEditor, feed_id: PathId, body: FeedPatch) -> dict[str, Any]:
    settings = FeedSettings(every_minutes=body.every_minutes, topics=body.topics,
                            category_topics=body.category_topics, featured=body.featured,
                            featured_categories=body.featured_categories)
    return actions.feeds.edit(services.deps(), actor(user, "api"), feed_id, settings, body.url).data["feed"]


@router.delete("/{feed_id}")
def remove_feed(services: ServicesDep, user: ApiEditor, feed_id: PathId) -> dict[str, Any]:
    """Forget the feed; the stories it brought stay. Answers the feed as it was."""
    return actions.feeds.remove(services.deps(), actor(user, "api"), feed_id)


@router.post("/{feed_id}/poll")
def poll_feed(services: ServicesDep, user: ApiStaff, feed_id: PathId) -> dict[str, Any]:
    """Poll it now, even paused or not due: `outcome` (stories, not_modified, failed,
    throttled, gone, skipped), `added`, `updated`, `error`."""
    [result] = actions.feeds.poll(services.deps(), actor(user, "api"), feed_id)
    return actions.feeds.poll_json(result)


@router.post("/{feed_id}/{action}")
def feed_action(services: ServicesDep, user: ApiEditor, feed_id: PathId,
                action: Literal["pause", "resume"]) -> dict[str, Any]:
    outcome = actions.feeds.set_state(services.deps(), actor(user, "api"), feed_id, action)
    return {"status": "ok" if outcome.changed else "unchanged", "feed": outcome.data["feed"]}
