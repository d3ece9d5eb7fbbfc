"""axe-core in the browser tests: the page's own DOM checked against WCAG 2.0/2.1 A and AA.

axe-core comes from npm at the version package.json pins (package-lock.json holds its hash;
scripts/test.sh runs `npm ci`). Its file is injected into the page (page.add_script_tag
with the file's content) and run there; each frame's document is checked on its own. The
context must be made with `bypass_csp=True`: digest's Content-Security-Policy refuses inline
scripts, rightly, and an injected script is one. Nothing else about the page changes.

Serious and critical violations fail a test (`blocking`); every violation, moderate and
minor ones included, is written to test-artifacts/axe/<name>.json, and test-artifacts/axe/
report.txt has a line per page and one under it per rule broken there, for a person to read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from functools import cache

from fastapi import FastAPI
from playwright.sync_api import Page
from starlette.routing import BaseRoute, Mount, compile_path

from tests.support.processes import REPO

AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
REPORTS = REPO / "test-artifacts" / "axe"
NODES_SHOWN = 3

# Runs in the page: the violations only, each with the first few elements it names.
_RUN = """async ([tags, shown]) => {
    const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'],
                                             iframes: false});
    return results.violations.map(v => ({
        rule: v.id, impact: v.impact || 'minor', help: v.help, count: v.nodes.length,
        nodes: v.nodes.slice(0, shown).map(n => `${n.target.join(' > ')}: ${n.html.slice(0, 200)}` +
            (n.failureSummary ? ` (${n.failureSummary.replace(/\\s+/g, ' ')})` : '')),
    }));
}"""


@dataclass(frozen=True)
class Violation:
    """One axe rule broken on a page: its id, impact, what it asks, and where (up to NODES_SHOWN)."""

    rule: str
    impact: str
    help: str
    count: int
    nodes: tuple[str, ...]

    @property
    def blocking(self) -> bool:
        return self.impact in BLOCKING_IMPACTS

    def __str__(self) -> str:
        where = "\n      ".join(self.nodes)
        return f"{self.rule} ({self.impact}, {self.count}x): {self.help}\n      {where}"


@cache
def axe_source() -> str:
    if not AXE_JS.exists():
        raise RuntimeError(f"{AXE_JS.relative_to(REPO)} is missing: run `npm ci` in the repository "
                           "(bash scripts/test.sh does)")
    return AXE_JS.read_text(encoding="utf-8")


def run_axe(page: Page) -> list[Violation]:
    """Every WCAG 2.0/2.1 A and AA violation in the page's own document as it is now (not
    in its frames: see audit_page)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    found = page.evaluate(_RUN, [list(WCAG_TAGS), NODES_SHOWN])
    return [Violation(rule=v["rule"], impact=v["impact"], help=v["help"], count=v["count"],
                      nodes=tuple(v["nodes"])) for v in found]


def start_report() -> None:
    """A fresh report for this run (test-artifacts/axe/ emptied)."""
    if REPORTS.exists():
        for old in REPORTS.iterdir():
            old.unlink()


def audit_page(page: Page, name: str, *, frames: bool = True) -> list[Violation]:
    """axe on the page as it is now and on each frame in it, written to the report under
    `name` (a frame's as `name`-frame-N; `frames` False: the page's own document only);
    returns the blocking (serious or critical) violations, for the test to assert there are none.

    A frame is checked as a document of its own, in a scratch page beside this one (left as
    it was): the email previews are sandboxed frames where no script runs, axe's included,
    and axe skips a frame it cannot run in."""
    documents = [frame.content() for frame in page.main_frame.child_frames if frames and not frame.is_detached()]
    blocking = _audit_document(page, name)
    if documents:
        scratch = page.context.new_page()
        try:
            for number, html in enumerate(documents, start=1):
                scratch.set_content(html)
                blocking += [replace(v, rule=f"{v.rule} (in frame {number})")
                             for v in _audit_document(scratch, f"{name}-frame-{number}")]
        finally:
            scratch.close()
    return blocking


def _audit_document(page: Page, name: str) -> list[Violation]:
    started = time.monotonic()
    violations = run_axe(page)
    seconds = time.monotonic() - started
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(
        {"url": page.url, "violations": [asdict(v) for v in violations]}, indent=2) + "\n")
    with (REPORTS / "report.txt").open("a", encoding="utf-8") as report:
        report.write(f"{name}\t{page.url}\t{len(violations)} rules broken\t{seconds:.2f} s\n")
        for violation in violations:
            report.write(f"  {violation.impact}\t{violation.rule}\t{violation.count}x\t{violation.help}\n")
    return [v for v in violations if v.blocking]


# ------------------------------------------------------------------ which pages there are


def _walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[str]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps an included router whole
        if included is not None:
            yield from _walk(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Mount):
            yield prefix + route.path + "/{path:path}"  # everything under it
        elif "GET" in (getattr(route, "methods", None) or ()):
            yield prefix + route.path  # type: ignore[attr-defined]


def get_routes(app: FastAPI) -> list[str]:
    """Every path template the app answers GET on, in the order the router tries them, and
    every mounted app as PREFIX/{path:path} (/static, /api/v1): what a test of every page
    must account for."""
    return list(_walk(app.routes))


def route_of(routes: list[str], path: str) -> str:
    """The route template a request for `path` reaches (the first that matches, as the router
    picks), or the path itself if none does."""
    for route in routes:
        regex, _, _ = compile_path(route)
        if regex.match(path):
            return route
    return path
