"""`digest editions`: create, edit, preview, list, release, and steer editions through
their states (the same actions as the editor and ops pages and the API)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from digest import actions
from digest.clicks import edition_stats
from digest.cli.common import ACTOR, UserError, deps, out, print_json, require_database, table
from digest.editions import KEEP, EditionChanges, list_editions, parse_send_at, preview_edition
from digest.observe import edition_audiences
from digest.store import session_scope, utcnow
from digest.worker import release_due_editions

app = typer.Typer(no_args_is_help=True, help="Editions: create, edit, preview, list, release, steer.")
EditionId = Annotated[int, typer.Argument(metavar="ID")]


@app.command("create")
def editions_create(
    subject: Annotated[str, typer.Option(help="The email subject.")],
    at: Annotated[str | None, typer.Option(help="When to send, ISO 8601; default now.")] = None,
    tz: Annotated[str | None, typer.Option(help="IANA zone for a naive --at, e.g. Europe/Kyiv.")] = None,
    topics: Annotated[str | None, typer.Option(help="Comma-separated topics; default all.")] = None,
    max_stories: Annotated[int, typer.Option(help="Most stories in the digest.")] = 5,
    window_hours: Annotated[int, typer.Option(help="Non-pinned stories must be this recent.")] = 48,
    draft: Annotated[bool, typer.Option(help="Create as a draft instead of scheduling it.")] = False,
    newsletter: Annotated[str | None, typer.Option(
        metavar="SLUG", help="For this newsletter's readers (default: every active reader).")] = None,
    ab_subject: Annotated[str | None, typer.Option(
        metavar="TEXT", help="A second subject to test against --subject.")] = None,
    ab_share: Annotated[int | None, typer.Option(
        metavar="PCT", help="Percent of the readers in the subject test, 1-50 (default 20).")] = None,
    ab_wait: Annotated[int | None, typer.Option(
        metavar="MINUTES", help="Minutes before the better subject goes to the rest, 1-1440 (default 60).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Create an edition; prints its id. Without --at it is due at once (and released at
    once, unless --draft). With --ab-subject, a share of its readers gets each subject
    first, and the one with more human clicks goes to the rest (docs/ab.md)."""
    world = deps()
    data = actions.editions.create_edition(world, ACTOR, subject=subject, send_at=parse_send_at(at, tz, utcnow()),
                                           topics=topics, max_stories=max_stories, window_hours=window_hours,
                                           draft=draft, newsletter=newsletter, ab_subject=ab_subject,
                                           ab_share=ab_share, ab_wait=ab_wait)
    if as_json:
        print_json(data)
    else:
        sys.stdout.write(f"{data['id']}\n")


@app.command("edit")
def editions_edit(
    edition_id: EditionId,
    subject: Annotated[str | None, typer.Option(help="A new subject.")] = None,
    at: Annotated[str | None, typer.Option(help="A new send time, ISO 8601; one that has passed: now.")] = None,
    tz: Annotated[str | None, typer.Option(help="IANA zone for a naive --at, e.g. Europe/Kyiv.")] = None,
    max_stories: Annotated[int | None, typer.Option(help="Most stories in the digest.")] = None,
    window_hours: Annotated[int | None, typer.Option(help="Non-pinned stories must be this recent.")] = None,
    newsletter: Annotated[str | None, typer.Option(
        metavar="SLUG", help="A one-off's newsletter: its readers get it.")] = None,
    no_newsletter: Annotated[bool, typer.Option(
        "--no-newsletter", help="A one-off for every active reader again.")] = False,
    ab_subject: Annotated[str | None, typer.Option(metavar="TEXT", help="A subject test's second subject.")] = None,
    ab_share: Annotated[int | None, typer.Option(metavar="PCT", help="Percent of the readers in the test.")] = None,
    ab_wait: Annotated[int | None, typer.Option(metavar="MINUTES", help="Minutes before it is decided.")] = None,
    no_ab: Annotated[bool, typer.Option("--no-ab", help="Drop the subject test.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the edition as a JSON object.")] = False,
) -> None:
    """Change a draft or scheduled edition (refused once it is sending). A scheduled edition
    moved to a time that has passed goes out now."""
    if tz is not None and at is None:
        raise UserError("--tz is the zone of --at: give --at with it")
    if newsletter is not None and no_newsletter:
        raise UserError("give --newsletter or --no-newsletter, not both")
    if no_ab and (ab_subject is not None or ab_share is not None or ab_wait is not None):
        raise UserError("give --no-ab or the test's options, not both")
    changes = EditionChanges(
        subject=subject, send_at=parse_send_at(at, tz, utcnow()) if at is not None else None,
        max_stories=max_stories, window_hours=window_hours,
        newsletter=None if no_newsletter else newsletter if newsletter is not None else KEEP,
        ab_subject=None if no_ab else ab_subject if ab_subject is not None else KEEP, ab_share=ab_share,
        ab_wait=ab_wait)
    if not changes.given():
        raise UserError("nothing to change: give --subject, --at, --max-stories, --window-hours, --newsletter "
                        "or a subject test's --ab-subject, --ab-share, --ab-wait, --no-ab")
    outcome = actions.editions.edit(deps(), ACTOR, edition_id, changes)
    if as_json:
        print_json(outcome.data["edition"])
        return
    fields = ", ".join(outcome.data["changed"])
    now = " (its time has come: going out now)" if outcome.data["sending_now"] else ""
    out.print(f"edition {edition_id}: {fields + ' changed' if fields else 'nothing changed'}{now}", markup=False)


