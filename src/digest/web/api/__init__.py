"""The JSON API under /api/v1: what editors do in the browser, for scripts. Bearer tokens
(`digest users token`, or POST /api/v1/tokens); OpenAPI at /api/v1/openapi.json. One
router per resource; every change a digest.actions call."""

from __future__ import annotations

from fastapi import FastAPI

from digest.web import errors
from digest.web.api import editions, feeds, newsletters, readers, stories, tokens
from digest.web.deps import Services


def create_api(services: Services) -> FastAPI:
    api = FastAPI(title="digest API", version="1", docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    api.state.services = services
    errors.install_api(api)
    for module in (stories, newsletters, editions, tokens, readers, feeds):
        api.include_router(module.router)
    return api


__all__ = ["create_api"]
