"""The web app (FastAPI): reader pages, the archive, staff sign-in, editor and ops pages,
the JSON API, webhooks, /healthz and /metrics. `digest serve` runs `create_app`."""
