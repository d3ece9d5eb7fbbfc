"""The figures a run is judged by, each next to its same-run baseline and goal, and how
they print: a rich table, or GitHub markdown from a `--json` file for the README."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table
from rich.text import Text

from digest.bench.history import GOAL_DASHBOARD_MS, goal_share
from digest.bench.round_trips import ROUND_TRIP_BATCHES

# Goals, from the issue.
GOAL_PREP_US = 50.0
GOAL_E2E_SHARE_OF_CEILING = 0.60
GOAL_PLAN_1M_SECONDS = 60.0
GOAL_PLAN_RSS_MB = 300.0
PLAN_RSS_FLAT_RATIO = 1.25  # "flat": the largest size's peak within 25 % of the smallest's
GOAL_UNSUBSCRIBE_P99_MS = 25.0
GOAL_CLICK_P99_MS = 10.0  # the click redirect at 500/s on one `digest serve` process
GOAL_FEEDS_304_CORE_SHARE = 0.10  # 1,000 feeds polled every minute, answering 304: < 10 % of a core
GOAL_IMPORT_1M_SECONDS = 120.0  # a million readers moved in within two minutes, on PostgreSQL
GOAL_IMPORT_RSS_MB = 300.0  # at flat memory, whatever the file's size
GOAL_ARCHIVE_SIGNINS_RATIO = 1.5  # GET /archive p99 during sign-ins, against its p99 alone


@dataclass
class Figure:
    """One row of the table and one entry of the JSON file."""

    label: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    ratio_unit: str = ""  # "×" or "%"
    goal: str = ""
    met: bool | None = None


def _history_figures(f: dict[str, Figure], fresh: dict[str, Any], histories: list[dict[str, Any]]) -> None:
    """The send rate and the planning time with N days of history, against the fresh run's."""
    plain = {run["history"]["days"]: run for run in histories if run.get("layout") == "plain"}
    for run in histories:
        if run.get("layout") == "plain":
            continue
        days = run["history"]["days"]
        rows = run["history"]["delivery_rows"]
        if days in plain:
            _layout_figures(f, days, run, plain[days])
        elif run.get("retention"):
            f[f"history_{days}d_retention_remove_ms"] = Figure(
                f"retention: a month ({run['retention']['rows']:,} rows) removed, partition dropped",
                run["retention"]["remove_seconds"] * 1000, "ms")
        for look, label in (("ops_ms", "/ops"), ("status_json_ms", "digest status --json"), ("metrics_ms", "/metrics"),
                            ("editor_dashboard_ms", "editor dashboard")):
            value, fresh_value = run["dashboards_ms"][look], fresh["dashboards_ms"][look]
            f[f"history_{days}d_{look}"] = Figure(
                f"{label} with {rows:,} delivery rows", value, "ms", fresh_value, "fresh database",
                value / fresh_value if fresh_value else None, "×", f"≤ {GOAL_DASHBOARD_MS:.0f} ms",
                value <= GOAL_DASHBOARD_MS)
        share = run["messages_per_second"] / fresh["messages_per_second"]
        goal = goal_share(days)
        f[f"history_{days}d_msgs"] = Figure(
            f"end to end with {days} days of history ({run['history']['delivery_rows']:,} delivery rows)",
            run["messages_per_second"], "msg/s", fresh["messages_per_second"], "fresh database", share * 100, "%",
            f"≥ {goal * 100:.0f} % of fresh", share >= goal)
        f[f"history_{days}d_release_s"] = Figure(
            f"planning with {days} days of history", run["release_seconds"], "s", fresh["release_seconds"],
            "fresh database", run["release_seconds"] / fresh["release_seconds"], "×")
        f[f"history_{days}d_postgres_cpu_us"] = Figure(
            f"PostgreSQL CPU per message with {days} days of history", run["cpu_us_per_message"]["postgres"], "µs",
            fresh["cpu_us_per_message"]["postgres"], "fresh database",
            run["cpu_us_per_message"]["postgres"] / fresh["cpu_us_per_message"]["postgres"], "×")


