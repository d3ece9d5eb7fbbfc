"""Celery entry point: `celery -A worker worker` and `celery -A worker beat`."""

from digest.celery_app import app

__all__ = ["app"]
