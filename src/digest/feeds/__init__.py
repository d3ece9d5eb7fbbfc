"""Feeds: the publisher's feeds, registered once and polled, so stories arrive by
themselves and the next scheduled edition finds them.

- `registry`: add, list, change, pause, resume, remove a feed (the writer of its settings
  and of whether it is polled)
- `poll`: one poll of one feed: claim it, fetch it conditionally (`infra.fetch`), file its
  items as stories (`stories.upsert_stories`, by guid and URL), record how it went
  (backoff, Retry-After, 301, 410, pausing itself after failures in a row)
- `websub`: subscribe at the hub a feed advertises, answer its verification, check its
  pushes' signatures (the writer of the subscription's state)
- `rules`: pure: when to poll next, what an item becomes under a feed's mapping
"""

from digest.feeds.poll import CLAIM_SECONDS, POLL_SECONDS, POLLS, PollResult, due_feeds, file_pushed, poll_feed
from digest.feeds.registry import (
    FeedError,
    FeedExists,
    FeedNotFound,
    FeedSettings,
    add_feed,
    check_feed,
    edit_feed,
    feed_state,
    get_feed,
    list_feeds,
    new_in_last_poll,
    remove_feed,
    set_active,
)
from digest.feeds.rules import (
    BACKOFF_CAP,
    DEFAULT_EVERY_MINUTES,
    EVERY_MINUTES_MAX,
    EVERY_MINUTES_MIN,
    MAX_FAILURES,
    Mapping,
    apply_mapping,
    next_poll,
    retry_after,
)
from digest.feeds.websub import CALLBACK_PATH, needs_subscription, signature_matches, subscribe, verify

__all__ = [
    "BACKOFF_CAP", "CALLBACK_PATH", "CLAIM_SECONDS", "DEFAULT_EVERY_MINUTES", "EVERY_MINUTES_MAX", "EVERY_MINUTES_MIN",
    "MAX_FAILURES", "POLLS", "POLL_SECONDS", "FeedError", "FeedExists", "FeedNotFound", "FeedSettings", "Mapping",
    "PollResult", "add_feed", "apply_mapping", "check_feed", "due_feeds", "edit_feed", "feed_state", "file_pushed",
    "get_feed", "list_feeds", "needs_subscription", "new_in_last_poll", "next_poll", "poll_feed", "remove_feed",
    "retry_after", "set_active", "signature_matches", "subscribe", "verify",
]
