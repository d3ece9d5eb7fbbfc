"""Stories: read feeds, JSON, article pages and plain-text articles, upsert them by URL,
and keep the site-wide flags editors set (featured, pinned, retracted).

- `parse`: bytes in, `StoryIn`s out (feedparser for RSS/Atom); no database
- `formats`: JSON Feed, Google News sitemaps, and the rules every feed's items share
  (skip a bad item, not the feed; first of each guid; at most FEED_ITEMS_MAX)
- `urls`: `canonical_url`, one address per article (no tracking parameters)
- `article`: an article page (HTML) as one story (JSON-LD, OpenGraph, trafilatura); no database
- `ingest`: fetch a source (`infra.fetch`), parse it, upsert by URL (never duplicates,
  never un-retracts)
- `library`: search stories, set their flags
"""

from digest.stories.ingest import (
    IngestResult,
    ingest_source,
    load_source,
    parse_feed_source,
    parse_source,
    upsert_stories,
)
from digest.stories.library import StoryFilter, get_story, search_stories, set_story_flags
from digest.stories.parse import ParseError, StoryIn, parse_datetime, parse_json, story_from_fields
from digest.stories.formats import FeedHub, feed_hub
from digest.stories.urls import canonical_url

__all__ = ["FeedHub", "IngestResult", "ParseError", "StoryFilter", "StoryIn", "canonical_url", "feed_hub", "get_story", "ingest_source",
           "load_source", "parse_datetime", "parse_feed_source", "parse_json", "parse_source", "search_stories",
           "set_story_flags", "story_from_fields", "upsert_stories"]
