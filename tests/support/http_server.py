"""A real HTTP server on 127.0.0.1 for the fetcher and ingest tests: routes by path, each
a function that writes the whole answer (a page, a redirect, a trickle, a huge body, gzip).

Fetches from the tests reach it through DIGEST_FETCH_ALLOW (`allow_loopback`), as an
intranet CMS would be allowed in production.
"""

from __future__ import annotations

import datetime
import gzip
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from digest.config import get_settings

Route = Callable[[BaseHTTPRequestHandler], None]


def page(body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200,
         headers: dict[str, str] | None = None) -> Route:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def gzipped(body: bytes, content_type: str = "text/html; charset=utf-8") -> Route:
    """The body gzip-encoded, whatever the request's Accept-Encoding."""
    return page(gzip.compress(body), content_type, headers={"Content-Encoding": "gzip"})


def conditional(body: bytes, etag: str, last_modified: str, content_type: str = "application/rss+xml") -> Route:
    """A feed that keeps validators: 304 with no body to a request that sends them back."""
    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == etag or handler.headers.get("If-Modified-Since") == last_modified:
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        page(body, content_type, headers={"ETag": etag, "Last-Modified": last_modified})(handler)
    return answer


def redirect(location: str, status: int = 302) -> Route:
    return page(b"", "text/plain", status, headers={"Location": location})


def trickle(byte_every_seconds: float, total_bytes: int) -> Route:
    """A byte at a time, each within any per-read timeout: only an overall deadline stops it."""
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        try:
            for _ in range(total_bytes):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(byte_every_seconds)
        except OSError:
            pass  # the client gave up: what the test wants
    return answer


def huge(total_bytes: int, *, declared: bool = True) -> Route:
    """`total_bytes` of text, with or without a Content-Length saying so."""
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        if declared:
            handler.send_header("Content-Length", str(total_bytes))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"x" * 65536
        try:
            for start in range(0, total_bytes, len(block)):
                handler.wfile.write(block[: total_bytes - start])
        except OSError:
            pass
    return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        route = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        self.server.seen.append((self.path, dict(self.headers)))  # type: ignore[attr-defined]
        if route is None:
            page(b"missing", "text/plain", 404)(self)
            return
        route(self)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@dataclass(frozen=True)
class Tls:
    """A test certificate authority's certificate (for SSL_CERT_FILE) and a server
    certificate it signed for `hostname`."""

    hostname: str
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(folder: Path, hostname: str) -> Tls:
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "digest tests CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(hostname, folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return tls


class LocalServer:
    """A running server: `base` URL, the `routes` it serves (change them at will), the
    requests it `seen` as (path, headers) and, over TLS, the server names clients sent."""

    def __init__(self, server: ThreadingHTTPServer, tls: Tls | None = None) -> None:
        self._server = server
        self.port = server.server_address[1]
        self.base = f"https://{tls.hostname}:{self.port}" if tls else f"http://127.0.0.1:{self.port}"
        self.server_names: list[str | None] = server.server_names  # type: ignore[attr-defined]
        self.routes: dict[str, Route] = server.routes  # type: ignore[attr-defined]
        self.seen: list[tuple[str, dict[str, str]]] = server.seen  # type: ignore[attr-defined]

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def local_server(routes: dict[str, Route] | None = None, port: int = 0, tls: Tls | None = None
                 ) -> Iterator[LocalServer]:
    """A server on 127.0.0.1 (on `port`, e.g. the stack's publisher_port; 0: any free one),
    speaking https with `tls`'s certificate when given (its URLs then name `tls.hostname`)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.routes = dict(routes or {})  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    server.server_names = []  # type: ignore[attr-defined]
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        context.sni_callback = lambda _sock, name, _ctx: server.server_names.append(name)  # type: ignore[attr-defined]
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LocalServer(server, tls)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def allow_loopback(monkeypatch: pytest.MonkeyPatch, *entries: str) -> None:
    """Let this test's fetches reach the given host:port entries (DIGEST_FETCH_ALLOW)."""
    monkeypatch.setenv("DIGEST_FETCH_ALLOW", ",".join(entries))
    get_settings.cache_clear()
