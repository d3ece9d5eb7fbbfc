"""2. The raw SMTP ceiling: a plain smtplib loop over C connections to smtp-sink, each in a
spawned process, the yardstick the end-to-end rate is read against (the issue's baseline),
and the same loop through digest's own pipelined connection, the tighter yardstick."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from digest.bench.options import BENCH_SECRET, BenchError
from digest.bench.prep import _NullConnection, _Row, sample_edition_view, sample_readers
from digest.config import Settings
from digest.delivery import send_one
from digest.mail import SmtpConnection, WireMessage, render_edition, shared_headers
from digest.store import utcnow

SMTP_CEILING_TIMEOUT_SECONDS = 60


def ceiling_message() -> bytes:
    """One message as the send loop builds it for the sample edition (~20 KB)."""

    settings = Settings(env="test", secret_key=BENCH_SECRET)
    view = sample_edition_view()
    rendered = render_edition(view)
    shared = shared_headers(view, rendered.subject, settings)
    reader = sample_readers(1)[0]
    connection = _NullConnection()
    send_one(connection, view.id, shared, shared.encoded_shared, rendered, _Row(1, 1, 0), reader,
              settings.sender_address, settings.sender_domain, settings, utcnow)
    return connection.last


def _smtp_client(port: int, message: bytes, seconds: float, barrier: Any, results: Any,
                 pipelined: bool = False) -> None:
    """One sending process: one connection, sendmail in a loop for `seconds` (or, when
    `pipelined`, digest's SmtpConnection.send with the message as the fast path hands it)."""
    import smtplib


    client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.localhost", timeout=30)
    client.ehlo()
    if pipelined:
        connection, wire = SmtpConnection(client), WireMessage(message)
        if not connection.pipelining:
            raise BenchError("smtp-sink did not offer PIPELINING")
    barrier.wait(timeout=SMTP_CEILING_TIMEOUT_SECONDS)
    sent = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        if pipelined:
            connection.send("digest@news.example.com", f"reader{sent}@example.org", wire)
        else:
            client.sendmail("digest@news.example.com", [f"reader{sent}@example.org"], message)
        sent += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    client.quit()
    results.put((sent, elapsed, cpu))


def measure_smtp_ceiling(port: int, connections: int, seconds: float, pipelined: bool = False) -> dict[str, Any]:
    """Messages/s over `connections` sending processes, and their CPU per message."""
    message = ceiling_message()
    context = multiprocessing.get_context("spawn")  # no inherited threads or sockets
    barrier = context.Barrier(connections + 1)
    results = context.Queue()
    procs = [context.Process(target=_smtp_client, args=(port, message, seconds, barrier, results, pipelined),
                             daemon=True)
             for _ in range(connections)]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=SMTP_CEILING_TIMEOUT_SECONDS)
        outcomes = [results.get(timeout=seconds + SMTP_CEILING_TIMEOUT_SECONDS) for _ in procs]
    except Exception as exc:  # noqa: BLE001 - a broken barrier or an empty queue: one message
        raise BenchError(f"the SMTP ceiling clients did not finish: {type(exc).__name__}") from None
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    sent_total = sum(outcome[0] for outcome in outcomes)
    return {
        "messages_per_second": sum(sent / elapsed for sent, elapsed, _ in outcomes),
        "messages": sent_total, "connections": connections, "seconds": seconds, "message_bytes": len(message),
        "client_cpu_us_per_message": sum(cpu for _, _, cpu in outcomes) / max(1, sent_total) * 1e6,
    }
