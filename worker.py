"""Celery entry point: `celery -A worker worker` and `celery -A worker beat`."""

from digest.worker import app

__all__ = ["app"]
