"""The safe fetcher against real loopback HTTP servers: what it refuses (private
addresses however spelled, redirects into them, other schemes, loops, too many hops), its
overall deadline, its size cap, gzip, and the DIGEST_FETCH_ALLOW exceptions."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.infra import Fetched, FetchError, FetchRefused, FetchStatus, FetchTimeout, FetchTooLarge, fetch
from tests.support.http_server import (
    LocalServer,
    allow_loopback,
    gzipped,
    huge,
    local_server,
    make_tls,
    page,
    redirect,
    trickle,
)

ARTICLE = b"<html><body><p>Hello.</p></body></html>"
FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """A loopback server this test may fetch from (its host:port only)."""
    with local_server({"/article": page(ARTICLE)}) as running:
        allow_loopback(monkeypatch, f"127.0.0.1:{running.port}")
        yield running


@pytest.fixture
def inner() -> Iterator[LocalServer]:
    """A second loopback server, not allowed: the "internal service" a fetch must not reach."""
    with local_server({"/secret": page(b"internal secret", "text/plain")}) as running:
        yield running


def refused(url: str) -> FetchRefused:
    with pytest.raises(FetchRefused) as caught:
        fetch(url)
    return caught.value


# ------------------------------------------------------------------ what is refused


@pytest.mark.parametrize("host", [
    "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "[::1]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "localhost", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254",
    "100.64.0.1", "224.0.0.1", "240.0.0.1", "[fd00::1]", "[fe80::1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
])
def test_private_addresses_are_refused_in_every_spelling(inner: LocalServer, host: str) -> None:
    error = refused(f"http://{host}:{inner.port}/secret")

    assert str(error) == f"could not fetch http://{host}:{inner.port}/secret: refused (private address)"
    assert error.code == "fetch_refused"
    assert inner.seen == []


@pytest.mark.parametrize("url", ["ftp://news.example.com/feed", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO",
                                 "javascript:alert(1)", "data:text/html,hi", "//news.example.com/x"])
def test_other_schemes_are_refused(url: str) -> None:
    assert refused(url).reason == "refused (only http and https)"


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/secret", "http://2130706433:{port}/secret", "http://0x7f.1:{port}/secret",
    "http://[::1]:{port}/secret", "http://localhost:{port}/secret", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/", "file:///etc/passwd", "ftp://news.example.com/", "gopher://127.0.0.1:6379/_INFO",
])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_into_private_addresses_or_other_schemes_are_refused(
        server: LocalServer, inner: LocalServer, target: str, status: int) -> None:
    server.routes["/go"] = redirect(target.format(port=inner.port), status)

    error = refused(server.url("/go"))

    assert error.reason in ("refused (private address)", "refused (only http and https)")
    assert str(error).startswith(f"could not fetch {server.url('/go')}: refused")
    assert inner.seen == []


def test_a_redirect_loop_is_refused(server: LocalServer) -> None:
    server.routes["/a"] = redirect("/b")
    server.routes["/b"] = redirect(server.url("/a"))

    assert refused(server.url("/a")).reason == "refused (redirect loop)"


def test_five_redirects_are_followed_and_a_sixth_is_refused(server: LocalServer) -> None:
    for hop in range(1, 7):
        server.routes[f"/hop{hop}"] = redirect(f"/hop{hop + 1}")
    server.routes["/hop6"] = page(ARTICLE)
    server.routes["/hop7"] = page(ARTICLE)

    fetched = fetch(server.url("/hop1"))  # five redirects, then the page
    assert (fetched.url, fetched.body) == (server.url("/hop6"), ARTICLE)

    server.routes["/hop6"] = redirect("/hop7")
    assert refused(server.url("/hop1")).reason == "refused (more than 5 redirects)"


def test_allowing_one_port_does_not_allow_the_host(server: LocalServer, inner: LocalServer) -> None:
    assert fetch(server.url("/article")).body == ARTICLE
    refused(inner.url("/secret"))


def test_a_host_allowed_without_a_port_is_allowed_on_every_port(
        monkeypatch: pytest.MonkeyPatch, inner: LocalServer) -> None:
    allow_loopback(monkeypatch, "news.example.com", "127.0.0.1")

    assert fetch(inner.url("/secret")).body == b"internal secret"
    refused(f"http://[::1]:{inner.port}/secret")  # the same machine, but not the name allowed


# ------------------------------------------------------------------ what the asker is told


def test_an_error_status_is_one_line_without_the_remote_content(server: LocalServer) -> None:
    server.routes["/gone"] = page(b"<h1>internal stack trace: password=hunter2</h1>", status=404)

    with pytest.raises(FetchStatus) as caught:
        fetch(server.url("/gone"))

    assert str(caught.value) == f"could not fetch {server.url('/gone')}: HTTP 404"
    assert (caught.value.status, caught.value.code) == (404, "fetch_status")


def test_nothing_listening_is_cannot_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    with local_server() as closed:
        port = closed.port
    allow_loopback(monkeypatch, f"127.0.0.1:{port}")

    with pytest.raises(FetchError, match=r"^could not fetch http://127\.0\.0\.1:\d+/x: cannot connect$"):
        fetch(f"http://127.0.0.1:{port}/x")


def test_an_unknown_host_is_named_so() -> None:
    with pytest.raises(FetchError, match=r"unknown host$"):
        fetch("http://no-such-host.invalid/feed")


# ------------------------------------------------------------------ deadline and size


def test_a_slow_trickle_hits_the_overall_deadline(server: LocalServer) -> None:
    server.routes["/slow"] = trickle(byte_every_seconds=0.1, total_bytes=200)  # 20 s in all, 0.1 s per read

    started = time.monotonic()
    with pytest.raises(FetchTimeout) as caught:
        fetch(server.url("/slow"), deadline_seconds=1.0)

    assert time.monotonic() - started < 2.0
    assert str(caught.value) == f"could not fetch {server.url('/slow')}: timed out"


@pytest.mark.parametrize("declared", [True, False])
def test_a_fifty_megabyte_answer_hits_the_size_cap(server: LocalServer, declared: bool) -> None:
    server.routes["/big"] = huge(FIFTY_MB, declared=declared)

    with pytest.raises(FetchTooLarge) as caught:
        fetch(server.url("/big"))

    assert str(caught.value) == f"could not fetch {server.url('/big')}: too large"


def test_a_gzip_bomb_hits_the_size_cap_after_decoding(server: LocalServer) -> None:
    server.routes["/bomb"] = page(gzip.compress(b"\0" * FIFTY_MB), "text/plain", headers={"Content-Encoding": "gzip"})

    with pytest.raises(FetchTooLarge):
        fetch(server.url("/bomb"))


# ------------------------------------------------------------------ what works


def test_gzip_is_asked_for_and_decoded(server: LocalServer) -> None:
    server.routes["/zipped"] = gzipped(ARTICLE)

    fetched = fetch(server.url("/zipped"))

    assert fetched == Fetched(url=server.url("/zipped"), status=200, headers=fetched.headers, body=ARTICLE)
    assert fetched.content_type == "text/html"
    headers = {name.lower(): value for name, value in server.seen[-1][1].items()}
    assert {"gzip", "br"} <= {e.strip() for e in headers["accept-encoding"].split(",")}


def test_the_user_agent_names_digest_and_the_publishers_site(
        monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> None:
    monkeypatch.setenv("DIGEST_BASE_URL", "https://news.example.com/digest")
    allow_loopback(monkeypatch, f"127.0.0.1:{server.port}")

    fetch(server.url("/article"))

    headers = {name.lower(): value for name, value in server.seen[-1][1].items()}
    assert headers["user-agent"].startswith("digest/")
    assert headers["user-agent"].endswith("(+https://news.example.com/digest)")


def test_a_redirect_within_the_allowed_server_is_followed(server: LocalServer) -> None:
    server.routes["/old"] = redirect("/article", 301)

    assert fetch(server.url("/old")).url == server.url("/article")


def test_a_conditional_request_may_get_304(server: LocalServer) -> None:
    server.routes["/feed"] = page(b"", status=304, headers={"ETag": '"v1"'})

    fetched = fetch(server.url("/feed"), headers={"If-None-Match": '"v1"'})

    assert (fetched.status, fetched.body) == (304, b"")
    assert server.seen[-1][1]["If-None-Match"] == '"v1"'


# ------------------------------------------------------------------ one lookup, checked


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """getaddrinfo answering names from `answers` (one list of addresses per lookup, the last
    repeated), as a rebinding DNS server would; the names asked, in order."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def lookup(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host not in answers:
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        asked.append(host)
        addresses = answers[host][min(len(asked) - 1, len(answers[host]) - 1)]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return asked


