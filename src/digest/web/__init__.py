"""The web app (FastAPI): reader pages, the archive, staff sign-in, editor and ops pages,
the JSON API, webhooks, /healthz and /metrics. `digest serve` runs `create_app`."""

from digest.web.app import check_all_templates, create_app

__all__ = ["check_all_templates", "create_app"]
