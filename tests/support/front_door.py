"""A second `digest serve` for the front-door tests (sign-up from a publisher's page): one
embedding origin allowed, a small per-domain confirmation cap."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.processes import REPO, free_port, start_web, stop_web
from tests.support.stack import Stack

CONFIRMATIONS_PER_DOMAIN_PER_HOUR = 3


@dataclass(frozen=True)
class FrontDoor:
    base_url: str  # digest, as the snippet's form posts to it
    publisher_port: int  # where the publisher's page is served from (127.0.0.1)

    @property
    def publisher_origin(self) -> str:
        return f"http://127.0.0.1:{self.publisher_port}"


def running_front_door(stack: Stack) -> Iterator[FrontDoor]:
    port, publisher_port = free_port(), free_port()
    door = FrontDoor(f"http://127.0.0.1:{port}", publisher_port)
    env = stack.env(DIGEST_BASE_URL=door.base_url, DIGEST_EMBED_ORIGINS=door.publisher_origin,
                    DIGEST_SUBSCRIBE_CONFIRMATIONS_PER_DOMAIN_PER_HOUR=str(CONFIRMATIONS_PER_DOMAIN_PER_HOUR))
    proc = start_web(env, port, REPO / "test-artifacts" / f"web-front-{stack.backend}.log")
    yield door
    stop_web(proc)


def embed_snippet(stack: Stack, door: FrontDoor, *args: str) -> str:
    """What `digest embed ARGS` prints for this front door (the real command, in a process)."""
    done = subprocess.run([sys.executable, "-m", "digest.cli", "embed", *args], cwd=REPO, capture_output=True,
                          env=stack.env(DIGEST_BASE_URL=door.base_url), timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode()


@contextmanager
def publisher_page(port: int, body_html: str) -> Iterator[str]:
    """A publisher's article page on 127.0.0.1:`port` (another origin than digest's) with
    `body_html` in it; yields its URL."""
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>An article</title></head>"
            f"<body><h1>An article</h1><p>The story.</p><h2>Get the featured stories in your email</h2>"
            f"{body_html}</body></html>").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/2026/12/01/an-article.html"
    finally:
        server.shutdown()
        server.server_close()
