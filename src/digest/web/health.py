"""/healthz for load balancers and /metrics for Prometheus."""

from __future__ import annotations

import secrets

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from digest.observe import render_metrics
from digest.web.deps import ServicesDep

router = APIRouter()


@router.get("/healthz")
def healthz(services: ServicesDep) -> JSONResponse:
    checks = {"database": "ok", "broker": "ok"}
    try:
        with services.factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - report, don't raise
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        services.redis.ping()
    except (redis.RedisError, OSError) as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)


@router.get("/metrics")
def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format. With DIGEST_METRICS_TOKEN set, a bearer token is required; in
    production without one, /metrics is closed (each scrape runs database aggregates, and
    the numbers are nobody else's business)."""
    token = services.settings.metrics_token
    if not token and services.settings.env == "production":
        return JSONResponse({"error": "/metrics is closed: set DIGEST_METRICS_TOKEN to scrape it"}, status_code=404)
    if token:
        supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(supplied.encode(), token.encode()):
            return Response("a valid bearer token is required\n", status_code=401, media_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
    body = render_metrics(services.factory, services.redis, services.settings.task_queue)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
