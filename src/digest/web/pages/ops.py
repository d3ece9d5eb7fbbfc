"""The ops dashboard (/ops) and its actions (the audit log is digest.web.pages.audit).

The dashboard polls a fragment every 2 s with htmx (served from /static, no CDN); without
JavaScript the page still shows the same numbers and the actions still work (plain forms
that redirect back). Actions are digest.actions', the same as the API's and the command
line's: idempotent, and audited on every press.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from digest import actions
from digest.observe import QueueSnapshot, failed_notices, feed_health, queue_snapshot, send_rate, watched_editions
from digest.store import utcnow
from digest.web.api.models import PathId
from digest.web.deps import CheckedForm, OpsUser, Services, actor, services_of, staff_page
from digest.web.forms import BadRequest
from digest.web.pages.editor import cancel_question
from digest.worker import workers_asked, workers_online

router = APIRouter()
ACTIONS = ("pause", "resume", "cancel", "retry-failed", "send-missing")
PASSWORD_CHANGED = "Password changed. Other browsers signed in as you were signed out."


def snapshot(services: Services) -> dict[str, Any]:
    """The queue now (digest.observe, as `digest status` sees it), with the workers online,
    the sending limits and the feeds' health."""
    now = utcnow()
    settings = services.settings
    with services.factory() as session:
        watched = watched_editions(session, now)
        current: QueueSnapshot = queue_snapshot(session, watched, now, services.redis, settings.task_queue)
        chart = send_rate(session, [e.id for e in watched], now)
        feeds = feed_health(session)
        notices = failed_notices(session, now)
    workers = workers_online(settings.task_queue)
    return {
        "now": now, "editions": current.editions, "errors": current.errors,
        "oldest_waiting_seconds": current.oldest_waiting_seconds, "queue": current.queue,
        "queue_depth": current.queue_depth, "workers": workers, "workers_asked": workers_asked(),
        "paused": current.paused,
        "limits": workers_limits(workers), "chart": chart, "feeds": feeds, "notices": notices,
        "json": {**current.as_json(), "feeds": feeds.as_json(), "failed_notices": [n.as_json() for n in notices],
                 "send_rate": chart.as_json()},
    }


def workers_limits(workers: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The sending limits the workers report (digest.worker's digest_limits), when they all
    agree; {"differ": True} when they do not; None when none has answered. Never this web
    process's own settings: those need not be the workers'."""
    reported = [{k: v for k, v in w["limits"].items() if k in ("global", "domains", "smtp")}
                for w in workers or [] if w.get("limits")]
    if not reported:
        return None
    if any(r != reported[0] for r in reported[1:]):
        return {"differ": True}
    return reported[0]


def flash(done: str, edition: int, changed: bool, count: int, reader: int = 0) -> str | None:
    """The banner after an action, composed here from our own words: the URL only says which
    action, on which edition or reader, and how many (a link cannot put its own text in our voice)."""
    if done == "password-changed":
        return PASSWORD_CHANGED
    if done == "confirm":
        return (f"reader #{reader}: a new confirmation is on its way" if changed else
                f"reader #{reader}: a confirmation was queued in the last minute; nothing more sent")
    if done not in ACTIONS:
        return None
    if not changed:
        return f"edition {edition}: {done} had nothing (more) to do"
    return f"edition {edition}: {done} done" + (f" ({count})" if count else "")


@router.get("/ops")
def dashboard(request: Request, user: OpsUser, done: str = "", edition: int = 0, changed: int = 0,
              count: int = 0, reader: int = 0) -> Response:
    return staff_page(request, "ops/dashboard.html", {"s": snapshot(services_of(request)), "active": "ops",
                                                      "flash": flash(done, edition, bool(changed), count, reader)})


@router.post("/ops/readers/{reader_id}/confirm")
def resend_confirmation(request: Request, reader_id: PathId, user: OpsUser, form: CheckedForm) -> Response:
    """A failed confirmation sent again (the list of failed mail on the dashboard): the
    same action as the reader page's, audited with `via` ops."""
    outcome = actions.readers.send_confirmation(services_of(request).deps(), actor(user, "ops"), reader_id)
    query = urlencode({"done": "confirm", "reader": reader_id, "changed": int(outcome.changed)})
    return RedirectResponse(f"/ops?{query}", status_code=303)


@router.get("/ops/panel")
def panel(request: Request, user: OpsUser) -> Response:
    """The live part of the dashboard, polled by htmx."""
    return staff_page(request, "ops/panel.html", {"s": snapshot(services_of(request))})


@router.get("/ops/status.json")
def status_json(request: Request, user: OpsUser) -> dict[str, Any]:
    s = snapshot(services_of(request))
    return {**s["json"], "workers": s["workers"], "limits": s["limits"]}


@router.get("/ops/editions/{edition_id}/cancel")
def cancel_page(request: Request, edition_id: int, user: OpsUser) -> Response:
    return cancel_question(request, edition_id, f"/ops/editions/{edition_id}/cancel", "/ops", {})


@router.post("/ops/editions/{edition_id}/{action}")
def act(request: Request, edition_id: int, action: str, user: OpsUser, form: CheckedForm) -> Response:
    if action not in ACTIONS:
        raise BadRequest(404, "Unknown action", f"There is no action {action!r}.")
    if action == "cancel" and form.get("confirm") != "yes":  # beside Pause during a send: asked first
        return RedirectResponse(f"/ops/editions/{edition_id}/cancel", status_code=303)
    outcome = actions.editions.act(services_of(request).deps(), actor(user, "ops"), edition_id, action)
    query = urlencode({"done": action, "edition": edition_id, "changed": int(outcome.changed),
                       "count": outcome.count or 0})
    return RedirectResponse(f"/ops?{query}", status_code=303)
