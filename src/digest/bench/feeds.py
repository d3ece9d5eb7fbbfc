"""8. Feed polling: 1,000 feeds (50 with --quick) served by a local feed server in another
process, each polled once with a full answer (200: fetch, parse, file 20 stories) and once
more answering 304 to its own ETag; polls per second and this process's CPU per poll, as
one worker process runs them. The server runs in its own process (spawned: its target,
`_serve_feeds`, must stay importable from here) so its CPU is not counted."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from digest.bench.options import BenchError, BenchOptions
from digest.bench.services import process_env
from digest.feeds import FeedSettings, add_feed, poll_feed
from digest.store import make_engine, session_factory

ITEMS_PER_FEED = 20
TOPICS = ["world"]


def _feed_body(feed: int) -> bytes:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><guid>bench-{feed}-{n}</guid><link>https://news.example.com/{feed}/{n}</link>"
        f"<title>Story {n} of feed {feed}</title><description>What happened in story {n}, in two "
        f"sentences. The second one says why it matters.</description><category>World</category>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=n), usegmt=True)}</pubDate></item>"
        for n in range(ITEMS_PER_FEED))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {feed}</title>'
            f"<link>https://news.example.com/</link><description>Bench</description>{items}</channel></rss>").encode()


def _serve_feeds(ready: Any, count: int) -> None:
    bodies = {f"/feed/{n}": _feed_body(n) for n in range(count)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = bodies.get(self.path)
            etag = f'"{self.path}-v1"'
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.put(server.server_address[1])
    server.serve_forever(poll_interval=0.1)


def feed_count(options: BenchOptions) -> int:
    return 50 if options.quick else 1_000


def measure_feeds(options: BenchOptions, database_url: str) -> dict[str, Any]:
    count = feed_count(options)
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    server = context.Process(target=_serve_feeds, args=(ready, count), daemon=True)
    server.start()
    try:
        try:
            port = ready.get(timeout=30)
        except Exception:  # noqa: BLE001 - queue.Empty: the server never came up
            raise BenchError("the local feed server did not start") from None
        with process_env(DIGEST_DATABASE_URL=database_url, DIGEST_FETCH_ALLOW=f"127.0.0.1:{port}",
                         DIGEST_TOPICS=",".join(TOPICS)):
            engine = make_engine(database_url)
            factory = session_factory(engine)
            try:
                with factory.begin() as session:
                    ids = [add_feed(session, f"http://127.0.0.1:{port}/feed/{n}",
                                    FeedSettings(every_minutes=1, category_topics={"World": "world"}), TOPICS).id
                           for n in range(count)]
                rounds = {name: _poll_all(factory, ids) for name in ("full", "not_modified")}
            finally:
                engine.dispose()
    finally:
        server.kill()
        server.join(timeout=10)
    for name, expected in (("full", "stories"), ("not_modified", "not_modified")):
        if rounds[name]["outcomes"] != {expected: count}:
            raise BenchError(f"feed polls ({name}) answered {rounds[name]['outcomes']}, not {count} × {expected}")
    return {"feeds": count, "items_per_feed": ITEMS_PER_FEED, **rounds}


def _poll_all(factory: Any, ids: list[int]) -> dict[str, Any]:
    quiet = logging.getLogger("digest")  # a line per poll would bury the progress lines (~30 µs each)
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        outcomes = Counter(poll_feed(factory, feed_id, force=True).outcome for feed_id in ids)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        quiet.setLevel(level)
    return {"outcomes": dict(outcomes), "seconds": wall, "polls_per_second": len(ids) / wall,
            "cpu_ms_per_poll": cpu * 1000 / len(ids)}
