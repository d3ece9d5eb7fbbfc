"""`digest stories`: ingest feeds and articles, list stories, set their flags."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from digest import actions
from digest.cli.common import ACTOR, UserError, deps, out, print_json, require_database, table
from digest.store import Story, session_scope

app = typer.Typer(no_args_is_help=True, help="Stories: ingest feeds and articles, list, flag.")


@app.command("ingest")
def stories_ingest(
    source: Annotated[str, typer.Argument(
        help="Path or http(s) URL of an RSS/Atom feed, a JSON list or a plain-text article.")],
    url: Annotated[str | None, typer.Option(help="Canonical URL for a plain-text article.")] = None,
) -> None:
    """Add or update stories (matched by URL, never duplicated)."""
    result = actions.stories.ingest(deps(), ACTOR, source, url=url)
    out.print(f"{result.added} added, {result.updated} updated from {source}", markup=False)


@app.command("list")
def stories_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List stories, newest first."""
    require_database()
    with session_scope() as session:
        rows = [actions.story_json(s) for s in session.scalars(
            select(Story).order_by(Story.published_at.desc(), Story.id.desc()))]
    if as_json:
        print_json(rows)
        return
    out.print(table(("id", "published", "title", "topics", "featured"),
                    ((r["id"], r["published_at"][:16], r["title"], ", ".join(r["topics"]), "★" if r["featured"] else "")
                     for r in rows)))


@app.command("update")
def stories_update(
    story_id: Annotated[int, typer.Argument(metavar="ID")],
    featured: Annotated[bool | None, typer.Option("--featured/--not-featured", help="Feature it, or not.")] = None,
    pinned: Annotated[bool | None, typer.Option("--pinned/--not-pinned", help="Pin it to every edition.")] = None,
    status: Annotated[str | None, typer.Option(help="published or retracted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the story as JSON.")] = False,
) -> None:
    """Feature, pin, retract or restore a story (what editors do on the stories page)."""
    if featured is None and pinned is None and status is None:
        raise UserError("nothing to change: give --featured, --pinned or --status")
    story = actions.stories.flag(deps(), ACTOR, story_id, featured=featured, pinned=pinned, status=status)
    if as_json:
        print_json(story)
    else:
        out.print(f"story {story['id']}: featured {story['featured']}, pinned {story['pinned']}, "
                  f"{story['status']}", markup=False)
