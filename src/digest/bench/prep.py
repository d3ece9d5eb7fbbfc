"""1. Message preparation, the send loop's hot path (`sender.send_one`, socket left out),
against the standard library's build and render + premailer per reader; and the in-memory
sample edition and readers it (and the SMTP ceiling) builds messages from."""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from digest.bench.options import BENCH_SECRET, BenchOptions
from digest.bench.stats import _percentile
from digest.config import Settings
from digest.delivery import send_one
from digest.mail import (
    EditionView,
    Personal,
    Reader,
    StoryView,
    build_message_stdlib,
    message_id_for,
    reader_values,
    render_edition,
    shared_headers,
)
from digest.mail import dkim as digest_dkim
from digest.store import utcnow
from digest.stories import load_source, parse_source


class _Row(NamedTuple):
    id: int
    subscriber_id: int
    attempts: int


class _ReaderRow(NamedTuple):
    id: int
    email: str
    name: str | None
    token: str
    status: str
    history: bool = False  # no click history: the bench's readers never consented to one


class _NullConnection:
    """Stands in for the SMTP connection: the figure is preparation, not the socket."""

    last: bytes = b""

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        self.last = message


NAMES = ["Olena Kovalenko", "James O'Neill", "Aisha Bello", "Mateo García", None, "Zoë Čapek",
         "Priya Raman", "Liam Walsh", "Kwame Mensah", "Ingrid Søreide", "Tomás Ó Briain", None]


def sample_edition_view() -> Any:
    """A realistic 5-story edition from the package samples: the article (which the demo
    pins) and the four most recent featured feed stories."""

    article = parse_source(load_source("sample:sample_article.txt"), origin="sample:sample_article.txt")
    feed = parse_source(load_source("sample:sample_feed.json"))
    featured = sorted((s for s in feed if s.featured), key=lambda s: s.published_at, reverse=True)[:4]
    stories = tuple(
        StoryView(id=number, title=s.title, url=s.url, summary=s.summary, published_at=s.published_at,
                  image_url=s.image_url, author=s.author, topics=tuple(s.topics))
        for number, s in enumerate([*article, *featured], start=1))
    return EditionView(id=1, subject="The featured stories from Political IQ", send_at=utcnow(), stories=stories)


def sample_readers(count: int) -> list[_ReaderRow]:
    return [_ReaderRow(i, f"reader{i}@example.org", NAMES[i % len(NAMES)], secrets.token_urlsafe(32), "active")
            for i in range(1, count + 1)]


def measure_message_prep(options: BenchOptions) -> dict[str, Any]:

    settings = Settings(env="test", secret_key=BENCH_SECRET)
    view = sample_edition_view()
    rendered = render_edition(view)
    shared = shared_headers(view, rendered.subject, settings)
    shared_bytes = shared.encoded_shared
    domain, envelope_from = settings.sender_domain, settings.sender_address
    readers = sample_readers(options.fast_iterations)
    connection = _NullConnection()

    def fast(reader: _ReaderRow) -> None:
        send_one(connection, view.id, shared, shared_bytes, rendered, _Row(reader.id, reader.id, 0), reader,
                  envelope_from, domain, settings, utcnow)

    def stdlib_build(reader: _ReaderRow, edition: Any) -> bytes:
        values = reader_values(Reader(email=reader.email, name=reader.name, token=reader.token))
        html_body, text_body = edition.personalise(values)
        return build_message_stdlib(shared, Personal(
            to_name=reader.name, to_address=reader.email,
            message_id=message_id_for(view.id, reader.id, domain, settings.secret_key), date=utcnow(),
            unsubscribe_url=values["unsubscribe_url"], unsubscribe_token=reader.token,
            text=text_body, html=html_body))

    def timed(run: Callable[[_ReaderRow], object], batch: list[_ReaderRow]) -> list[float]:
        samples = []
        clock = time.perf_counter_ns
        for reader in batch:
            started = clock()
            run(reader)
            samples.append((clock() - started) / 1_000)
        return samples

    timed(fast, readers[:200])  # warm caches (Date header, lru caches, allocator)
    fast_us = timed(fast, readers)
    message_bytes = len(connection.last)
    stdlib_us = timed(lambda r: stdlib_build(r, rendered), readers[: options.stdlib_iterations])
    naive_us = timed(lambda r: stdlib_build(r, render_edition(view)), readers[: options.naive_iterations])
    dkim_us, dkim_pure_us = _dkim_signing(bytes(connection.last), options)
    return {
        "dkim_median_us": statistics.median(dkim_us), "dkim_iterations": len(dkim_us),
        "dkim_pure_python_median_us": statistics.median(dkim_pure_us), "dkim_pure_python_iterations": len(dkim_pure_us),
        "fast_median_us": statistics.median(fast_us), "fast_p99_us": _percentile(fast_us, 0.99),
        "fast_iterations": len(fast_us),
        "stdlib_median_us": statistics.median(stdlib_us), "stdlib_iterations": len(stdlib_us),
        "naive_median_us": statistics.median(naive_us), "naive_iterations": len(naive_us),
        "message_bytes": message_bytes, "stories": len(view.stories),
    }


def _dkim_signing(message: bytes, options: BenchOptions) -> tuple[list[float], list[float]]:
    """µs to DKIM-sign one fast-path message with a fresh RSA-2048 key: as digest signs
    (dkimpy, its RSA step by OpenSSL), and with dkimpy's own pure-Python RSA."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa


    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    signer = digest_dkim.DkimSigner("bench", "news.example.com", pem)

    def timed(count: int) -> list[float]:
        signer.sign(message)  # warm: the key's OpenSSL form is cached on first use
        samples = []
        for _ in range(count):
            started = time.perf_counter_ns()
            signer.sign(message)
            samples.append((time.perf_counter_ns() - started) / 1_000)
        return samples

    ours = timed(options.stdlib_iterations // 2)
    dkim.RSASSA_PKCS1_v1_5_sign = digest_dkim._PURE_PYTHON_RSA_SIGN
    try:
        pure = timed(options.naive_iterations)
    finally:
        dkim.RSASSA_PKCS1_v1_5_sign = digest_dkim.openssl_rsassa_sign
    return ours, pure