def _layout_figures(f: dict[str, Figure], days: int, partitioned: dict[str, Any], plain: dict[str, Any]) -> None:
    """Monthly partitions against one plain table, the same history in the same run."""
    pg, pg_plain = partitioned["cpu_us_per_message"]["postgres"], plain["cpu_us_per_message"]["postgres"]
    f[f"history_{days}d_partitioned_postgres_cpu_us"] = Figure(
        f"PostgreSQL CPU per message, {days} days, partitioned by month", pg, "µs", pg_plain,
        "one plain table", pg / pg_plain if pg_plain else None, "×")
    f[f"history_{days}d_partitioned_msgs"] = Figure(
        f"end to end, {days} days, partitioned by month", partitioned["messages_per_second"], "msg/s",
        plain["messages_per_second"], "one plain table",
        partitioned["messages_per_second"] / plain["messages_per_second"] * 100, "%")
    dropped, deleted = partitioned.get("retention"), plain.get("retention")
    if dropped and deleted:
        f[f"history_{days}d_retention_remove_ms"] = Figure(
            f"retention: removing a month ({dropped['rows']:,} rows), partition dropped",
            dropped["remove_seconds"] * 1000, "ms", deleted["remove_seconds"] * 1000,
            f"batched DELETE ({deleted['delete_batches']} batches)",
            deleted["remove_seconds"] / dropped["remove_seconds"] if dropped["remove_seconds"] else None, "× faster")
        f[f"history_{days}d_retention_summarise_ms"] = Figure(
            f"retention: a month's tallies and reader summaries ({dropped['rows']:,} rows)",
            dropped["summarise_seconds"] * 1000, "ms", deleted["summarise_seconds"] * 1000, "on one plain table")


def _feed_figures(f: dict[str, Figure], feeds: dict[str, Any]) -> None:
    full, same = feeds["full"], feeds["not_modified"]
    f["feeds_full_polls"] = Figure(f"feeds: polls/s, full answer ({feeds['items_per_feed']} items)",
                                   full["polls_per_second"], "polls/s")
    f["feeds_full_cpu_ms"] = Figure("feeds: worker CPU per poll, full answer", full["cpu_ms_per_poll"], "ms")
    f["feeds_304_polls"] = Figure("feeds: polls/s, 304", same["polls_per_second"], "polls/s",
                                  full["polls_per_second"], "full answers", same["polls_per_second"]
                                  / full["polls_per_second"], "×")
    f["feeds_304_cpu_ms"] = Figure("feeds: worker CPU per poll, 304", same["cpu_ms_per_poll"], "ms",
                                   full["cpu_ms_per_poll"], "full answer",
                                   full["cpu_ms_per_poll"] / same["cpu_ms_per_poll"], "× less")
    # 1,000 feeds each polled once a minute, all answering 304: CPU seconds per second.
    share = 1_000 * same["cpu_ms_per_poll"] / 1000 / 60
    f["feeds_1000_per_minute_core"] = Figure("feeds: 1,000 polled every minute (304), share of a core", share * 100,
                                             "%", goal=f"< {GOAL_FEEDS_304_CORE_SHARE * 100:.0f} %",
                                             met=share < GOAL_FEEDS_304_CORE_SHARE)


def _moving_in_figures(f: dict[str, Figure], moving: dict[str, Any]) -> None:
    full, tenth = moving["full"], moving["baseline"]
    rows = full["rows"]
    f["import_seconds"] = Figure(
        f"moving in: {_size_name(rows)} readers imported (Mailchimp export)", full["seconds"], "s",
        tenth["seconds"] * rows / tenth["rows"], f"{_size_name(tenth['rows'])} × {rows // tenth['rows']}",
        full["seconds"] / (tenth["seconds"] * rows / tenth["rows"]), "×",
        f"≤ {GOAL_IMPORT_1M_SECONDS:.0f} s per 1M", full["seconds"] <= GOAL_IMPORT_1M_SECONDS * rows / 1_000_000)
    f["import_rows_per_second"] = Figure("moving in: readers imported per second", full["rows_per_second"], "rows/s")
    f["import_rss_mb"] = Figure(
        f"moving in: peak RSS at {_size_name(rows)}", full["peak_rss_mb"], "MB", tenth["peak_rss_mb"],
        f"at {_size_name(tenth['rows'])}", full["peak_rss_mb"] / tenth["peak_rss_mb"], "×",
        f"≤ {GOAL_IMPORT_RSS_MB:.0f} MB", full["peak_rss_mb"] <= GOAL_IMPORT_RSS_MB)


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"figures": {key: asdict(figure) for key, figure in self.figures.items()},
                "details": self.details}


