"""Reading a large import in a second process while this one writes.

Reading a row of another service's export (the CSV, the layout's columns, the address
checked by email-validator, times and IPs parsed) costs about as much CPU as writing it,
and a million-row file is a couple of minutes of each. So the command line forks a reader:
it runs the same reading generator and sends its chunks of rows down a pipe, while the
importing process writes the previous chunk; the two use the two cores a small host has.

The reader is forked after the import's first query and touches no database: it only
reads the file. It leaves by multiprocessing's os._exit, so the connection it inherited is
never closed or written by it. The pipe holds a chunk or two at most, so memory stays flat
whatever the file's size. Whatever the reader raises (a header that is not the service's,
a line the csv module refuses, bytes that are not UTF-8) is raised here, before or between
chunks, exactly as reading in this process would raise it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from digest.errors import DigestError

Chunk = TypeVar("Chunk")
JOIN_SECONDS = 10


class ReaderLost(DigestError):
    """The reading process ended without a word (killed, or out of memory)."""

    default_code = "import_reader_lost"


def can_read_aside() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def read_aside(read: Callable[[], Iterator[Chunk]], state: Callable[[], Any],
               merge: Callable[[Any], None]) -> Iterator[Chunk]:
    """The chunks `read()` yields, produced in a forked process. After each chunk the
    child's `state()` (what reading learned: rows counted, refused rows, …) is sent along
    and given to `merge` here before the chunk is yielded; `state` may hand over and forget
    what it sends, so the child's memory stays flat."""
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_read, args=(sending, read, state),
                                                          name="digest-import-reader", daemon=True)
    process.start()
    sending.close()
    try:
        while True:
            try:
                kind, payload, learned = receiving.recv()
            except EOFError:
                process.join(JOIN_SECONDS)  # the pipe closes as the process ends: wait for its exit status
                raise ReaderLost(f"the import's reading process ended unexpectedly (exit {process.exitcode})") from None
            merge(learned)
            if kind == "error":
                raise payload
            if kind == "end":
                return
            yield payload
    finally:
        receiving.close()
        if process.is_alive():
            process.terminate()
        process.join(JOIN_SECONDS)


def _read(sending: Connection, read: Callable[[], Iterator[Any]], state: Callable[[], Any]) -> None:
    try:
        for chunk in read():
            sending.send(("chunk", chunk, state()))
        sending.send(("end", None, state()))
    except BaseException as exc:  # noqa: BLE001 - handed to the importing process, which raises it
        sending.send(("error", exc, state()))
    finally:
        sending.close()
