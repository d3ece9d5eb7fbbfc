"""`digest bench --quick`: a smoke test of the benchmark itself, on the real services.

No timing is asserted (the machine is shared and noisy): only that one run measures every
figure, writes numbers to the JSON file and prints the table.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import PG_ADMIN_URL, REDIS_URL

pytestmark = pytest.mark.integration

QUICK_PLAN_SIZES = (2_000, 5_000)  # digest.bench.QUICK_PLAN_SIZES, written out so a change shows here
BENCH_TIMEOUT_SECONDS = 240  # the quick run takes ~20 s on an idle 2-core machine
FIGURES = {
    "prep_fast_us", "prep_stdlib_us", "prep_naive_us", "prep_dkim_us",  # 1. message preparation
    "smtp_ceiling_msgs", "smtp_ceiling_pipelined_msgs", "e2e_share_of_pipelined",  # 2. raw SMTP ceilings
    "e2e_msgs", "e2e_worker_cpu_us", "e2e_postgres_cpu_us",  # 3. end to end
    *(f"plan_{size}_{what}" for size in QUICK_PLAN_SIZES for what in ("seconds", "rss_mb")),  # 4. planning
    "unsubscribe_p99_ms", "unsubscribe_rate",  # 5. one-click unsubscribe
    "sql_per_batch_500", "sql_per_batch_5000",  # 6. statements per batch
    "archive_idle_p99_ms", "archive_signins_p99_ms", "archive_signins_ratio", "signins_per_second",  # 7. web layer
    "feeds_full_polls", "feeds_full_cpu_ms", "feeds_304_polls", "feeds_304_cpu_ms",  # 8. feed polls
    "feeds_1000_per_minute_core",
    "import_seconds", "import_rows_per_second", "import_rss_mb",  # 9. moving in
    "click_p99_ms", "click_rate",  # 10. the click redirect
    "history_3d_msgs", "history_3d_release_s", "history_3d_postgres_cpu_us",  # 11. history (--history-days 3)
    *(f"history_3d_{look}_ms" for look in ("ops", "status_json", "metrics", "editor_dashboard")),
}


def test_quick_bench_measures_every_figure(tmp_path: Path) -> None:
    results_file = tmp_path / "bench.json"
    env = {**os.environ, "DIGEST_BENCH_PG_URL": PG_ADMIN_URL, "DIGEST_BENCH_REDIS_URL": REDIS_URL}
    done = subprocess.run([sys.executable, "-m", "digest.cli", "bench", "--quick", "--history-days", "3",
                           "--json", str(results_file)],
                          env=env, capture_output=True, timeout=BENCH_TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]

    results = json.loads(results_file.read_text(encoding="utf-8"))
    figures = results["figures"]
    assert set(figures) == FIGURES
    for key, figure in figures.items():
        value = figure["value"]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        assert math.isfinite(value) and value > 0, (key, value)
        for optional in ("baseline", "ratio"):
            assert figure[optional] is None or (isinstance(figure[optional], (int, float))
                                                and math.isfinite(figure[optional])), (key, optional)
        assert figure["met"] in (True, False, None), key
    # Goals are judged, whatever the verdict on this machine.
    assert all(isinstance(figures[key]["met"], bool)
               for key in ("prep_fast_us", "e2e_msgs", "unsubscribe_p99_ms", "click_p99_ms", "sql_per_batch_5000",
                           "feeds_1000_per_minute_core", "import_seconds", "import_rss_mb"))
    assert details_feeds_ok(results["details"]["feeds"])
    details = results["details"]
    assert details["end_to_end"]["counts"] == {"sent": details["end_to_end"]["readers"]}
    assert details["unsubscribe"]["ok"] == details["unsubscribe"]["requests"]
    # Every click redirected, and every one counted (people's, each from its own copy).
    assert details["clicks"]["redirected"] == details["clicks"]["requests"]
    assert details["clicks"]["clicks_in_database"] + details["clicks"]["machine_clicks_in_database"] \
        == details["clicks"]["requests"] + 100
    assert [plan["planned"] for plan in details["planning"]] == list(QUICK_PLAN_SIZES)
    assert [details["moving_in"][run]["rows"] for run in ("baseline", "full")] == [2_000, 20_000]
    [history] = details["history"]
    assert history["counts"] == {"sent": history["readers"]}
    assert history["history"]["delivery_rows"] == 3 * history["readers"]
    assert isinstance(figures["history_3d_msgs"]["met"], bool)
    table = done.stdout.decode()
    assert "met?" in table and "end to end" in table


def details_feeds_ok(feeds: dict[str, object]) -> bool:
    """Every feed answered in full the first time and 304 the second (bench.feeds checks it too)."""
    count = feeds["feeds"]
    return (feeds["full"]["outcomes"] == {"stories": count}  # type: ignore[index]
            and feeds["not_modified"]["outcomes"] == {"not_modified": count})  # type: ignore[index]