def _figures(results: Results, prep: dict[str, Any], ceiling: dict[str, Any], e2e: dict[str, Any],
             plans: list[dict[str, Any]], unsub: dict[str, Any], trips: dict[str, Any], connections: int,
             pipelined: dict[str, Any] | None = None, loop: dict[str, Any] | None = None,
             feeds: dict[str, Any] | None = None, moving: dict[str, Any] | None = None,
             clicks: dict[str, Any] | None = None) -> None:
    f = results.figures
    if clicks:
        f["click_p99_ms"] = Figure(
            f"click redirect p99 at {clicks['offered_per_second']}/s", clicks["p99_ms"], "ms",
            clicks["p50_ms"], "p50", goal=f"≤ {GOAL_CLICK_P99_MS:.0f} ms",
            met=clicks["p99_ms"] <= GOAL_CLICK_P99_MS and not clicks["errors"])
        f["click_rate"] = Figure("click redirect: achieved rate", clicks["achieved_per_second"], "req/s",
                                 clicks["offered_per_second"], "offered",
                                 clicks["achieved_per_second"] / clicks["offered_per_second"] * 100, "%")
    if feeds:
        _feed_figures(f, feeds)
    if moving:
        _moving_in_figures(f, moving)
    fast, stdlib, naive = prep["fast_median_us"], prep["stdlib_median_us"], prep["naive_median_us"]
    f["prep_fast_us"] = Figure("prep: fast path, median", fast, "µs", stdlib, "stdlib build",
                               stdlib / fast, "× faster", f"≤ {GOAL_PREP_US:.0f} µs", fast <= GOAL_PREP_US)
    f["prep_stdlib_us"] = Figure("prep: stdlib build, median", stdlib, "µs", fast, "fast path",
                                 stdlib / fast, "× slower")
    f["prep_naive_us"] = Figure("prep: render + premailer per reader", naive, "µs", fast, "fast path",
                                naive / fast, "× slower")
    if "dkim_median_us" in prep:
        signed, pure = prep["dkim_median_us"], prep["dkim_pure_python_median_us"]
        f["prep_dkim_us"] = Figure("prep: DKIM signature (RSA-2048), median", signed, "µs", pure,
                                   "dkimpy's pure-Python RSA", pure / signed, "× faster")
    rate = ceiling["messages_per_second"]
    f["smtp_ceiling_msgs"] = Figure(f"SMTP ceiling: smtplib × {connections} → smtp-sink", rate, "msg/s")
    e2e_rate = e2e["messages_per_second"]
    share = e2e_rate / rate
    f["e2e_msgs"] = Figure(f"end to end: {e2e['readers']:,} readers, {connections} conns", e2e_rate, "msg/s",
                           rate, "SMTP ceiling", share * 100, "%", f"≥ {GOAL_E2E_SHARE_OF_CEILING * 100:.0f} % of ceiling",
                           share >= GOAL_E2E_SHARE_OF_CEILING)
    if pipelined:  # the same loop with the envelope pipelined, as the workers send
        tight = pipelined["messages_per_second"]
        f["smtp_ceiling_pipelined_msgs"] = Figure(f"SMTP ceiling: pipelined × {connections} → smtp-sink", tight,
                                                  "msg/s", rate, "smtplib ceiling", tight / rate, "×")
        f["e2e_share_of_pipelined"] = Figure("end to end vs the pipelined ceiling", e2e_rate, "msg/s", tight,
                                             "pipelined ceiling", e2e_rate / tight * 100, "%")
    worker_cpu, client_cpu = e2e["cpu_us_per_message"]["worker"], ceiling["client_cpu_us_per_message"]
    f["e2e_worker_cpu_us"] = Figure("end to end: worker CPU per message", worker_cpu, "µs", client_cpu,
                                    "smtplib client", worker_cpu / client_cpu, "×")
    postgres_cpu = e2e["cpu_us_per_message"]["postgres"]
    f["e2e_postgres_cpu_us"] = Figure("end to end: PostgreSQL CPU per message", postgres_cpu, "µs", worker_cpu,
                                      "worker", postgres_cpu / worker_cpu, "×")
    smallest = plans[0]
    for plan in plans:
        size = plan["readers"]
        name = _size_name(size)
        goal_time = size >= 1_000_000
        f[f"plan_{size}_seconds"] = Figure(
            f"plan {name}: release + ranges + enqueue", plan["seconds"], "s",
            goal=f"≤ {GOAL_PLAN_1M_SECONDS:.0f} s per 1M" if goal_time else "",
            met=(plan["seconds"] <= GOAL_PLAN_1M_SECONDS * size / 1_000_000) if goal_time else None)
        growth = plan["peak_rss_mb"] / smallest["peak_rss_mb"]
        f[f"plan_{size}_rss_mb"] = Figure(
            f"plan {name}: peak RSS", plan["peak_rss_mb"], "MB", smallest["peak_rss_mb"],
            f"at {_size_name(smallest['readers'])}", growth, "×",
            f"≤ {GOAL_PLAN_RSS_MB:.0f} MB, ≤ {PLAN_RSS_FLAT_RATIO}× smallest",
            plan["peak_rss_mb"] <= GOAL_PLAN_RSS_MB and growth <= PLAN_RSS_FLAT_RATIO)
    f["unsubscribe_p99_ms"] = Figure(
        f"unsubscribe p99 at {unsub['offered_per_second']}/s", unsub["p99_ms"], "ms",
        unsub["p50_ms"], "p50", goal=f"≤ {GOAL_UNSUBSCRIBE_P99_MS:.0f} ms",
        met=unsub["p99_ms"] <= GOAL_UNSUBSCRIBE_P99_MS and not unsub["errors"])
    f["unsubscribe_rate"] = Figure("unsubscribe: achieved rate", unsub["achieved_per_second"], "req/s",
                                   unsub["offered_per_second"], "offered",
                                   unsub["achieved_per_second"] / unsub["offered_per_second"] * 100, "%")
    if loop:  # the web layer keeps argon2, the database and Redis off the event loop
        ratio = loop["ratio"]
        f["archive_idle_p99_ms"] = Figure("GET /archive p99, alone", loop["idle_p99_ms"], "ms",
                                          loop["idle_p50_ms"], "p50")
        f["archive_signins_p99_ms"] = Figure(
            f"GET /archive p99 during {loop['signin_clients']} sign-ins", loop["signins_p99_ms"], "ms",
            loop["idle_p99_ms"], "alone", ratio, "×")
        f["archive_signins_ratio"] = Figure(
            "GET /archive p99: during sign-ins / alone", ratio, "×", goal=f"≤ {GOAL_ARCHIVE_SIGNINS_RATIO}×",
            met=(ratio <= GOAL_ARCHIVE_SIGNINS_RATIO and not loop["archive_errors"] and loop["signins_in_window"] > 0
                 and not loop["signins_refused"]))
        f["signins_per_second"] = Figure("sign-ins (argon2) completed meanwhile", loop["signins_per_second"],
                                         "sign-ins/s")
    small, large = (trips[str(size)] for size in ROUND_TRIP_BATCHES)
    f[f"sql_per_batch_{ROUND_TRIP_BATCHES[0]}"] = Figure(
        f"SQL statements: send_batch of {ROUND_TRIP_BATCHES[0]}", small["statements"], "")
    f[f"sql_per_batch_{ROUND_TRIP_BATCHES[1]}"] = Figure(
        f"SQL statements: send_batch of {ROUND_TRIP_BATCHES[1]}", large["statements"], "",
        small["statements"], f"batch of {ROUND_TRIP_BATCHES[0]}", large["statements"] / small["statements"], "×",
        "equal", large["statements"] == small["statements"])


