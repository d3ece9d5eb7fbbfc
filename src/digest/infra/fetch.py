"""The one way digest fetches a URL on the server: `fetch(url)`.

Whoever can make digest fetch a URL (an editor pasting an article, a feed, a redirect one
of those answers with) must not reach the machine's own services or the private network,
nor hold a worker thread for long, nor fill its memory. So a fetch:

- takes http and https only; a redirect may go from http to https, never elsewhere;
  at most `FETCH_MAX_REDIRECTS` hops, each checked like the first;
- resolves the host itself and refuses it when any address it resolves to is loopback,
  private, link-local, multicast, reserved, CGNAT, unique-local or an IPv4 address dressed
  as IPv6 (however the address is spelled: 2130706433, 0177.0.0.1, 0x7f.1, 127.1), then
  connects to that checked address: no second lookup for a rebinding DNS to answer;
- has one deadline for the whole fetch (every connect, read and redirect), not per read;
- stops at a size cap, counted after gzip/brotli decoding.

DIGEST_FETCH_ALLOW names the exceptions (`host` or `host:port`), for an intranet CMS and
the tests' loopback servers. Errors are `FetchError`s whose one-line message names the URL
and the reason and never carries the remote's content; the log has the detail.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import ssl
import time
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from digest import __version__
from digest.config import get_settings, parse_fetch_allow
from digest.errors import Invalid
from digest.infra.addresses import IPAddress, legacy_ipv4, parse_address, refusal

# The detail of a failed fetch (which address, which hop) goes here at INFO: the asker gets
# one line from the error, and a command-line run, which configures no logging, no more.
log = logging.getLogger(__name__)

FETCH_DEADLINE_SECONDS = 20.0
FETCH_MAX_BYTES = 20 * 1024 * 1024
FETCH_MAX_REDIRECTS = 5
URL_SHOWN_MAX_CHARS = 200
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
CHUNK_BYTES = 64 * 1024


class FetchError(Invalid):
    """A URL that could not be fetched; the message is the one line the asker sees."""

    default_code = "fetch_failed"

    def __init__(self, url: str, reason: str, *, code: str | None = None) -> None:
        shown = url if len(url) <= URL_SHOWN_MAX_CHARS else url[:URL_SHOWN_MAX_CHARS] + "…"
        super().__init__(f"could not fetch {shown}: {reason}", code=code)
        self.url = url
        self.reason = reason


class FetchRefused(FetchError):
    """Not a URL digest will fetch: its scheme, its address or where it redirects."""

    default_code = "fetch_refused"


class FetchStatus(FetchError):
    """The server answered with an error status (or a redirect with nowhere to go)."""

    default_code = "fetch_status"

    def __init__(self, url: str, status: int, retry_after: str | None = None) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status
        # The server's Retry-After as it wrote it (seconds or an HTTP date), for a 429 or 503.
        self.retry_after = retry_after


class FetchTimeout(FetchError):
    """The whole fetch took longer than its deadline."""

    default_code = "fetch_timeout"


class FetchTooLarge(FetchError):
    """The answer is bigger than the fetch's size cap."""

    default_code = "fetch_too_large"


@dataclass(frozen=True)
class Fetched:
    """A fetched answer: the URL it finally came from, its status (2xx, or 304 when the
    request was conditional), its headers and its decoded body."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    # Where the asked URL now lives for good: set when every redirect on the way was
    # permanent (301, 308), so a caller that stores the URL (a feed) can update it.
    moved_to: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class _UnknownHost(httpcore.ConnectError):
    """The resolver has no address for the host."""


class _Refused(Exception):
    """Raised inside the connection machinery; `fetch` turns it into a FetchRefused."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def user_agent() -> str:
    return f"digest/{__version__} (+{get_settings().base_url})"


@functools.cache
def _allowed_entries(raw: str) -> frozenset[tuple[str, int | None]]:
    return frozenset(parse_fetch_allow(raw))


def is_allowed(host: str, port: int) -> bool:
    """Whether DIGEST_FETCH_ALLOW names this host (on any port) or this host:port."""
    entries = _allowed_entries(get_settings().fetch_allow)
    host = host.lower().strip("[]")
    return (host, None) in entries or (host, port) in entries


def resolve_checked(host: str, port: int) -> list[IPAddress]:
    """The addresses to connect to for host:port, every one of them checked; `_Refused`
    when any is not public (a name that also resolves inward is not trusted) unless
    DIGEST_FETCH_ALLOW names it."""
    literal = parse_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise _UnknownHost(f"cannot resolve {host}: {exc}") from None
        addresses = []
        for info in infos:
            found = parse_address(str(info[4][0]).split("%", 1)[0])
            if found is not None and found not in addresses:
                addresses.append(found)
    if is_allowed(host, port):
        return addresses
    for address in addresses:
        kind = refusal(address)
        if kind is not None:
            raise _Refused("refused (private address)", f"{host}:{port} is {address}, {kind}")
    if not addresses:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return addresses


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits no later than the fetch's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: typing.Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses `resolve_checked` approved, never by name: TLS still
    verifies (and sends as SNI) the name, which httpcore takes from the URL."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in resolve_checked(host, port):
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the fetch's deadline passed")
            try:
                stream = super().connect_tcp(str(address), port, min(timeout or left, left), local_address,
                                             socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise last_error or httpcore.ConnectError(f"cannot connect to {host}:{port}")


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


@functools.cache
def _ssl_context(ca_file: str | None, ca_dir: str | None) -> ssl.SSLContext:
    """One verifying context per trust store (SSL_CERT_FILE, SSL_CERT_DIR): loading the CA
    bundle costs ~100 ms of CPU, which every fetch would otherwise pay (a feed answering
    304 costs a few ms besides). An SSLContext may be shared by threads."""
    return httpx.create_ssl_context()


class _CheckedTransport(httpx.BaseTransport):
    """httpx over an httpcore pool that connects through `_CheckedBackend`; no proxies
    from the environment (a proxy would connect where we never looked)."""

    def __init__(self, deadline: float) -> None:
        context = _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        self._pool = httpcore.ConnectionPool(ssl_context=context, max_connections=2,
                                             network_backend=_CheckedBackend(deadline))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                             target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions,
        )
        answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_ResponseStream(answer.stream), extensions=answer.extensions)

    def close(self) -> None:
        self._pool.close()


