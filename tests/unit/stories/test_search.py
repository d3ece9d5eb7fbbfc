"""The editor's story search: what is typed is looked for as it is, `%` and `_` included."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from digest.stories import StoryFilter, ingest_source, search_stories

TITLES = ["Turnout hit 100% in one town", "Turnout hit 1000 in one town", "The snake_case debate",
          "The snakeXcase debate"]


def test_percent_and_underscore_are_not_wildcards(session: Session, tmp_path: Path) -> None:
    source = tmp_path / "stories.json"
    source.write_text(json.dumps([{"title": t, "url": f"https://news.example.com/{i}", "summary": "",
                                   "published_at": "2026-11-30T08:00:00Z"} for i, t in enumerate(TITLES)]))
    ingest_source(session, str(source))
    session.commit()

    def titles(q: str) -> list[str]:
        found, _ = search_stories(session, StoryFilter(q=q))
        return sorted(s.title for s in found)

    assert titles("100%") == ["Turnout hit 100% in one town"]
    assert titles("snake_case") == ["The snake_case debate"]
    assert titles("%") == ["Turnout hit 100% in one town"]
    assert titles("_") == ["The snake_case debate"]
    assert titles("turnout") == sorted(TITLES[:2])
