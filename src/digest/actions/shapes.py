"""The stable JSON shapes the CLI (--json) and the API print. Keys are added, never renamed."""

from __future__ import annotations

from typing import Any

from digest.staff import account_status
from digest.store import Edition, Newsletter, Story, Subscriber, User


def story_json(story: Story) -> dict[str, Any]:
    return {
        "id": story.id, "url": story.url, "title": story.title, "summary": story.summary,
        "published_at": story.published_at.isoformat(), "topics": story.topics or [],
        "featured": story.featured, "pinned": story.pinned, "status": story.status.value,
        "author": story.author, "image_url": story.image_url,
    }


def edition_json(edition: Edition) -> dict[str, Any]:
    return {
        "id": edition.id, "subject": edition.subject, "status": edition.status.value,
        "send_at": edition.send_at.isoformat(), "topics": edition.topics or [],
        "max_stories": edition.max_stories, "newsletter_id": edition.newsletter_id,
        "note": edition.note, "status_reason": edition.status_reason,
    }


def newsletter_json(newsletter: Newsletter) -> dict[str, Any]:
    return {
        "id": newsletter.id, "slug": newsletter.slug, "name": newsletter.name, "cron": newsletter.cron,
        "timezone": newsletter.timezone, "topics": newsletter.topics or [],
        "max_stories": newsletter.max_stories, "min_stories": newsletter.min_stories,
        "subject_template": newsletter.subject_template, "sender_name": newsletter.sender_name,
        "active": newsletter.active, "local_time": newsletter.local_time,
    }


def subscriber_json(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.id, "email": subscriber.email, "name": subscriber.name,
        "status": subscriber.status.value, "topics": subscriber.topics,
        "created_at": subscriber.created_at.isoformat(),
        "confirmed_at": subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else None,
    }


def user_json(user: User) -> dict[str, Any]:
    """A staff account; never its password or hash."""
    return {
        "id": user.id, "email": user.email, "role": user.role.value, "status": account_status(user),
        "must_change_password": user.must_change_password, "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
    }
