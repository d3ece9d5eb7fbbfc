"""`digest newsletters`: recurring newsletters and their schedules."""

from __future__ import annotations

from typing import Annotated

import typer

from digest import actions
from digest.cli.common import ACTOR, UserError, deps, out, print_json, require_database, table
from digest.editions import DEFAULT_SUBJECT, KEEP, NewsletterChanges, list_newsletters
from digest.mail import FONTS
from digest.readers import subscriber_counts
from digest.store import session_scope

app = typer.Typer(no_args_is_help=True, help="Recurring newsletters and their schedules.")


@app.command("add")
def newsletters_add(
    slug: str,
    name: Annotated[str, typer.Option(help="Shown to readers, e.g. 'Morning Briefing'.")],
    cron: Annotated[str | None, typer.Option(
        help="Five-field cron in --tz, e.g. '0 7 * * *'; optional with --trigger-stories.")] = None,
    tz: Annotated[str, typer.Option(help="IANA zone, e.g. Europe/Kyiv.")] = "UTC",
    topics: Annotated[str | None, typer.Option(help="Comma-separated; default all.")] = None,
    max_stories: Annotated[int, typer.Option(help="Most stories per edition.")] = 5,
    min_stories: Annotated[int, typer.Option(help="Fewer than this and the edition is skipped.")] = 1,
    subject: Annotated[str, typer.Option(
        help="Subject template: {{ newsletter }}, {{ date }} (2 December 2026), {{ weekday }}.")] = DEFAULT_SUBJECT,
    sender_name: Annotated[str | None, typer.Option(help="From name for this newsletter.")] = None,
    local_time: Annotated[bool, typer.Option("--local-time",
                                             help="Deliver at the cron's hour in each reader's zone.")] = False,
    subscribe_existing: Annotated[bool, typer.Option(
        "--subscribe-existing", help="Subscribe the active readers whose topics match (each gets a consent "
                                     "event); without it the newsletter starts with no reader.")] = False,
    window_hours: Annotated[int, typer.Option(help="Stories published this long before a send qualify.")] = 48,
    new_editions: Annotated[str, typer.Option(
        metavar="scheduled|draft", help="What the schedule makes: editions that go by themselves (scheduled) "
                                        "or drafts an editor schedules.")] = "scheduled",
    trigger_stories: Annotated[int | None, typer.Option(
        help="Also (or, without --cron, only) send when this many new qualifying stories have arrived; "
             "0: no story trigger.")] = None,
    trigger_every: Annotated[int, typer.Option(
        metavar="MINUTES", help="At most one story-triggered edition in this many minutes.")] = 60,
    trigger_hold: Annotated[int, typer.Option(
        metavar="MINUTES", help="A story-triggered edition goes this long after it is made (time to curate).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Add a newsletter: by a cron schedule (editions created ahead by beat), by its stories
    (--trigger-stories), or both."""
    data = actions.newsletters.add_newsletter(
        deps(), ACTOR, slug=slug, name=name, cron=cron, timezone=tz, topics=topics, max_stories=max_stories,
        min_stories=min_stories, subject_template=subject, sender_name=sender_name, local_time=local_time,
        subscribe_existing=subscribe_existing, window_hours=window_hours, new_editions=new_editions,
        trigger_stories=trigger_stories, trigger_every_minutes=trigger_every, trigger_hold_minutes=trigger_hold)
    if as_json:
        print_json(data)
    else:
        out.print(f"newsletter {data['slug']} (id {data['id']}): {data['schedule']}, "
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
    out.print(table(("id", "slug", "name", "schedule", "topics", "readers", "state"),
                    ((r["id"], r["slug"], r["name"], r["schedule"], ", ".join(r["topics"]) or "all",
                      r["subscribers"], r["state"]) for r in rows)))


Ref = Annotated[str, typer.Argument(metavar="SLUG_OR_ID", help="The newsletter's short name or id.")]


@app.command("show")
def newsletters_show(ref: Ref, as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
                     ) -> None:
    """One newsletter: its fields, schedule in words, state and readers."""
    require_database()
    with session_scope() as session:
        data = actions.newsletters.newsletter_detail(session, ref)
    if as_json:
        print_json(data)
        return
    for key in ("id", "slug", "name", "state", "schedule", "cron", "timezone", "topics", "subscribers",
                "min_stories", "max_stories", "window_hours", "subject_template", "sender_name", "local_time",
                "new_editions", "trigger_stories", "trigger_every_minutes", "trigger_hold_minutes", "engagement_order"):
        value = data[key]
        out.print(f"{key:>16}: {', '.join(value) or 'all' if isinstance(value, list) else value}", markup=False)
    brand = ", ".join(f"{key}={value}" for key, value in data["brand"].items() if value is not None)
    out.print(f"{'brand':>16}: {brand or 'default'} (digest newsletters brand)", markup=False)


@app.command("edit")
def newsletters_edit(
    ref: Ref,
    name: Annotated[str | None, typer.Option(help="Shown to readers.")] = None,
    cron: Annotated[str | None, typer.Option(
        help="Five-field cron in the newsletter's zone; '' for none (sent by its stories alone).")] = None,
    tz: Annotated[str | None, typer.Option(help="IANA zone, e.g. Europe/Kyiv.")] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated; 'all' for every topic.")] = None,
    max_stories: Annotated[int | None, typer.Option(help="Most stories per edition.")] = None,
    min_stories: Annotated[int | None, typer.Option(help="Fewer than this and the edition is skipped.")] = None,
    window_hours: Annotated[int | None, typer.Option(help="Stories published this long before a send qualify.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject template.")] = None,
    sender_name: Annotated[str | None, typer.Option(help="From name; '' for the site's name.")] = None,
    local_time: Annotated[bool | None, typer.Option(
        "--local-time/--no-local-time", help="Deliver at the cron's hour in each reader's zone.")] = None,
    new_editions: Annotated[str | None, typer.Option(metavar="scheduled|draft",
                                                     help="What the schedule makes.")] = None,
    trigger_stories: Annotated[int | None, typer.Option(
        help="Send when this many new qualifying stories have arrived; 0: no story trigger.")] = None,
    trigger_every: Annotated[int | None, typer.Option(
        metavar="MINUTES", help="At most one story-triggered edition in this many minutes.")] = None,
    trigger_hold: Annotated[int | None, typer.Option(
        metavar="MINUTES", help="A story-triggered edition goes this long after it is made.")] = None,
    utm_tags: Annotated[bool | None, typer.Option(
        "--utm-tags/--no-utm-tags",
        help="Story links carry utm_source=digest, utm_medium=email, utm_campaign=<slug>.")] = None,
    engagement_order: Annotated[bool | None, typer.Option(
        "--engagement-order/--no-engagement-order",
        help="Stories not pinned go by their topics' recent click-through here (see docs/clicks.md).")] = None,
    click_history: Annotated[bool | None, typer.Option(
        "--click-history/--no-click-history",
        help="Remember the clicks of readers who consent on their preferences page.")] = None,
    open_pixel: Annotated[bool | None, typer.Option(
        "--open-pixel/--no-open-pixel",
        help="Count opens with a 1x1 image (unreliable: Apple Mail loads every image).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the newsletter as a JSON object.")] = False,
) -> None:
    """Change a newsletter; its upcoming editions follow (a new schedule re-times them)."""
    changes = NewsletterChanges(
        name=name, cron=KEEP if cron is None else cron.strip() or None, timezone=tz, max_stories=max_stories,
        min_stories=min_stories, trigger_stories=KEEP if trigger_stories is None else trigger_stories or None,
        trigger_every_minutes=trigger_every, trigger_hold_minutes=trigger_hold,
        window_hours=window_hours, subject_template=subject, local_time=local_time, new_editions=new_editions,
        utm_tags=utm_tags, engagement_order=engagement_order, click_history=click_history, open_pixel=open_pixel,
        sender_name=KEEP if sender_name is None else sender_name or None,
        topics=KEEP if topics is None else None if topics.strip().lower() in ("", "all") else topics)
    if not changes.given():
        raise UserError("nothing to change: give --name, --cron, --tz, --topics, --max-stories, --min-stories, "
                        "--window-hours, --subject, --sender-name, --local-time, --new-editions, "
                        "--trigger-stories, --trigger-every, --trigger-hold, --utm-tags, --engagement-order, "
                        "--click-history or --open-pixel")
    outcome = actions.newsletters.edit(deps(), ACTOR, ref, changes)
    if as_json:
        print_json(outcome.data["newsletter"])
        return
    fields = ", ".join(outcome.data["changed"])
    out.print(f"newsletter {outcome.data['newsletter']['slug']}: {fields + ' changed' if fields else 'nothing changed'}"
              f" ({outcome.data['newsletter']['schedule']})", markup=False)


@app.command("brand")
def newsletters_brand(
    ref: Ref,
    accent_color: Annotated[str | None, typer.Option(
        help="#rrggbb for the kicker, dateline rule and button; at least 4.5:1 on white.")] = None,
    logo_url: Annotated[str | None, typer.Option(
        help="https:// image shown in the masthead instead of the name.")] = None,
    logo_width: Annotated[str | None, typer.Option(metavar="PIXELS", help="The logo's width, 16 to 536.")] = None,
    link_color: Annotated[str | None, typer.Option(
        help="#rrggbb for headlines and footer links; 4.5:1 on white.")] = None,
    font: Annotated[str | None, typer.Option(help=f"One of {', '.join(FONTS)}.")] = None,
    footer_text: Annotated[str | None, typer.Option(help="Plain text above the postal address.")] = None,
    reply_to: Annotated[str | None, typer.Option(help="Reply-To address of its mail.")] = None,
    language: Annotated[str | None, typer.Option(help="Language tag (en, fr-CA, ar): lang and direction.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the newsletter as a JSON object.")] = False,
) -> None:
    """Set a newsletter's brand; each option given is changed ('' puts back the default),
    the rest stay. Without options, print the brand."""
    given = {"accent_color": accent_color, "logo_url": logo_url, "logo_width": logo_width, "link_color": link_color,
             "font": font, "footer_text": footer_text, "reply_to": reply_to, "language": language}
    changes = {name: value for name, value in given.items() if value is not None}
    if changes:
        outcome = actions.newsletters.brand(deps(), ACTOR, ref, changes)
        data, changed = outcome.data["newsletter"], outcome.data["changed"]
    else:
        require_database()
        with session_scope() as session:
            data, changed = actions.newsletters.newsletter_detail(session, ref), None
    if as_json:
        print_json(data)
        return
    if changed is not None:
        fields = ", ".join(changed)
        out.print(f"newsletter {data['slug']}: {fields + ' changed' if fields else 'nothing changed'}", markup=False)
    for key, value in data["brand"].items():
        out.print(f"{key:>12}: {'(default)' if value is None else value}", markup=False)


def _state_command(action: str, done: str, help_text: str) -> None:
    @app.command(action, help=help_text)
    def command(ref: Ref, as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
                ) -> None:
        outcome = actions.newsletters.set_state(deps(), ACTOR, ref, action)
        data = {**outcome.data["newsletter"], "changed": outcome.changed, "editions": outcome.count}
        if as_json:
            print_json(data)
            return
        if not outcome.changed:
            out.print(f"newsletter {data['slug']} was already {data['state']}", markup=False)
            return
        editions = f"; {outcome.count} edition{'s' if outcome.count != 1 else ''} {done}" if outcome.count else ""
        out.print(f"newsletter {data['slug']}: {data['state']}{editions}", markup=False)


_state_command("pause", "held back as drafts",
               "Pause: no new editions; the upcoming scheduled ones wait as drafts until resumed.")
_state_command("resume", "scheduled again or made",
               "Resume: its schedule runs again from now (the occurrences it slept through are not sent).")
_state_command("archive", "cancelled",
               "Archive: paused for good, its editions that have not started cancelled; history kept.")
_state_command("restore", "moved", "Restore an archived newsletter (it comes back paused).")
