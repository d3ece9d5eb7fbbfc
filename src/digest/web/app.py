"""The web app: reader pages, the public archive, staff sign-in, editor and ops pages, the
JSON API under /api/v1, provider webhooks, /healthz and /metrics. `digest serve` runs it.

Routes are grouped per resource (pages/, api/, hooks, health); what they need comes from
digest.web.deps, what they change goes through digest.actions, and every error becomes an
answer in one place (digest.web.errors).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from digest.config import Settings
from digest.mail import check_email_templates, check_templates
from digest.web import clicks, errors, health, hooks, opens
from digest.web.api import create_api
from digest.web.deps import Services, default_services
from digest.web.headers import SecurityHeaders
from digest.web.limits import BodyLimit, body_limit
from digest.web.pages import archive, audit, auth, editor, ops, readers
from digest.web.pages.editor import when

__all__ = ["Services", "check_all_templates", "create_app", "default_services"]


def templates_for(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(Path(settings.templates_dir) / "web"))
    templates.env.globals["site_name"] = settings.sender_name
    templates.env.globals["site_url"] = settings.public_site_url
    templates.env.globals["site_zone"] = settings.timezone
    templates.env.filters["when"] = when
    return templates


def check_all_templates(settings: Settings, templates: Jinja2Templates) -> None:
    """Every page and email template compiles: TemplateError naming the first that does not.
    Asked before the app takes a request, so a broken install stops `digest serve` at once,
    in one line (uvicorn lets the error through to the command). Compiling now is no extra
    work: the environments keep what they compiled for the requests to come."""
    check_email_templates(Path(settings.templates_dir))
    check_templates(templates.env, Path(settings.templates_dir) / "web")


def create_app(services: Services | None = None) -> FastAPI:
    services = services or default_services()
    app = FastAPI(title="digest", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.templates = templates_for(services.settings)
    check_all_templates(services.settings, app.state.templates)
    errors.install(app)
    form_limit = services.settings.max_form_bytes
    app.add_middleware(BodyLimit, limit_for=lambda path: body_limit(path, form_limit), refuse=errors.refusal)
    app.add_middleware(errors.EndsCleanly)
    # Added last, so outermost: even the refusals and the 503s of the two above carry the headers.
    app.add_middleware(SecurityHeaders, https=services.settings.base_url.startswith("https://"))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/subscribe", status_code=303)

    clicks.install(app)
    opens.install(app)
    for router in (health.router, readers.router, archive.router, auth.router, *editor.routers, ops.router,
                   audit.router, hooks.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.mount("/api/v1", create_api(services))
    return app
