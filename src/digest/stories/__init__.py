"""Stories: read feeds, JSON, article pages and plain-text articles, upsert them by URL,
and keep the site-wide flags editors set (featured, pinned, retracted).

- `parse`: bytes in, `StoryIn`s out (feedparser for RSS/Atom); no database
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

__all__ = ["IngestResult", "ParseError", "StoryFilter", "StoryIn", "get_story", "ingest_source", "load_source",
           "parse_datetime", "parse_feed_source", "parse_json", "parse_source", "search_stories", "set_story_flags", "story_from_fields",
           "upsert_stories"]
