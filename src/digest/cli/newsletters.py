"""`digest newsletters`: recurring newsletters and their schedules."""

from __future__ import annotations

from typing import Annotated

import typer

from digest import actions
from digest.cli.common import ACTOR, deps, out, print_json, require_database, table
from digest.editions import list_newsletters
from digest.readers import subscriber_counts
from digest.store import session_scope

app = typer.Typer(no_args_is_help=True, help="Recurring newsletters and their schedules.")


@app.command("add")
def newsletters_add(
    slug: str,
    name: Annotated[str, typer.Option(help="Shown to readers, e.g. 'Morning Briefing'.")],
    cron: Annotated[str, typer.Option(help="Five-field cron in --tz, e.g. '0 7 * * *'.")],
    tz: Annotated[str, typer.Option(help="IANA zone, e.g. Europe/Kyiv.")] = "UTC",
    topics: Annotated[str | None, typer.Option(help="Comma-separated; default all.")] = None,
    max_stories: Annotated[int, typer.Option(help="Most stories per edition.")] = 5,
    min_stories: Annotated[int, typer.Option(help="Fewer than this and the edition is skipped.")] = 1,
    subject: Annotated[str, typer.Option(
        help="Subject template: {{ newsletter }}, {{ date }}, {{ weekday }}.")] = "{{ newsletter }}: {{ date }}",
    sender_name: Annotated[str | None, typer.Option(help="From name for this newsletter.")] = None,
    local_time: Annotated[bool, typer.Option("--local-time",
                                             help="Deliver at the cron's hour in each reader's zone.")] = False,
    subscribe_existing: Annotated[bool, typer.Option(
        "--subscribe-existing", help="Subscribe the active readers whose topics match (each gets a consent "
                                     "event); without it the newsletter starts with no reader.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Add a recurring newsletter; its editions are created ahead by beat."""
    data = actions.newsletters.add_newsletter(
        deps(), ACTOR, slug=slug, name=name, cron=cron, timezone=tz, topics=topics, max_stories=max_stories,
        min_stories=min_stories, subject_template=subject, sender_name=sender_name, local_time=local_time,
        subscribe_existing=subscribe_existing)
    if as_json:
        print_json(data)
    else:
        out.print(f"newsletter {data['slug']} (id {data['id']}): {data['cron']} {data['timezone']}, "
                  f"{data['subscribers']} reader{'s' if data['subscribers'] != 1 else ''}", markup=False)


@app.command("list")
def newsletters_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List newsletters."""
    require_database()
    with session_scope() as session:
        counts = subscriber_counts(session)
        rows = [{**actions.newsletter_json(n), "subscribers": counts.get(n.id, 0)} for n in list_newsletters(session)]
    if as_json:
        print_json(rows)
        return
    out.print(table(("id", "slug", "name", "schedule", "topics", "readers"),
                    ((r["id"], r["slug"], r["name"], f"{r['cron']} {r['timezone']}", ", ".join(r["topics"]),
                      r["subscribers"]) for r in rows)))
