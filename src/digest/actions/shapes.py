"""The stable JSON shapes the CLI (--json) and the API print. Keys are added, never renamed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import object_session

from digest.editions import ab, newsletter_brand, newsletter_state, sends_in_words
from digest.readers import ImportReport, ReaderHistory
from digest.staff import account_status
from digest.store import Edition, Feed, Newsletter, Story, Subscriber, User


def story_json(story: Story) -> dict[str, Any]:
    return {
        "id": story.id, "url": story.url, "title": story.title, "summary": story.summary,
        "published_at": story.published_at.isoformat(), "topics": story.topics or [],
        "featured": story.featured, "pinned": story.pinned, "status": story.status.value,
        "author": story.author, "image_url": story.image_url,
        "image_width": story.image_width, "image_height": story.image_height,
    }


def feed_json(feed: Feed, stories: int) -> dict[str, Any]:
    """A registered feed and its health: `stories` it brought in all; `paused_reason` when
    it stopped itself (410, failures in a row), None when staff paused it or it runs."""
    return {
        "id": feed.id, "url": feed.url, "every_minutes": feed.every_minutes, "active": feed.active,
        "paused_reason": feed.paused_reason, "topics": feed.topics or [],
        "category_topics": feed.category_topics or {}, "featured": feed.featured,
        "featured_categories": feed.featured_categories or [],
        "last_fetched_at": _iso(feed.last_fetched_at), "last_status": feed.last_status,
        "last_error": feed.last_error, "failures": feed.failures,
        "next_poll_at": _iso(feed.next_poll_at) if feed.active else None, "stories": stories,
    }


def edition_json(edition: Edition) -> dict[str, Any]:
    return {
        "id": edition.id, "subject": edition.subject, "status": edition.status.value,
        "send_at": edition.send_at.isoformat(), "topics": edition.topics or [],
        "max_stories": edition.max_stories, "newsletter_id": edition.newsletter_id,
        "note": edition.note, "status_reason": edition.status_reason,
        "story_triggered": edition.story_triggered,
        "ab": ab_json(edition),
    }


def ab_json(edition: Edition) -> dict[str, Any] | None:
    """An edition's subject test as asked for, and its decision once made; None: no test."""
    test = ab.get_ab(object_session(edition), edition.id) if object_session(edition) is not None else None
    if test is None:
        return None
    return {"subject": edition.subject, "alternative": test.alternative, "share": test.share,
            "wait_minutes": test.wait_minutes, "decided_at": _iso(test.decided_at),
            "winner_variant": test.winner_variant, "reason_code": test.reason_code, "reason": test.reason}


def newsletter_json(newsletter: Newsletter) -> dict[str, Any]:
    return {
        "id": newsletter.id, "slug": newsletter.slug, "name": newsletter.name, "cron": newsletter.cron,
        "timezone": newsletter.timezone, "topics": newsletter.topics or [],
        "max_stories": newsletter.max_stories, "min_stories": newsletter.min_stories,
        "subject_template": newsletter.subject_template, "sender_name": newsletter.sender_name,
        "active": newsletter.active, "local_time": newsletter.local_time,
        "window_hours": newsletter.window_hours, "new_editions": newsletter.new_editions.value,
        "state": newsletter_state(newsletter), "archived_at": _iso(newsletter.archived_at),
        "schedule": sends_in_words(newsletter),
        "trigger_stories": newsletter.trigger_stories, "trigger_every_minutes": newsletter.trigger_every_minutes,
        "trigger_hold_minutes": newsletter.trigger_hold_minutes, "utm_tags": newsletter.utm_tags,
        "engagement_order": newsletter.engagement_order,
        "click_history": newsletter.click_history, "open_pixel": newsletter.open_pixel,
        "brand": newsletter_brand(newsletter).as_json(),
    }


def subscriber_json(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.id, "email": subscriber.email, "name": subscriber.name,
        "status": subscriber.status.value, "topics": subscriber.topics,
        "created_at": subscriber.created_at.isoformat(),
        "confirmed_at": subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def reader_json(subscriber: Subscriber, newsletter_ids: list[int]) -> dict[str, Any]:
    """A reader as staff see them: `subscriber_json` and what else the reader pages show."""
    return {
        **subscriber_json(subscriber), "newsletters": newsletter_ids, "frequency": subscriber.frequency.value,
        "paused_until": _iso(subscriber.paused_until), "timezone": subscriber.timezone,
        "unsubscribed_at": _iso(subscriber.unsubscribed_at), "unsubscribe_channel": subscriber.unsubscribe_channel,
        "erased_at": _iso(subscriber.erased_at), "soft_bounces": subscriber.soft_bounces,
        "consent_source": subscriber.consent_source,
    }


def reader_history_json(history: ReaderHistory) -> dict[str, Any]:
    """A reader with every delivery (newest first), consent event (oldest first), notice and
    bounce or complaint."""
    return {
        **reader_json(history.subscriber, [n.id for n in history.newsletters]),
        "deliveries": [{"id": d.delivery_id, "edition_id": d.edition_id, "subject": d.subject, "status": d.status,
                        "at": _iso(d.at), "error_code": d.error_code, "error": d.error} for d in history.deliveries],
        "consent": [{"at": _iso(c.at), "kind": c.kind, "channel": c.channel, "form": c.form,
                     "consent_version": c.consent_version, "ip": c.ip, "user_agent": c.user_agent,
                     "detail": c.detail} for c in history.consent],
        "notices": [{"id": n.id, "kind": n.kind, "status": n.status.value, "sent_at": _iso(n.sent_at),
                     "error_code": n.error_code.value if n.error_code else None, "error": n.last_error}
                    for n in history.notices],
        "feedback": [{"at": _iso(f.at), "kind": f.kind, "about": f.about, "detail": f.detail}
                     for f in history.feedback],
        "delivery_months": [m.as_json() for m in history.compacted],
    }


def import_json(report: ImportReport) -> dict[str, Any]:
    """What an import did, and every row it refused or left alone, by line."""
    return {
        "rows": report.rows, "imported": report.imported, "duplicates": report.duplicates,
        "suppressed": report.suppressed, "rejected": len(report.errors) - report.suppressed,
        "errors": [{"line": line, "error": message} for line, message in sorted(report.errors)],
        "skipped": [{"line": line, "reason": message} for line, message in report.skipped],
    }


def user_json(user: User) -> dict[str, Any]:
    """A staff account; never its password or hash."""
    return {
        "id": user.id, "email": user.email, "role": user.role.value, "status": account_status(user),
        "must_change_password": user.must_change_password, "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
    }