def _size_name(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return f"{size:,}"


def _number(value: float, unit: str) -> str:
    if unit in ("µs", "ms", "s"):
        return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    if unit == "×":
        return f"{value:,.2f}×" if value < 10 else f"{value:,.0f}×"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "sign-ins/s":
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}".rstrip()


COLUMNS = ("figure", "value", "baseline / ceiling (same run)", "ratio", "goal", "met?")


def _cells(figure: Figure) -> tuple[str, str, str, str, str]:
    """(figure, value, baseline, ratio, goal) as printed."""
    baseline = "—" if figure.baseline is None else (
        f"{figure.baseline_label} {_number(figure.baseline, figure.unit)}".strip())
    if figure.ratio is None:
        ratio = "—"
    elif figure.ratio_unit == "%":
        ratio = f"{figure.ratio:.0f} %"
    else:
        ratio = f"{_number(figure.ratio, '×')}{figure.ratio_unit.removeprefix('×')}"
    return figure.label, _number(figure.value, figure.unit), baseline, ratio, figure.goal or "—"


def table(results: Results) -> Table:
    grid = Table(title="digest bench", title_justify="left")
    for column, justify in zip(COLUMNS, ("left", "right", "right", "right", "left", "center"), strict=True):
        grid.add_column(column, justify=justify)  # type: ignore[arg-type]
    for figure in results.figures.values():
        met = Text("—") if figure.met is None else (Text("yes", style="green") if figure.met
                                                     else Text("NO", style="bold red"))
        grid.add_row(*(Text(cell) for cell in _cells(figure)), met)
    return grid


def markdown_table(saved: dict[str, Any]) -> str:
    """The table as GitHub markdown, from a `--json` file's content (for the README):
    python -c 'import json,sys,digest.bench as b; print(b.markdown_table(json.load(open(sys.argv[1]))))' FILE"""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---:|---|:-:|"]
    for entry in saved["figures"].values():
        figure = Figure(**entry)
        met = "—" if figure.met is None else ("yes" if figure.met else "**no**")
        lines.append("| " + " | ".join((*_cells(figure), met)) + " |")
    return "\n".join(lines)
