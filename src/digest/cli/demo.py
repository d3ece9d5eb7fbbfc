"""`digest demo`: the whole pipeline on embedded defaults, in one folder, in seconds.

It uses its own SQLite file and an outbox folder whatever DIGEST_ variables say, so a demo
can never write to a real list or mail a real reader. With a reachable Redis the batches
go through the broker to a worker started in this process on a private queue; without
one, the same tasks run in-process (Celery's eager mode).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from digest.config import get_settings
from digest.editions import create_edition, preview_edition, primary_story_ids
from digest.errors import DigestError
from digest.mail import check_email_templates
from digest.observe import edition_counts
from digest.readers import add_subscriber
from digest.store import Edition, EditionStatus, Story, Subscriber, get_engine, session_scope, upgrade, utcnow
from digest.stories import ingest_source, set_story_flags
from digest.worker import broker_reachable, in_process_worker, release_due_editions

MARKER = ".digest-demo"
SEND_TIMEOUT_SECONDS = 120
FIRST_NAMES = ["Olena", "James", "Aisha", "Mateo", "Yuki", "Chloé", "Dmytro", "Priya", "Liam",
               "Zoë", "Kwame", "Sofia", "Mikhail", "Fatima", "Noah", "Ingrid", "Tomás", "Mei"]
TOPIC_MIXES = [[], ["politics"], ["world"], ["politics", "world"], ["business", "technology"],
               ["science", "health"], ["sports"], ["culture", "world"], ["politics", "business"]]


class DemoError(DigestError):
    """The demo could not run, or its edition did not end sent."""


def _prepare_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "digest.db"
    if database.exists() and not (folder / MARKER).exists():
        raise DemoError(f"{database} exists and was not made by the demo: use an empty folder (--folder)")
    for stale in [database, folder / "digest.db-wal", folder / "digest.db-shm"]:
        stale.unlink(missing_ok=True)
    outbox = folder / "outbox"
    outbox.mkdir(exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()
    (folder / MARKER).write_text("made by `digest demo`; safe to delete with this folder\n")
    return outbox


def _configure(folder: Path, outbox: Path) -> None:
    os.environ["DIGEST_DATABASE_URL"] = f"sqlite:///{(folder / 'digest.db').resolve()}"
    os.environ["DIGEST_SMTP_URL"] = f"outbox://{outbox.resolve()}"
    os.environ.setdefault("DIGEST_ENV", "development")
    # The demo prints its own summary; the in-process worker keeps quiet unless it fails.
    os.environ.setdefault("DIGEST_LOG_FORMAT", "text")
    os.environ.setdefault("DIGEST_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    get_engine.cache_clear()


def _seed(readers: int) -> tuple[int, int]:
    settings = get_settings()
    now = utcnow()
    with session_scope() as session:
        # The samples are from May 2023: moved to the last hours, so that the editions a
        # newcomer then makes (a newsletter's window is 48 h) find them.
        ingest_source(session, "sample:sample_article.txt", newest=now - timedelta(hours=1))
        ingest_source(session, "sample:sample_feed.json", newest=now - timedelta(hours=2))
        # As an editor would: lead with the sample article.
        lead = session.scalar(select(Story.id).where(Story.title.like("Zelensky%")))
        if lead is not None:
            set_story_flags(session, lead, pinned=True)
        for i in range(readers):
            name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]} Reader{i + 1}" if i % 7 else None
            add_subscriber(session, f"reader{i + 1}@example.org", name=name,
                           topics=TOPIC_MIXES[i % len(TOPIC_MIXES)], confirmed=True,
                           allowed_topics=settings.topic_list, consent_source="demo")
        oldest = session.scalar(select(Story.published_at).order_by(Story.published_at))
        stories = session.query(Story).count()
    # Wide enough to reach the oldest sample story.
    window_hours = int((utcnow() - oldest).total_seconds() // 3600) + 24
    return stories, window_hours


def run_demo(folder: Path, readers: int, console: Console) -> None:
    started = time.perf_counter()
    outbox = _prepare_folder(folder)
    _configure(folder, outbox)
    check_email_templates(get_settings().templates_dir)
    upgrade(get_engine())
    stories, window_hours = _seed(readers)
    with session_scope() as session:
        edition = create_edition(session, subject="The featured stories from Political IQ",
                                 send_at=utcnow(), topics=None, allowed_topics=get_settings().topic_list,
                                 max_stories=5, window_hours=window_hours)
        edition_id = edition.id
    use_broker = broker_reachable(get_settings().broker_url)
    with in_process_worker(use_broker):
        if use_broker:
            release_due_editions.delay()
        else:
            release_due_editions.apply()
        deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
        while True:
            with session_scope() as session:
                state = session.get_one(Edition, edition_id).status
            if state in (EditionStatus.SENT, EditionStatus.CANCELLED) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    with session_scope() as session:
        counts = edition_counts(session, [edition_id])[0]
        # The edition's own list (what most readers got), not the spares frozen with it.
        primary = set(primary_story_ids(session, session.get_one(Edition, edition_id)))
        titles = [row.story.title for row in session.get_one(Edition, edition_id).story_rows
                  if row.story_id in primary]
        first = session.scalar(select(Subscriber.email).order_by(Subscriber.id).limit(1))
        _, body_html, _ = preview_edition(session, edition_id, first)
    preview = outbox / "preview.html"
    preview.write_text(body_html, encoding="utf-8")
    elapsed = time.perf_counter() - started
    written = len(list(outbox.glob("*.eml")))
    console.print(f"[bold]digest demo[/bold] — {stories} stories ingested, {readers} readers, "
                  f"edition {edition_id} {counts.status}")
    console.print(f"sent through Celery {'via the Redis broker' if use_broker else 'in-process (no broker reachable)'}")
    console.print("stories picked:")
    for number, title in enumerate(titles, start=1):
        console.print(f"  {number}. {title}", markup=False)
    console.print(f"messages written: {written} (planned {counts.planned}, sent {counts.sent}, "
                  f"failed {counts.failed}, skipped {counts.skipped}) in {elapsed:.1f} s")
    console.print(f"open: {preview.resolve()}", markup=False)
    console.print(f"      {outbox.resolve()}/*.eml", markup=False)
    if counts.status != "sent":
        raise DemoError(f"the edition ended {counts.status}, not sent: {counts.status_reason or 'timed out'}")
