"""/api/v1/newsletters: list, read, create and change recurring newsletters; pause, resume,
archive and restore them."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from digest import actions
from digest.editions import KEEP, NewsletterChanges, list_newsletters
from digest.mail import check_brand
from digest.readers import subscriber_counts
from digest.web.api.models import NewsletterIn, NewsletterPatch, PathId
from digest.web.deps import ApiEditor, ApiStaff, ServicesDep, actor

router = APIRouter(prefix="/newsletters", tags=["newsletters"])


@router.get("")
def newsletters(services: ServicesDep, user: ApiStaff) -> list[dict[str, Any]]:
    """Every newsletter (archived ones too: see `state`), with `subscribers`: its active readers."""
    with services.factory() as session:
        counts = subscriber_counts(session)
        return [{**actions.newsletter_json(n), "subscribers": counts.get(n.id, 0)} for n in list_newsletters(session)]


@router.get("/{newsletter_id}")
def newsletter(services: ServicesDep, user: ApiStaff, newsletter_id: PathId) -> dict[str, Any]:
    """One newsletter, with `subscribers` and `active` (and `state`: active, paused or archived)."""
    with services.factory() as session:
        return actions.newsletters.newsletter_detail(session, newsletter_id)


@router.post("", status_code=201)
def add_newsletter(services: ServicesDep, user: ApiEditor, body: NewsletterIn) -> dict[str, Any]:
    return actions.newsletters.add_newsletter(
        services.deps(), actor(user, "api"), slug=body.slug, name=body.name, cron=body.cron, timezone=body.timezone,
        topics=body.topics, max_stories=body.max_stories, min_stories=body.min_stories,
        subject_template=body.subject_template, sender_name=body.sender_name,
        subscribe_existing=body.subscribe_existing, window_hours=body.window_hours, local_time=body.local_time,
        new_editions=body.new_editions, trigger_stories=body.trigger_stories,
        trigger_every_minutes=body.trigger_every_minutes, trigger_hold_minutes=body.trigger_hold_minutes)


@router.patch("/{newsletter_id}")
def patch_newsletter(services: ServicesDep, user: ApiEditor, newsletter_id: PathId,
                     body: NewsletterPatch) -> dict[str, Any]:
    """Change the fields given; answers the newsletter as changed (with its `brand`). Its
    upcoming editions follow (a new schedule re-times them; see docs/newsletters.md). 400
    with `fields` naming each bad input; 422 for a refused brand value (`fields` names it);
    409 for an archived newsletter."""
    given = body.model_fields_set - {"brand"}
    brand = body.brand.model_dump(include=body.brand.model_fields_set) if body.brand is not None else {}
    check_brand(brand)  # a refused brand changes nothing else either
    changes = NewsletterChanges(
        name=body.name, cron=body.cron if "cron" in given else KEEP, timezone=body.timezone,
        max_stories=body.max_stories,
        min_stories=body.min_stories, window_hours=body.window_hours, subject_template=body.subject_template,
        local_time=body.local_time, new_editions=body.new_editions, utm_tags=body.utm_tags,
        engagement_order=body.engagement_order,
        click_history=body.click_history, open_pixel=body.open_pixel,
        trigger_stories=body.trigger_stories if "trigger_stories" in given else KEEP,
        trigger_every_minutes=body.trigger_every_minutes, trigger_hold_minutes=body.trigger_hold_minutes,
        sender_name=body.sender_name if "sender_name" in given else KEEP,
        topics=body.topics if "topics" in given else KEEP)
    answer: dict[str, Any] = {}
    if given or not brand:
        answer = actions.newsletters.edit(services.deps(), actor(user, "api"), newsletter_id,
                                          changes).data["newsletter"]
    if brand:
        answer = actions.newsletters.brand(services.deps(), actor(user, "api"), newsletter_id, brand).data["newsletter"]
    return answer


@router.post("/{newsletter_id}/{action}")
def newsletter_state(services: ServicesDep, user: ApiEditor, newsletter_id: PathId,
                     action: Literal["pause", "resume", "archive", "restore"]) -> dict[str, Any]:
    """pause (no new editions; upcoming ones wait as drafts), resume, archive (paused for
    good, upcoming editions cancelled, history kept) or restore (back, paused). Answers the
    newsletter with `changed` (false: it was already so) and `editions` (how many moved)."""
    outcome = actions.newsletters.set_state(services.deps(), actor(user, "api"), newsletter_id, action)
    return {**outcome.data["newsletter"], "changed": outcome.changed, "editions": outcome.count}
