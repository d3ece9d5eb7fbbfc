"""/api/v1/newsletters: list and create recurring newsletters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from digest import actions
from digest.editions import list_newsletters
from digest.readers import subscriber_counts
from digest.web.api.models import NewsletterIn
from digest.web.deps import ApiEditor, ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/newsletters", tags=["newsletters"])


@router.get("")
def newsletters(services: ServicesDep, user: ApiStaff) -> list[dict[str, Any]]:
    """Every newsletter, with `subscribers`: its active readers."""
    with services.factory() as session:
        counts = subscriber_counts(session)
        return [{**actions.newsletter_json(n), "subscribers": counts.get(n.id, 0)} for n in list_newsletters(session)]


@router.post("", status_code=201)
def add_newsletter(services: ServicesDep, user: ApiEditor, body: NewsletterIn) -> dict[str, Any]:
    return actions.newsletters.add_newsletter(
        services.deps(), actor(user, "api"), slug=body.slug, name=body.name, cron=body.cron, timezone=body.timezone,
        topics=body.topics, max_stories=body.max_stories, min_stories=body.min_stories,
        subject_template=body.subject_template, sender_name=body.sender_name,
        subscribe_existing=body.subscribe_existing)