def test_a_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch, inner: LocalServer) -> None:
    fake_dns(monkeypatch, {"mixed.example.com": [["93.184.216.34", "127.0.0.1"]]})

    assert refused(f"http://mixed.example.com:{inner.port}/secret").reason == "refused (private address)"
    assert inner.seen == []


def test_the_connection_goes_to_the_address_checked_not_a_second_lookup(
        monkeypatch: pytest.MonkeyPatch, inner: LocalServer) -> None:
    """A rebinding DNS: the first answer is the allowed intranet host, any later one the
    metadata service. One lookup is made, and the request still names the host."""
    asked = fake_dns(monkeypatch, {"cms.intranet": [["127.0.0.1"], ["169.254.169.254"]]})
    allow_loopback(monkeypatch, f"cms.intranet:{inner.port}")

    fetched = fetch(f"http://cms.intranet:{inner.port}/secret")

    assert fetched.body == b"internal secret"
    assert asked == ["cms.intranet"]
    assert inner.seen[-1][1]["Host"] == f"cms.intranet:{inner.port}"


# ------------------------------------------------------------------ https


@pytest.fixture
def tls_news(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: LocalServer) -> Iterator[LocalServer]:
    """https://news.test:PORT on loopback: a certificate from a test CA (trusted through
    SSL_CERT_FILE, as an operator trusts a private CA), the name resolving to 127.0.0.1,
    allowed beside the plain-http `server`."""
    tls = make_tls(tmp_path, "news.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    fake_dns(monkeypatch, {"news.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    with local_server({"/article": page(ARTICLE)}, tls=tls) as running:
        allow_loopback(monkeypatch, f"news.test:{running.port}", f"other.test:{running.port}",
                       f"news.test:{server.port}", f"127.0.0.1:{server.port}")
        yield running


def test_https_sends_the_name_as_sni_and_host_and_checks_the_certificate_for_it(tls_news: LocalServer) -> None:
    fetched = fetch(tls_news.url("/article"))

    assert fetched.body == ARTICLE
    assert tls_news.server_names == ["news.test"]
    assert tls_news.seen[-1][1]["Host"] == f"news.test:{tls_news.port}"

    with pytest.raises(FetchError) as caught:  # the same server under a name its certificate does not carry
        fetch(f"https://other.test:{tls_news.port}/article")
    assert str(caught.value) == (f"could not fetch https://other.test:{tls_news.port}/article: "
                                 "TLS certificate not valid for the host")
    assert caught.value.code == "fetch_tls"


def test_http_may_redirect_to_https_but_not_back(tls_news: LocalServer, server: LocalServer) -> None:
    server.routes["/up"] = redirect(tls_news.url("/article"))
    tls_news.routes["/down"] = redirect(f"http://news.test:{server.port}/article")

    assert fetch(server.url("/up")).url == tls_news.url("/article")
    assert refused(tls_news.url("/down")).reason == "refused (redirect from https to http)"
