"""9. Moving in: a Mailchimp export of 1,000,000 readers (20,000 with --quick) imported by
`digest subscribers import FILE --from mailchimp`, the command a publisher runs, into a
database of its own on PostgreSQL. Its wall time (the interpreter's start included: what
the publisher waits) and its peak RSS, read from the kernel when the process ends (wait4),
so nothing of the bench itself is counted. A second, ten times smaller file gives the
baseline: flat memory means the peak barely grows with the file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.bench.options import BenchError, BenchOptions
from digest.bench.services import scratch_database

# Mailchimp's subscribed-members export, as its documentation lays it out.
HEADER = ["Email Address", "First Name", "Last Name", "Address", "Phone Number", "MEMBER_RATING", "OPTIN_TIME",
          "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC",
          "REGION", "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"]
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "web.de", "example.org",
           "newsroom.example", "ukr.net", "gmx.de")
FIRST = ("Olena", "Ann", "Dmytro", "Cara", "Jo", "Quinn", "Xavi", "Maria", "Taras", "Li")
LAST = ("Shevchenko", "Silva", "Haddad", "Petrov", "Berg", "Kovalenko", "Novak", "Chen", "Okafor", "Brown")
TAGS = ('"World"', '"Politics"', '"World","Business"', '"Morning","Science"', "", '"Health","Culture","Sports"')
IMPORT_TIMEOUT_SECONDS = 1800


def import_rows(options: BenchOptions) -> int:
    return 20_000 if options.quick else 1_000_000


def write_export(path: Path, rows: int) -> None:
    start = datetime(2021, 1, 1, 6, 0, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(HEADER)
        for n in range(rows):
            opted = start + timedelta(minutes=n)
            ip = f"203.0.{n // 250 % 250}.{n % 250 + 1}"
            writer.writerow([
                f"{FIRST[n % 10].lower()}.{LAST[n // 10 % 10].lower()}.{n}@{DOMAINS[n // 100 % 10]}",
                FIRST[n % 10], LAST[n // 10 % 10], "", "", str(n % 5 + 1), f"{opted:%Y-%m-%d %H:%M:%S}", ip,
                f"{opted + timedelta(seconds=59):%Y-%m-%d %H:%M:%S}", ip, "", "", "", "", "", "", "",
                "2026-11-30 10:00:00", str(400_000_000 + n), f"e{n:09x}", "", TAGS[n % len(TAGS)]])


def _import(path: Path, database_url: str, workdir: Path) -> dict[str, Any]:
    """`digest subscribers import` in a process of its own: wall seconds, peak RSS (the
    kernel's, from wait4) and the command's own summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_DATABASE_URL=database_url, DIGEST_SMTP_URL=f"outbox://{workdir / 'outbox'}",
               DIGEST_BROKER_URL="redis://127.0.0.1:1/0")  # no --send-confirmations: no broker asked
    out_path, err_path = workdir / f"import-{path.stem}.json", workdir / f"import-{path.stem}.log"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "digest.cli", "subscribers", "import", str(path),
                                    "--from", "mailchimp", "--json"], env=env, cwd=workdir, stdout=out, stderr=err)
        deadline = started + IMPORT_TIMEOUT_SECONDS
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                raise BenchError(f"the import of {path.name} took longer than {IMPORT_TIMEOUT_SECONDS} s")
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if process.returncode != 0:
        raise BenchError(f"the import of {path.name} failed (exit {process.returncode}): "
                         f"{err_path.read_text(errors='replace')[-300:]}")
    summary = json.loads(out_path.read_text(encoding="utf-8"))
    if summary["imported"] != summary["rows"]:
        raise BenchError(f"the import of {path.name} took {summary['imported']} of {summary['rows']} rows")
    return {"seconds": seconds, "rows_per_second": summary["rows"] / seconds,
            "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}


def measure_moving_in(options: BenchOptions, workdir: Path) -> dict[str, Any]:
    rows = import_rows(options)
    runs = {}
    for name, size in (("baseline", rows // 10), ("full", rows)):
        path = workdir / f"mailchimp-{size}.csv"
        write_export(path, size)
        with scratch_database(options.pg_url) as database_url:
            runs[name] = {"rows": size, "bytes": path.stat().st_size, **_import(path, database_url, workdir)}
        path.unlink()
    return runs