def checked_url(url: str) -> str:
    """The URL as it will be requested: http(s) only, a host, an IPv4 host in dotted form
    (httpx refuses the other spellings the resolver would take). Raises `_Refused`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise _Refused("not a valid URL", f"unparseable {url!r}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _Refused("refused (only http and https)", f"scheme {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise _Refused("not a valid URL", "no host")
    legacy = legacy_ipv4(host)
    if legacy is not None and str(legacy) != host:
        netloc = str(legacy) if port is None else f"{legacy}:{port}"
        parts = parts._replace(netloc=netloc)  # user:password@ is dropped with the old spelling
    return urlunsplit(parts)


def fetch(url: str, *, headers: Mapping[str, str] | None = None, max_bytes: int = FETCH_MAX_BYTES,
          deadline_seconds: float = FETCH_DEADLINE_SECONDS, max_redirects: int = FETCH_MAX_REDIRECTS,
          form: Mapping[str, str] | None = None) -> Fetched:
    """GET `url` safely (see the module's docstring); with `form`, POST it form-encoded
    (a WebSub hub's subscription request) and follow no redirect. A 2xx, or a 304 to a
    conditional request, is returned; anything else raises a `FetchError` subclass."""
    if form is not None:
        max_redirects = 0
    deadline = time.monotonic() + deadline_seconds
    request_headers = {"User-Agent": user_agent(), "Accept": "*/*", **(headers or {})}
    current = url
    previous: str | None = None
    seen: set[str] = set()
    permanent = True  # every hop so far a 301 or 308
    try:
        with httpx.Client(transport=_CheckedTransport(deadline), follow_redirects=False, trust_env=False,
                          timeout=httpx.Timeout(deadline_seconds)) as client:
            for hop in range(max_redirects + 1):
                target = checked_url(current)
                if previous and urlsplit(previous).scheme == "https" and urlsplit(target).scheme != "https":
                    raise _Refused("refused (redirect from https to http)", f"{previous} -> {target}")
                if target in seen:
                    raise _Refused("refused (redirect loop)", f"{target} again")
                seen.add(target)
                previous = target
                with client.stream("GET" if form is None else "POST", target, headers=request_headers,
                                   data=form) as response:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchStatus(url, response.status_code)
                        current = str(response.url.join(location))
                        permanent = permanent and response.status_code in (301, 308)
                        log.info("fetch %s: %s redirects to %s", url, target, current)
                        continue
                    if response.status_code == 304 or 200 <= response.status_code < 300:
                        body = _read_capped(response, url, max_bytes)
                        return Fetched(url=target, status=response.status_code, headers=dict(response.headers),
                                       body=body, moved_to=target if permanent and hop else None)
                    log.info("fetch %s: %s answered HTTP %s", url, target, response.status_code)
                    raise FetchStatus(url, response.status_code, response.headers.get("retry-after"))
            raise _Refused(f"refused (more than {max_redirects} redirects)", f"last {current}")
    except _Refused as exc:
        log.info("fetch %s refused: %s", url, exc)
        raise FetchRefused(url, exc.reason) from None
    except (httpcore.TimeoutException, httpx.TimeoutException) as exc:
        log.info("fetch %s timed out: %r", url, exc)
        raise FetchTimeout(url, "timed out") from None
    except _UnknownHost as exc:
        log.info("fetch %s: %s", url, exc)
        raise FetchError(url, "unknown host", code="fetch_unknown_host") from None
    except (httpcore.ConnectError, httpx.ConnectError) as exc:
        log.info("fetch %s: cannot connect: %r", url, exc)
        # httpcore wraps the ssl error as the ConnectError's argument.
        if any(isinstance(arg, ssl.SSLCertVerificationError) for arg in (exc.__cause__, *exc.args)):
            raise FetchError(url, "TLS certificate not valid for the host", code="fetch_tls") from None
        raise FetchError(url, "cannot connect", code="fetch_unreachable") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpx.TransportError, httpx.DecodingError,
            httpx.InvalidURL, httpx.TooManyRedirects) as exc:
        log.info("fetch %s failed: %r", url, exc)
        raise FetchError(url, "the server's answer could not be read") from None


def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:  # compressed or not, the body will be larger
        log.info("fetch %s: Content-Length %s over the %s byte cap", url, declared, max_bytes)
        raise FetchTooLarge(url, "too large")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            log.info("fetch %s: more than %s bytes (decoded)", url, max_bytes)
            raise FetchTooLarge(url, "too large")
        chunks.append(chunk)
    return b"".join(chunks)
