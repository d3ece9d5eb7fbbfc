"""The web app (FastAPI): reader pages now; editor and ops pages to come."""
