"""The feeds page: the publisher's feeds with how each is doing (those needing a look
first), the form that adds one (and polls it at once, saying how that went), poll now,
pause and resume, the edit form (every bad field at once, at its field) and remove (asked
first; the stories a feed brought stay).

Notices after a redirect are composed here from the feed's stored row and counts from our
own redirect: nothing a URL says is echoed as text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from digest import actions
from digest.errors import Invalid
from digest.feeds import (
    DEFAULT_EVERY_MINUTES,
    EVERY_MINUTES_MAX,
    EVERY_MINUTES_MIN,
    MAX_FAILURES,
    FeedError,
    FeedExists,
    FeedSettings,
    check_feed,
    feed_state,
    get_feed,
    list_feeds,
    new_in_last_poll,
)
from digest.store import Feed, utcnow
from digest.web.deps import CheckedForm, EditorUser, actor, services_of
from digest.web.forms import Form
from digest.web.pages.editor.common import editor_page, see_other

router = APIRouter(prefix="/editor")
STATE_ACTIONS = ("pause", "resume")
MAPPING_MAX_LINES = 200
# Fixed words after an action that needs no numbers.
NOTICES = {
    "paused": "Feed paused: it is not polled until you resume it. Its stories stay.",
    "resumed": "Feed resumed: it is polled again within a minute.",
    "edited": "Feed saved. The changes apply from its next poll.",
    "unchanged": "Nothing to change: it was already so.",
    "removed": "Feed removed. The stories it brought stay in the library.",
}


# ------------------------------------------------------------------ words


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def relative(value: datetime | None, now: datetime) -> str:
    """'3 minutes ago', 'in 2 hours', 'just now': how far a time is from now, roughly."""
    if value is None:
        return "—"
    delta = value - now
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        return "just now" if delta <= timedelta(0) else "within a minute"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            words = _plural(max(1, round(seconds / size)), unit)
            break
    return f"in {words}" if delta > timedelta(0) else f"{words} ago"


def last_poll_words(feed: Feed, new: int) -> str:
    """How the last poll went, as an editor reads it."""
    status = feed.last_status
    if status is None:
        return "not polled yet"
    if status == "stories":
        return f"{new} new" if new else "no new stories"
    if status == "not_modified":
        return "not modified"
    if status == "throttled":
        return f"asked to wait: {feed.last_error}" if feed.last_error else "asked to wait"
    if status == "gone":
        return f"gone: {feed.last_error}" if feed.last_error else "gone"
    return f"failed: {feed.last_error}" if feed.last_error else "failed"


def state_words(feed: Feed) -> str:
    state = feed_state(feed)
    if state == "stopped":
        return f"Stopped by itself: {feed.paused_reason}"
    if state == "paused":
        return "Paused by staff"
    if state == "failing":
        return (f"Failing: {_plural(feed.failures, 'failed poll')} in a row; it pauses itself after "
                f"{MAX_FAILURES}")
    return "Active"


def _row(feed: Feed, stories: int, new: int, now: datetime) -> dict[str, Any]:
    state = feed_state(feed)
    return {"feed": feed, "state": state, "state_words": state_words(feed), "stories": stories,
            "needs_look": state in ("stopped", "failing"), "last": last_poll_words(feed, new),
            "last_ago": relative(feed.last_fetched_at, now),
            "next": ("not polled while paused" if not feed.active
                     else "due now" if feed.next_poll_at <= now else relative(feed.next_poll_at, now)),
            "every": _plural(feed.every_minutes, "minute")}


# ------------------------------------------------------------------ the form


def _blank_values() -> dict[str, Any]:
    return {"url": "", "every_minutes": str(DEFAULT_EVERY_MINUTES), "topics": [], "featured": False,
            "featured_categories": "", "category_topics": ""}


def _values_of(feed: Feed) -> dict[str, Any]:
    return {"url": feed.url, "every_minutes": str(feed.every_minutes), "topics": list(feed.topics or []),
            "featured": feed.featured, "featured_categories": ", ".join(feed.featured_categories or []),
            "category_topics": "\n".join(f"{k} = {v}" for k, v in (feed.category_topics or {}).items())}


def parse_mapping(text: str) -> dict[str, str]:
    """`Category = topic` lines (blank lines and `#` comments skipped) as a map; Invalid
    names the first line that is not one."""
    mapping: dict[str, str] = {}
    lines = text.splitlines()
    if len(lines) > MAPPING_MAX_LINES:
        raise Invalid(f"At most {MAPPING_MAX_LINES} lines.")
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        category, sep, topic = line.partition("=")
        if not sep or not category.strip() or not topic.strip() or "=" in topic:
            shown = line.strip()[:60]
            raise Invalid(f"Line {number} (“{shown}”) is not “Category = topic”.")
        mapping[category.strip()] = topic.strip()
    return mapping


def _read_form(form: Form) -> tuple[dict[str, Any], str, FeedSettings, dict[str, str]]:
    """What was typed (to show again), the address, the settings, and the errors found in
    reading them (a number that is not one, a map line that is not one)."""
    values = {"url": form.get("url").strip(), "every_minutes": form.get("every_minutes").strip(),
              "topics": form.get_all("topics"), "featured": form.get("featured") == "yes",
              "featured_categories": form.get("featured_categories").strip(),
              "category_topics": form.get("category_topics")}
    errors: dict[str, str] = {}
    every: int | None = None
    raw = values["every_minutes"]
    if not raw:
        errors["every_minutes"] = "Give a number of minutes."
    elif raw.isdigit() and len(raw) <= 6:
        every = int(raw)
    else:
        errors["every_minutes"] = f"A whole number of minutes, between {EVERY_MINUTES_MIN} and {EVERY_MINUTES_MAX}."
    mapping: dict[str, str] | None = None
    try:
        mapping = parse_mapping(values["category_topics"])
    except Invalid as exc:
        errors["category_topics"] = exc.message
    settings = FeedSettings(every_minutes=every, topics=values["topics"], category_topics=mapping,
                            featured=values["featured"], featured_categories=values["featured_categories"])
    return values, values["url"], settings, errors


def _all_errors(request: Request, url: str, settings: FeedSettings, errors: dict[str, str]) -> dict[str, str]:
    """The errors found in reading the form, with the domain's checks of the rest: every bad
    field at once."""
    try:
        check_feed(url, settings, services_of(request).settings.topic_list)
    except FeedError as exc:
        return {**exc.fields, **errors}
    return errors


# ------------------------------------------------------------------ the list and add


def _list_page(request: Request, *, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
               status: int = 200, notice: str | None = None, warning: str | None = None) -> Response:
    now = utcnow()
    with services_of(request).factory() as session:
        new = new_in_last_poll(session)
        rows = [_row(feed, stories, new.get(feed.id, 0), now) for feed, stories in list_feeds(session)]
    return editor_page(request, "editor/feeds.html", "feeds", {
        "rows": rows, "values": values or _blank_values(), "errors": errors or {},
        "topics": services_of(request).settings.topic_list, "notice": notice, "warning": warning,
        "error": "The feed was not added: check the fields marked below." if errors else None,
        "every_min": EVERY_MINUTES_MIN, "every_max": EVERY_MINUTES_MAX}, status)


def _poll_notice(request: Request, feed_id: int, added: int, first: bool) -> tuple[str | None, str | None]:
    """(notice, warning) after adding a feed or polling it now, from the feed as stored."""
    with services_of(request).factory() as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            return None, None
        status, error = feed.last_status, feed.last_error
    stories = _plural(added, "story", "stories")
    if first:
        if status == "stories":
            return f"Feed added: {stories} in its first poll.", None
        if status in ("failed", "throttled", "gone"):
            return None, f"Feed added, but its first poll failed: {error or status}"
        return "Feed added. Its first poll is on its way.", None
    if status == "stories":
        return f"Polled: {_plural(added, 'new story', 'new stories')}.", None
    if status == "not_modified":
        return "Polled: not modified since the last poll.", None
    if status in ("failed", "throttled", "gone"):
        return None, f"The poll failed: {error or status}"
    return "Polled.", None


@router.get("/feeds")
def feeds_page(request: Request, user: EditorUser, done: str = "", feed: int = 0, added: int = 0) -> Response:
    notice, warning = NOTICES.get(done), None
    if done in ("added", "polled") and feed:
        notice, warning = _poll_notice(request, feed, max(0, added), first=done == "added")
    elif done == "busy":
        notice = "Another poll of that feed was under way: look again in a moment."
    return _list_page(request, notice=notice, warning=warning)


@router.post("/feeds")
def add_feed(request: Request, user: EditorUser, form: CheckedForm) -> Response:
    values, url, settings, errors = _read_form(form)
    if errors := _all_errors(request, url, settings, errors):
        return _list_page(request, values=values, errors=errors, status=400)
    try:
        created = actions.feeds.add(services_of(request).deps(), actor(user, "web"), url, settings)
    except FeedExists:
        return _list_page(request, values=values, errors={"url": "This feed is already registered."}, status=409)
    except FeedError as exc:  # checked above; a race with a change of topics lands here
        return _list_page(request, values=values, errors=exc.fields or {"url": exc.message}, status=400)
    first = created.get("poll") or {}
    return see_other(f"/editor/feeds?done=added&feed={created['id']}&added={first.get('added', 0)}")


# ------------------------------------------------------------------ edit


def _edit_page(request: Request, feed_id: int, values: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, status: int = 200) -> Response:
    now = utcnow()
    with services_of(request).factory() as session:
        feed = get_feed(session, feed_id)
        stories = actions.feeds.feed_detail(session, feed.id)["stories"]
        row = _row(feed, stories, new_in_last_poll(session).get(feed.id, 0), now)
        return editor_page(request, "editor/feed_edit.html", "feeds", {
            "row": row, "feed": feed, "values": values or _values_of(feed), "errors": errors or {},
            "topics": services_of(request).settings.topic_list,
            "error": "Nothing was saved: check the fields marked below." if errors else None,
            "every_min": EVERY_MINUTES_MIN, "every_max": EVERY_MINUTES_MAX}, status)


@router.get("/feeds/{feed_id}")
def edit_feed_page(request: Request, user: EditorUser, feed_id: int) -> Response:
    return _edit_page(request, feed_id)


@router.post("/feeds/{feed_id}")
def save_feed(request: Request, user: EditorUser, feed_id: int, form: CheckedForm) -> Response:
    values, url, settings, errors = _read_form(form)
    if errors := _all_errors(request, url, settings, errors):
        return _edit_page(request, feed_id, values, errors, 400)
    try:
        outcome = actions.feeds.edit(services_of(request).deps(), actor(user, "web"), feed_id, settings, url)
    except FeedExists:
        return _edit_page(request, feed_id, values, {"url": "Another feed has this address."}, 409)
    except FeedError as exc:
        return _edit_page(request, feed_id, values, exc.fields or {"url": exc.message}, 400)
    return see_other(f"/editor/feeds?done={'edited' if outcome.changed else 'unchanged'}")


# ------------------------------------------------------------------ poll, pause, resume, remove


@router.get("/feeds/{feed_id}/remove")
def remove_confirm(request: Request, user: EditorUser, feed_id: int) -> Response:
    """Removing is asked first, naming the feed and saying its stories stay."""
    with services_of(request).factory() as session:
        feed = get_feed(session, feed_id)
        stories = actions.feeds.feed_detail(session, feed.id)["stories"]
        return editor_page(request, "editor/feed_remove.html", "feeds", {"feed": feed, "stories": stories})


@router.post("/feeds/{feed_id}/{action}")
def feed_action(request: Request, user: EditorUser, feed_id: int, action: str, form: CheckedForm) -> Response:
    deps = services_of(request).deps()
    if action == "poll":
        [result] = actions.feeds.poll(deps, actor(user, "web"), feed_id)
        if result.outcome == "skipped":
            return see_other("/editor/feeds?done=busy")
        return see_other(f"/editor/feeds?done=polled&feed={feed_id}&added={result.added}")
    if action == "remove":
        if form.get("confirm") != "yes":  # one stray click never removes
            return see_other(f"/editor/feeds/{feed_id}/remove")
        actions.feeds.remove(deps, actor(user, "web"), feed_id)
        return see_other("/editor/feeds?done=removed")
    if action not in STATE_ACTIONS:
        raise Invalid(f"unknown action {action!r}")
    outcome = actions.feeds.set_state(deps, actor(user, "web"), feed_id, action)
    return see_other(f"/editor/feeds?done={action + 'd' if outcome.changed else 'unchanged'}")
