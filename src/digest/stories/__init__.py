"""Stories in: read feeds, JSON and plain-text articles, and upsert them by URL."""

from digest.stories.ingest import IngestResult, ingest_source, load_source, upsert_stories
from digest.stories.parse import ParseError, StoryIn

__all__ = ["IngestResult", "ParseError", "StoryIn", "ingest_source", "load_source", "upsert_stories"]
