"""The shape of the code, checked: layers point one way (import-linter), each package is
used through its __init__, no import hides inside a function, and each table state has
exactly one module that writes it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "digest"
PACKAGES = ("store", "mail", "infra", "readers", "stories", "staff", "editions", "feeds", "delivery", "feedback",
            "observe", "clicks", "actions", "worker", "web", "cli", "bench")


def sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_the_layers_hold() -> None:
    """entry points → actions → feedback, observe → delivery → editions, feeds → readers, stories,
    staff → mail, infra → store → config, errors (the contract is in pyproject.toml)."""
    run = subprocess.run([Path(sys.executable).parent / "lint-imports"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "1 kept, 0 broken" in run.stdout


def module_name(path: Path) -> str:
    parts = ("digest", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_outside_code_uses_a_package_through_its_init() -> None:
    """`from digest.delivery import send_batch`, never `from digest.delivery.sender import …`
    outside digest.delivery: a package's __init__ is its whole public interface."""
    wrong = []
    for path in sources():
        importer = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom | ast.Import):
                continue
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for module in modules:
                parts = module.split(".")
                if len(parts) < 3 or parts[0] != "digest" or parts[1] not in PACKAGES:
                    continue
                package = ".".join(parts[:2])
                if importer != package and not importer.startswith(package + "."):
                    wrong.append(f"{importer} imports {module}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_of_digest_hides_in_a_function() -> None:
    """A function-level import dodging a cycle is a design smell; there are none."""
    hidden = []
    for path in sources():
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if (module or "").startswith("digest") or any(n.startswith("digest") for n in names):
                    hidden.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not hidden, hidden


# Each pattern that writes a table state, and the one module allowed to use it.
WRITERS = {
    # Click numbers are added only by the flush (idempotent by its flush id).
    "click_counts and click_uniques": ("clicks/flush.py", [r"insert\(ClickCount\)", r"insert\(ClickUnique\)",
                                                            r"update\(ClickCount\)", r"(?<!class )\bClickFlush\("]),
    "click_hours": ("clicks/flush.py", [r"insert\(ClickHour\)", r"update\(ClickHour\)", r"(?<!class )\bClickHour\(",
                                        r"INSERT INTO click_hours"]),
    # Who clicked what, and who consented to that: only where both the newsletter and the reader said so.
    "click_history and click_history_consents": ("readers/click_history.py", [
        r"(?<!class )\bClickHistory\(", r"insert\(ClickHistory\)", r"delete\(ClickHistory\)",
        r"(?<!class )\bClickHistoryConsent\(", r"delete\(ClickHistoryConsent\)", r"INSERT INTO click_history"]),
    # The open pixel's numbers: written whole by its flush.
    "open_counts": ("clicks/opens.py", [r"insert\(OpenCount\)", r"update\(OpenCount\)", r"(?<!class )\bOpenCount\("]),
    "deliveries": ("delivery/ledger.py", [r"update\(Delivery\)", r"insert\(Delivery\)", r"UPDATE deliveries",
                                           r"INSERT INTO deliveries", r"(?<!class )\bDelivery\("]),
    "editions.status": ("editions/lifecycle.py", [r"update\(Edition\)", r"\.status\s*=\s*EditionStatus"]),
    "notices.status": ("delivery/notices.py", [r"update\(Notice\)", r"UPDATE notices"]),
    # The claim on a feed and the items' ids: polling; whether a feed is polled at all, and
    # why not: the registry (a poll that stops its feed asks the registry to).
    "feeds.polling_until and feed_items": ("feeds/poll.py", [r"update\(Feed\)", r"(?<!class )\bFeedItem\(",
                                                              r"\.polling_until\s*="]),
    "feeds.active": ("feeds/registry.py", [r"\bfeed\.active\s*=", r"\.paused_reason\s*=",
                                           r"(?<!class )\bFeed\("]),
    # A subject test's plan and its one decision (a conditional UPDATE only one caller wins).
    "ab_tests": ("editions/ab.py", [r"(?<!class )\bAbTest\(", r"insert\(AbTest\)", r"update\(AbTest\)",
                                    r"delete\(AbTest\)", r"UPDATE ab_tests", r"INSERT INTO ab_tests"]),
    "edition_tallies": ("editions/tallies.py", [r"(?<!class )\bEditionTally\(", r"insert\(EditionTally\)",
                                                 r"update\(EditionTally\)", r"delete\(EditionTally\)",
                                                 r"INSERT INTO edition_tallies"]),
    # What retention keeps of a compacted month, and which months it compacted.
    "reader_delivery_summaries and delivery_compactions": (
        "delivery/retention.py", [r"INSERT INTO reader_delivery_summaries", r"(?<!class )\bReaderDeliverySummary\(",
                                  r"delete\(ReaderDeliverySummary\)", r"INSERT INTO delivery_compactions",
                                  r"update\(DeliveryCompaction\)", r"(?<!class )\bDeliveryCompaction\("]),
}
# The benchmark's history step fills a scratch database with a year of sends in three
# INSERT … SELECT statements, as the product would have written them row by row: it is a
# seed, not a writer of anyone's data.
# Converting deliveries to or from its partitioned layout (migration 0023, the benchmark's
# baseline) copies every row as it is: a change of storage, not a write of any state.
SEEDS = {"bench/history.py", "store/partitions.py"}


@pytest.mark.parametrize("state", WRITERS)
def test_each_state_has_one_writer(state: str) -> None:
    owner, patterns = WRITERS[state]
    writers = {str(path.relative_to(SRC)) for path in sources()
               for pattern in patterns if re.search(pattern, path.read_text())} - SEEDS
    assert writers == {owner}, f"{state} is written by {sorted(writers)}"


def test_subscriber_status_is_written_only_by_readers() -> None:
    writers = {str(path.relative_to(SRC)) for path in sources()
               if re.search(r"update\(Subscriber\)|UPDATE subscribers|\.status\s*=\s*SubscriberStatus",
                            path.read_text())}
    assert writers and all(w.startswith("readers/") for w in writers), sorted(writers)


def test_delivery_statements_are_built_from_the_enum() -> None:
    """No hand-written status literal in the ledger's SQL: each comes from DeliveryStatus."""
    tree = ast.parse((SRC / "delivery" / "ledger.py").read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body
                  and isinstance(node.body[0], ast.Expr)}
    sql = " ".join(node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings)
    literals = re.findall(r"status\s*(?:=|<>)\s*'(\w+)'", sql)
    assert literals == ["active"], literals  # a reader's status in the planning INSERT, not a delivery's
