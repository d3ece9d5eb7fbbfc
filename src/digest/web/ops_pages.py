"""The ops dashboard (/ops), its actions, the audit log and /metrics.

The dashboard polls a fragment every 2 s with htmx (served from /static, no CDN); without
JavaScript the page still shows the same numbers and the actions still work (plain forms
that redirect back). Actions are the idempotent functions of digest.ops and
digest.lifecycle, and every press is audited.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from digest import lifecycle, ops, staff
from digest.metrics import render as render_metrics
from digest.store import AuditEntry, Edition, Role, User, utcnow
from digest.web.app import Services
from digest.web.auth import page_user, staff_page
from digest.web.forms import BadRequest, read_form, require_csrf

router = APIRouter()
OpsUser = Annotated[User, Depends(page_user(Role.OPS))]
ACTIONS = ("pause", "resume", "cancel", "retry-failed", "send-missing")
WORKERS_CACHE_SECONDS = 5.0
_workers_cache: dict[str, Any] = {"at": 0.0, "value": None}
_workers_lock = threading.Lock()


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def workers_online(queue: str) -> list[dict[str, Any]] | None:
    """Workers consuming `queue` and what they run (Celery inspect). Never waits: the
    answer is refreshed in the background at most every WORKERS_CACHE_SECONDS, since an
    inspect waits a second for replies."""
    with _workers_lock:
        stale = time.monotonic() - _workers_cache["at"] >= WORKERS_CACHE_SECONDS
        if stale and not _workers_cache.get("refreshing"):
            _workers_cache["refreshing"] = True
            threading.Thread(target=_refresh_workers, args=(queue,), daemon=True).start()
        return _workers_cache["value"]  # type: ignore[no-any-return]


def _refresh_workers(queue: str) -> None:
    value: list[dict[str, Any]] | None
    try:
        from digest.celery_app import app as celery_app

        inspector = celery_app.control.inspect(timeout=1.0)
        queues = inspector.active_queues() or {}
        active = inspector.active() or {}
        mine = sorted(name for name, qs in queues.items() if any(q.get("name") == queue for q in qs))
        value = [{"name": name, "running": [f"{task.get('name', '?')}{tuple(task.get('args') or ())}"
                                            for task in active.get(name, [])]} for name in mine]
    except Exception:  # noqa: BLE001 - the broker being down is shown as such
        value = None
    with _workers_lock:
        _workers_cache.update(at=time.monotonic(), value=value, refreshing=False)


def snapshot(services: Services) -> dict[str, Any]:
    now = utcnow()
    with services.factory() as session:
        editions = ops.watched_editions(session, now)
        health = ops.edition_health(session, editions, now)
        errors = ops.error_groups(session, [e.id for e in editions])
        oldest = ops.oldest_waiting_seconds(session, now)
    return {
        "now": now, "editions": health, "errors": errors, "oldest_waiting_seconds": oldest,
        "queue": services.settings.task_queue,
        "queue_depth": ops.queue_depth(services.redis, services.settings.task_queue),
        "workers": workers_online(services.settings.task_queue),
        "paused": [h for h in health if h.status == "paused"],
        "limits": {"global": services.settings.rate_limit_per_second,
                   "domains": services.settings.domain_limits,
                   "smtp": [t.url.split("@")[-1] for t in services.settings.smtp_targets]},
    }


@router.get("/ops")
def dashboard(request: Request, user: OpsUser) -> Response:
    return staff_page(request, "ops/dashboard.html", {"s": snapshot(_services(request)), "active": "ops",
                                                      "flash": request.query_params.get("done")})


@router.get("/ops/panel")
def panel(request: Request, user: OpsUser) -> Response:
    """The live part of the dashboard, polled by htmx."""
    return staff_page(request, "ops/panel.html", {"s": snapshot(_services(request))})


@router.get("/ops/status.json")
def status_json(request: Request, user: OpsUser) -> dict[str, Any]:
    s = snapshot(_services(request))
    return {
        "editions": [h.as_dict() for h in s["editions"]],
        "errors": [{"reason": g.reason, "domain": g.domain, "edition_id": g.edition_id, "count": g.count}
                   for g in s["errors"]],
        "queue": s["queue"], "queue_depth": s["queue_depth"],
        "oldest_waiting_seconds": s["oldest_waiting_seconds"], "workers": s["workers"],
        "limits": s["limits"],
    }


@router.post("/ops/editions/{edition_id}/{action}")
async def act(request: Request, edition_id: int, action: str, user: OpsUser) -> Response:
    services = _services(request)
    if action not in ACTIONS:
        raise BadRequest(404, "Unknown action", f"There is no action {action!r}.")
    form = await read_form(request, services.settings.max_form_bytes)
    require_csrf(request, form, services.settings.secret_key)
    # Database and broker work: off the event loop, so polls and /healthz keep answering.
    message = await run_in_threadpool(run_action, services, user, edition_id, action)
    return RedirectResponse(f"/ops?done={message}", status_code=303)


def run_action(services: Services, user: User, edition_id: int, action: str) -> str:
    from digest.tasks import enqueue_batch

    settings = services.settings
    with services.factory() as session:
        if session.get(Edition, edition_id) is None:
            raise BadRequest(404, "No such edition", f"There is no edition {edition_id}.")
    try:
        if action == "resume":
            changed: int | bool = lifecycle.resume_and_enqueue(
                services.factory, edition_id, settings.batch_size, enqueue_batch, reason=None)
        elif action == "retry-failed":
            changed = ops.retry_failed(services.factory, edition_id, settings.batch_size, enqueue_batch)
        elif action == "send-missing":
            changed = ops.send_missing(services.factory, edition_id, settings.batch_size, enqueue_batch)
        else:
            with services.factory.begin() as session:
                changed = lifecycle.transition(session, edition_id, action, reason=f"{action} by {user.email}")
    except lifecycle.LifecycleError as exc:
        raise BadRequest(409, "Cannot do that now", str(exc)) from None
    with services.factory.begin() as session:
        staff.audit(session, user, f"edition.{action}", f"edition:{edition_id}", {"changed": int(changed)})
    if not changed:
        return f"edition {edition_id}: {action} had nothing (more) to do"
    return f"edition {edition_id}: {action} done" + (f" ({changed})" if not isinstance(changed, bool) else "")


@router.get("/ops/audit")
def audit_log(request: Request, user: OpsUser) -> Response:
    with _services(request).factory() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)))
    return staff_page(request, "ops/audit.html", {"entries": entries})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format. With DIGEST_METRICS_TOKEN set, a bearer token is required."""
    services = _services(request)
    token = services.settings.metrics_token
    if token:
        supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(supplied.encode(), token.encode()):
            return Response("a valid bearer token is required\n", status_code=401, media_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
    body = render_metrics(services.factory, services.redis, services.settings.task_queue)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