@app.command("preview")
def editions_preview(
    edition_id: EditionId,
    email: Annotated[str | None, typer.Option(help="Preview as this subscriber.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the HTML part here.")] = None,
) -> None:
    """Show what a reader will receive: the subject and text part; the HTML with --out."""
    require_database()
    with session_scope() as session:
        subject, body_html, body_text = preview_edition(session, edition_id, email)
    if out_file is not None:
        try:
            out_file.write_text(body_html, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {out_file}: {exc.strerror}") from None
    sys.stdout.write(f"Subject: {subject}\n\n{body_text}")
    if out_file is not None:
        sys.stderr.write(f"HTML written to {out_file}\n")


@app.command("list")
def editions_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List editions, latest first."""
    require_database()
    with session_scope() as session:
        editions = list_editions(session)
        audiences = edition_audiences(session, editions, utcnow())
        rows = [{**actions.edition_json(e), "audience": audiences[e.id]} for e in editions]
    if as_json:
        print_json(rows)
        return
    out.print(table(("id", "send at (UTC)", "status", "subject", "topics", "readers"),
                    ((r["id"], r["send_at"][:16], r["status"], r["subject"], ", ".join(r["topics"]), r["audience"])
                     for r in rows)))


@app.command("stats")
def editions_stats(edition_id: EditionId,
                   as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False) -> None:
    """What readers clicked: sent, clicks and unique clicks (people; machines apart), per story
    and subject. No reader is known: see docs/clicks.md."""
    require_database()
    with session_scope() as session:
        stats = edition_stats(session, edition_id)
    if as_json:
        print_json(stats.to_json())
        return
    out.print(f"Edition {stats.id}: sent {stats.sent}, clicks {stats.clicks}, unique {stats.unique_clicks} "
              f"({stats.click_rate:.1%}), machine clicks {stats.machine_clicks}", highlight=False)
    out.print(table(("story", "title", "clicks", "unique"),
                    ((s.id, s.title, s.clicks, s.unique_clicks) for s in stats.stories)))
    out.print(table(("subject", "sent", "clicks", "unique"),
                    ((v.subject, v.sent, v.clicks, v.unique_clicks) for v in stats.variants)))
    if stats.ab is not None:
        test = stats.ab
        decided = (f"subject {test.winner_variant} went to the rest ({test.reason_code}): {test.reason}"
                   if test.decided_at else f"undecided; due {test.decide_at or 'once it is sent'}")
        out.print(f"Subject test: {test.share} % of readers, {test.wait_minutes} min: {decided}",
                  highlight=False, markup=False)


@app.command("release")
def editions_release() -> None:
    """Release due editions now; their batches go to the broker (beat does this every 15 s)."""
    require_database()
    released = release_due_editions()
    out.print(f"released editions: {', '.join(map(str, released))}" if released else "no edition was due")


def _steer(edition_id: int, name: str) -> None:
    outcome = actions.editions.act(deps(), ACTOR, edition_id, name)
    counted = f" ({outcome.count})" if outcome.count else ""
    out.print(f"edition {edition_id}: {name} {'done' if outcome.changed else 'was already done'}{counted}")


@app.command("schedule")
def editions_schedule(edition_id: EditionId) -> None:
    """Schedule a draft edition (a draft past its time goes out now)."""
    _steer(edition_id, "schedule")


@app.command("unschedule")
def editions_unschedule(edition_id: EditionId) -> None:
    """Back to draft: it will not go out until scheduled again."""
    _steer(edition_id, "unschedule")


@app.command("cancel")
def editions_cancel(edition_id: EditionId) -> None:
    """Cancel an edition; deliveries not yet sent are skipped."""
    _steer(edition_id, "cancel")


@app.command("duplicate")
def editions_duplicate(
    edition_id: EditionId,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Copy an edition into a new draft (its stories' curation, note, topics and limits);
    prints the copy's id. Refused for an edition that reached anyone: use send-missing."""
    data = actions.editions.duplicate(deps(), ACTOR, edition_id)
    if as_json:
        print_json(data)
    else:
        sys.stdout.write(f"{data['id']}\n")


@app.command("pause")
def editions_pause(edition_id: EditionId) -> None:
    """Pause a sending edition (takes effect within a second)."""
    _steer(edition_id, "pause")


@app.command("resume")
def editions_resume(edition_id: EditionId) -> None:
    """Resume a paused edition; only deliveries still queued are sent."""
    _steer(edition_id, "resume")


@app.command("retry-failed")
def editions_retry_failed(edition_id: EditionId) -> None:
    """Send again to the deliveries that failed (never to the sent or bounced)."""
    _steer(edition_id, "retry-failed")


@app.command("send-missing")
def editions_send_missing(edition_id: EditionId) -> None:
    """For an edition cut short: send to the readers it never reached."""
    _steer(edition_id, "send-missing")
