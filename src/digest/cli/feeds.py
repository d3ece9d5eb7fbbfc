"""`digest feeds`: the publisher's feeds, registered once and polled by beat."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from digest import actions
from digest.cli.common import ACTOR, deps, out, print_json, require_database, table
from digest.feeds import DEFAULT_EVERY_MINUTES, FeedSettings

app = typer.Typer(no_args_is_help=True, help="The publisher's feeds: registered once, polled by themselves.")

FeedId = Annotated[int, typer.Argument(metavar="ID", help="The feed's id (digest feeds list).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _category_map(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        category, sep, topic = pair.partition("=")
        if not sep or not category.strip() or not topic.strip():
            raise typer.BadParameter(f"{pair!r}: give CATEGORY=TOPIC", param_hint="--map")
        mapping[category.strip()] = topic.strip()
    return mapping


def _poll_line(poll: dict[str, Any]) -> str:
    if poll["outcome"] == "stories":
        return f"{poll['added']} new, {poll['updated']} updated"
    if poll["outcome"] == "not_modified":
        return "not modified"
    if poll["outcome"] == "skipped":
        return "skipped (being polled elsewhere)"
    return f"{poll['outcome']}: {poll['error']}"


@app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's address: RSS, Atom, JSON Feed or a news sitemap.")],
    every: Annotated[int, typer.Option(metavar="MINUTES", help="Poll this often.")] = DEFAULT_EVERY_MINUTES,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics every story gets.")] = None,
    featured: Annotated[bool, typer.Option("--featured", help="Every story of this feed is featured.")] = False,
    featured_categories: Annotated[str | None, typer.Option(
        help="Comma-separated categories whose stories are featured.")] = None,
    category_map: Annotated[list[str] | None, typer.Option(
        "--map", metavar="CATEGORY=TOPIC", help="File a feed category under a topic (repeat); when given, "
                                                "unmapped categories are not topics.")] = None,
    no_poll: Annotated[bool, typer.Option("--no-poll", help="Register only; beat polls it within its tick.")] = False,
    as_json: AsJson = False,
) -> None:
    """Register a feed and poll it once now (its stories, or why it fails, are shown)."""
    require_database()
    data = actions.feeds.add(deps(), ACTOR, url, FeedSettings(
        every_minutes=every, topics=topics, featured=featured, featured_categories=featured_categories,
        category_topics=_category_map(category_map)), poll=not no_poll)
    if as_json:
        print_json(data)
        return
    line = f"feed {data['id']}: {data['url']}, every {data['every_minutes']} min"
    if data["poll"]:
        line += f"; first poll: {_poll_line(data['poll'])}"
    out.print(line, markup=False)


@app.command("list")
def feeds_list(as_json: AsJson = False) -> None:
    """Every feed and its health, those needing a look first."""
    require_database()
    rows = actions.feeds.feeds_json(deps())
    if as_json:
        print_json(rows)
        return
    out.print(table(("id", "url", "every", "state", "last poll", "stories", "last error"),
                    ((r["id"], r["url"], f"{r['every_minutes']} min",
                      "active" if r["active"] else f"paused{': ' + r['paused_reason'] if r['paused_reason'] else ''}",
                      f"{r['last_status'] or 'never'} {r['last_fetched_at'] or ''}".strip(), r["stories"],
                      r["last_error"] or "") for r in rows)))


@app.command("poll")
def feeds_poll(feed_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="One feed (else every due one).")]
               = None, as_json: AsJson = False) -> None:
    """Poll the due feeds now, or one feed (even paused or not due)."""
    require_database()
    results = [actions.feeds.poll_json(r) for r in actions.feeds.poll(deps(), ACTOR, feed_id)]
    if as_json:
        print_json(results if feed_id is None else results[0])
        return
    if not results:
        out.print("no feed is due")
    for poll in results:
        out.print(f"feed {poll['feed_id']}: {_poll_line(poll)}", markup=False)
    if feed_id is not None and results[0]["outcome"] in ("failed", "gone", "throttled"):
        raise typer.Exit(1)


def _state(feed_id: int, action: str, as_json: bool) -> None:
    require_database()
    outcome = actions.feeds.set_state(deps(), ACTOR, feed_id, action)
    if as_json:
        print_json(outcome.data["feed"])
        return
    word = {"pause": "paused", "resume": "resumed"}[action]
    out.print(f"feed {feed_id}: {word}" if outcome.changed else f"feed {feed_id}: already {word}")


@app.command("pause")
def feeds_pause(feed_id: FeedId, as_json: AsJson = False) -> None:
    """Stop polling a feed (its stories stay)."""
    _state(feed_id, "pause", as_json)


@app.command("resume")
def feeds_resume(feed_id: FeedId, as_json: AsJson = False) -> None:
    """Poll a paused feed again, from now."""
    _state(feed_id, "resume", as_json)


@app.command("remove")
def feeds_remove(feed_id: FeedId, as_json: AsJson = False) -> None:
    """Forget a feed; the stories it brought stay."""
    require_database()
    data = actions.feeds.remove(deps(), ACTOR, feed_id)
    if as_json:
        print_json(data)
        return
    out.print(f"feed {feed_id} removed: {data['url']} ({data['stories']} stories kept)", markup=False)
