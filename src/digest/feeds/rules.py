"""The pure half of polling: when to look next, and what an item becomes. No database, no
network: every rule here is a function of its arguments."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from digest.stories import StoryIn

EVERY_MINUTES_MIN = 1
EVERY_MINUTES_MAX = 24 * 60
DEFAULT_EVERY_MINUTES = 15
# Failures in a row back off exponentially from the feed's own interval up to this; after
# MAX_FAILURES in a row the feed pauses itself (about a day and a half at 15 minutes),
# with the reason shown on /ops and the feeds page.
BACKOFF_CAP = timedelta(hours=6)
MAX_FAILURES = 8
# A server's Retry-After is honoured up to a day; a longer one is not a pause we agreed to.
RETRY_AFTER_CAP = timedelta(hours=24)


def next_poll(now: datetime, every_minutes: int, failures: int) -> datetime:
    """When to poll again: the feed's interval after a good poll; after `failures` failed
    polls in a row, that interval doubled per failure, never more than BACKOFF_CAP."""
    interval = timedelta(minutes=every_minutes)
    if failures <= 0:
        return now + interval
    return now + min(interval * 2 ** min(failures, 20), max(BACKOFF_CAP, interval))


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (delta seconds or an HTTP date) as a wait, at most RETRY_AFTER_CAP;
    None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        wait = timedelta(seconds=int(text[:9]))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        wait = when - now
    return max(timedelta(0), min(wait, RETRY_AFTER_CAP))


@dataclass(frozen=True)
class Mapping:
    """How a feed's items become stories: topics every item gets; a category -> topic map
    (when set, only mapped categories become topics); every item featured, or those in
    `featured_categories`. Category names compare without case."""

    topics: tuple[str, ...] = ()
    category_topics: dict[str, str] = field(default_factory=dict)
    featured: bool = False
    featured_categories: tuple[str, ...] = ()


def apply_mapping(story: StoryIn, mapping: Mapping) -> StoryIn:
    """The story as this feed files it. `featured` stays None (the editor's choice is kept)
    unless the feed or one of its categories marks it."""
    categories = [c.strip().lower() for c in story.categories]
    if mapping.category_topics:
        wanted = {k.strip().lower(): v for k, v in mapping.category_topics.items()}
        mapped = [wanted[c] for c in categories if c in wanted]
    else:
        mapped = list(story.topics)
    topics = list(dict.fromkeys([*mapped, *mapping.topics]))
    marked = {c.strip().lower() for c in mapping.featured_categories}
    featured = story.featured
    if mapping.featured or marked.intersection(categories):
        featured = True
    return replace(story, topics=topics, featured=featured)


def item_key(story: StoryIn) -> str:
    """How a feed names its item across polls: its guid, else its URL."""
    return story.guid or story.url
