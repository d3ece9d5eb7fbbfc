"""The JSON API under schemathesis: every operation in /api/v1/openapi.json, fed generated
valid and invalid requests with an editor's token, must never answer 5xx; and a few
hand-picked hostile requests must get a 4xx with a JSON body.

Against the real `digest serve` (uvicorn) on PostgreSQL and on SQLite, with Redis and the
Celery worker of the integration stack behind it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from digest import staff
from digest.editions import create_newsletter, lifecycle
from digest.store.models import AuditEntry, Edition, EditionStatus, Story, Subscriber, utcnow
from tests.support.factories import seed_readers, seed_stories
from tests.support.samples import SAMPLE_WINDOW_HOURS, TOPICS
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

BACKENDS = pytest.mark.parametrize("stack", ["postgresql", "sqlite"], indirect=True)
EXAMPLES_PER_OPERATION = 20
OPERATIONS = 36  # in /api/v1/openapi.json
DELETE_OPERATIONS = 2  # DELETE /tokens/{id}, DELETE /feeds/{id}
REQUEST_TIMEOUT_SECONDS = 30
SCHEMATHESIS_TIMEOUT_SECONDS = 300
EDITOR = "fuzz-editor@example.org"
REVOKER = "fuzz-revoker@example.org"  # DELETE /tokens/{id} runs as this user
PASSWORD = "correct horse battery staple"


@dataclass
class Api:
    base_url: str
    token: str
    revoker_token: str
    live: Stack
    story_ids: list[int]
    edition_ids: list[int]
    reader_ids: list[int]
    newsletter_ids: list[int]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def api(live: Stack, web: str) -> Api:
    """An editor with a token, and something for generated ids to find: the sample stories,
    an edition in each status a reader-facing action starts from, and a few readers."""
    seed_stories(live.factory)
    seed_readers(live.factory, 5, prefix="fuzz-reader")
    with live.factory.begin() as session:
        editor = staff.create_user(session, EDITOR, "editor", PASSWORD)
        revoker = staff.create_user(session, REVOKER, "editor", PASSWORD)
        _, token = staff.create_api_token(session, editor, "schemathesis")
        _, revoker_token = staff.create_api_token(session, revoker, "schemathesis revoker")
        editions = [Edition(subject=f"A {status.value} edition", send_at=utcnow(), status=status, max_stories=5,
                            window_hours=SAMPLE_WINDOW_HOURS)
                    for status in (EditionStatus.DRAFT, EditionStatus.SCHEDULED, EditionStatus.PAUSED,
                                   EditionStatus.SENT, EditionStatus.CANCELLED)]
        session.add_all(editions)
        session.flush()
        story_ids = list(session.scalars(select(Story.id).order_by(Story.id)))
        reader_ids = list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        # A newsletter for one-offs to be made for, and moved to (newsletter_id).
        newsletter = create_newsletter(session, slug="fuzz-morning", name="Fuzz Morning", cron="0 7 * * *",
                                       timezone="UTC", allowed_topics=TOPICS)
    return Api(base_url=f"{web}/api/v1", token=token, revoker_token=revoker_token, live=live,
               story_ids=story_ids, edition_ids=[e.id for e in editions], reader_ids=reader_ids,
               newsletter_ids=[newsletter.id])


def schemathesis_config(api: Api, folder: Path) -> Path:
    """Half of the generated ids, names and dates are real ones, so that requests get past
    their 404 or 400 to the code behind it. URLs point at a closed local port: an ingest
    fails at once and nothing leaves the machine."""
    dictionaries = {
        "editions": api.edition_ids, "stories": api.story_ids, "actions": sorted(lifecycle.TARGET),
        "curation": ["pin", "exclude", "clear"], "urls": ["http://127.0.0.1:9/fuzz-story"],
        "dates": ["2026-12-01T07:00:00Z", "2026-12-01T07:00"], "zones": ["UTC", "Europe/Kyiv"],
        "topics": ["politics", "world"], "emails": ["reader@example.org"], "crons": ["0 7 * * *"],
        "slugs": ["morning-briefing"], "readers": api.reader_ids,
        "csvs": ["email,name,topics\nfuzz-import@example.org,Fuzz,world\nnot an address,,\n"],
        "newsletters": api.newsletter_ids,
    }
    bindings = {
        "path.edition_id": "editions", "path.story_id": "stories", "body.story_id": "stories",
        "body.story_ids[*]": "stories", "path.action": "actions", "body.action": "curation", "body.url": "urls",
        "body.published_at": "dates", "body.at": "dates", "body.tz": "zones", "body.timezone": "zones",
        "body.topics[*]": "topics", "body.email": "emails", "body.cron": "crons", "body.slug": "slugs",
        "path.reader_id": "readers", "body.csv": "csvs", "body.send_at": "dates", "body.newsletter_id": "newsletters",
        "path.newsletter_id": "newsletters",
    }
    lines = [f"[dictionaries.{name}]\nvalues = {json.dumps(values)}" for name, values in dictionaries.items()]
    lines.append("[parameters]")
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in bindings.items()]
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def run_schemathesis(api: Api, config: Path, token: str, *selection: str) -> subprocess.CompletedProcess[str]:
    """The `st` CLI: every phase (examples, coverage, fuzzing, stateful), only the
    not_a_server_error check, deterministic, so a failure reproduces on the next run."""
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
         f"{api.base_url}/openapi.json", "--url", api.base_url, "--checks", "not_a_server_error",
         "--header", f"Authorization: Bearer {token}", "--max-examples", str(EXAMPLES_PER_OPERATION),
         "--generation-deterministic", "--suppress-health-check", "all",
         "--request-timeout", str(REQUEST_TIMEOUT_SECONDS), "--no-color", "--output-truncate", "false", *selection],
        capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_SECONDS, check=False,
    )


@BACKENDS
def test_no_operation_answers_5xx(api: Api, tmp_path: Path) -> None:
    config = schemathesis_config(api, tmp_path)
    # The DELETEs run on their own, last and as a second editor: a generated id may revoke
    # the token it runs with (DELETE /tokens/{id}), which must not be the one the other
    # operations use.
    runs = [run_schemathesis(api, config, api.token, "--exclude-method", "DELETE"),
            run_schemathesis(api, config, api.revoker_token, "--include-method", "DELETE")]
    for run in runs:
        assert run.returncode == 0, f"schemathesis found problems:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"
    tested = [int(n) for n in re.findall(r"Tested: (\d+)", "".join(run.stdout for run in runs))]
    assert tested == [OPERATIONS - DELETE_OPERATIONS, DELETE_OPERATIONS], [run.stdout for run in runs]
    # The token worked and the requests got past validation into the library: the audit
    # log holds writes of every kind the API makes.
    with api.live.factory() as session:
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.actor == EDITOR)))
    assert {"story.add", "story.update", "edition.add", "edition.pin", "edition.override", "edition.test",
            "token.create", "reader.unsubscribe", "readers.import"} <= actions, actions
    assert actions & {f"edition.{action}" for action in lifecycle.TARGET}, actions


# ------------------------------------------------------------------ hand-picked hostile requests


# Taken, not refused: none now. (A 10 MB story was, before the API's bodies were capped at
# 1 MB: the 413 comes before the body is read.)
MAY_BE_TAKEN: set[str] = set()


def _hostile_requests(story_id: int, edition_id: int) -> Iterator[tuple[str, str, str, dict[str, object]]]:
    """(label, method, path, httpx request arguments)."""
    huge_text = "x" * 5_000_000
    yield "huge JSON subject", "POST", "/editions", {"json": {"subject": huge_text}}
    yield "huge JSON list of ids", "PUT", f"/editions/{edition_id}/order", {"json": {"story_ids": [story_id] * 200_000}}
    yield "huge story body", "POST", "/stories", {"json": {"url": "https://x.example/huge", "title": "T",
                                                          "body": huge_text, "summary": huge_text}}
    yield "deeply nested JSON", "POST", "/editions", {
        "content": b'{"subject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "headers": {"Content-Type": "application/json"}}
    yield "invalid UTF-8 body", "POST", "/editions", {
        "content": b'{"subject": "\xff\xfe\xc3("}', "headers": {"Content-Type": "application/json"}}
    yield "invalid UTF-8 in a story", "POST", "/stories", {
        "content": b'{"url": "https://x.example/\xff", "title": "\xed\xa0\x80"}',
        "headers": {"Content-Type": "application/json; charset=utf-8"}}
    yield "truncated JSON", "POST", "/editions", {"content": b'{"subject": "Trunc', "headers": {
        "Content-Type": "application/json"}}
    yield "JSON null body", "POST", "/editions", {"content": b"null", "headers": {"Content-Type": "application/json"}}
    yield "wrong content type: form", "POST", "/editions", {"data": {"subject": "A form"}}
    yield "wrong content type: text", "POST", "/stories", {
        "content": json.dumps({"url": "https://x.example/t", "title": "T"}).encode(),
        "headers": {"Content-Type": "text/plain"}}
    yield "wrong content type: xml", "PATCH", f"/editions/{edition_id}", {
        "content": b"<note>hi</note>", "headers": {"Content-Type": "application/xml"}}
    yield "no body at all", "POST", f"/editions/{edition_id}/curation", {}
    yield "lone surrogate in a subject", "POST", "/editions", {
        "content": b'{"subject": "Morning \\ud800 news"}', "headers": {"Content-Type": "application/json"}}
    yield "NUL in a subject", "POST", "/editions", {"json": {"subject": "Morning\u0000news"}}
    yield "lone surrogate in a story title", "POST", "/stories", {
        "content": b'{"url": "https://x.example/s", "title": "\\udcff"}',
        "headers": {"Content-Type": "application/json"}}
    yield "NUL in a story title", "POST", "/stories", {"json": {"url": "https://x.example/n", "title": "a\u0000b"}}
    yield "NUL in a note", "PATCH", f"/editions/{edition_id}", {"json": {"note": "a\u0000b"}}
    yield "NUL in a new subject", "PATCH", f"/editions/{edition_id}", {"json": {"subject": "a\u0000b"}}
    yield "a new send time out of range", "PATCH", f"/editions/{edition_id}", {
        "json": {"send_at": "9999-12-31T23:59:59-14:00"}}
    yield "a new zone that is a path", "PATCH", f"/editions/{edition_id}", {
        "json": {"send_at": "2031-01-01T07:00", "tz": "../../etc/passwd"}}
    yield "a zone without a send time", "PATCH", f"/editions/{edition_id}", {"json": {"tz": "Europe/Kyiv"}}
    yield "huge numbers in an edit", "PATCH", f"/editions/{edition_id}", {
        "json": {"max_stories": 2**70, "window_hours": 2**70}}
    yield "unknown newsletter in an edit", "PATCH", f"/editions/{edition_id}", {"json": {"newsletter_id": 2**62}}
    yield "unknown newsletter for a one-off", "POST", "/editions", {"json": {"subject": "S", "newsletter_id": -1}}
    yield "too long new subject", "PATCH", f"/editions/{edition_id}", {"json": {"subject": "s" * 301}}
    yield "lone surrogate in a headline", "POST", f"/editions/{edition_id}/override", {
        "content": f'{{"story_id": {story_id}, "headline": "\\ud83d"}}'.encode(),
        "headers": {"Content-Type": "application/json"}}
    yield "NUL in a search", "GET", "/stories", {"params": {"q": "a\u0000b"}}
    yield "NUL in a token name", "POST", "/tokens", {"json": {"name": "a\u0000b"}}
    yield "NUL in a newsletter", "POST", "/newsletters", {"json": {"slug": "nul", "name": "a\u0000b", "cron": "0 7 * * *"}}
    yield "unknown story status filter", "GET", "/stories", {"params": {"status": "bogus"}}
    yield "unknown edition status filter", "GET", "/editions", {"params": {"status": "bogus"}}
    for edition in ("0", "-1", str(2**31), str(2**63), str(2**64), "99999999999999999999999999", "1e3", "abc"):
        yield f"edition id {edition}", "GET", f"/editions/{edition}", {}
        yield f"edition id {edition}: action", "POST", f"/editions/{edition}/pause", {}
    for story in ("-1", str(2**63), "99999999999999999999999999"):
        yield f"story id {story}", "PATCH", f"/stories/{story}", {"json": {"featured": True}}
        yield f"story id {story} in a curation", "POST", f"/editions/{edition_id}/curation", {
            "json": {"story_id": int(story), "action": "pin"}}
    yield "huge position", "POST", f"/editions/{edition_id}/curation", {
        "json": {"story_id": story_id, "action": "pin", "position": 2**63}}
    yield "huge numbers in an edition", "POST", "/editions", {
        "json": {"subject": "S", "max_stories": 2**70, "window_hours": 2**70}}
    yield "huge window", "POST", "/editions", {"json": {"subject": "S", "window_hours": 2**40}}
    yield "huge token id", "DELETE", f"/tokens/{2**70}", {}
    for action in ("explode", "unschedule", "..", "pause%00", "PAUSE", "résumé", "x" * 5000):
        yield f"unknown action {action[:12]!r}", "POST", f"/editions/{edition_id}/{action}", {}
    yield "unknown curation action", "POST", f"/editions/{edition_id}/curation", {
        "json": {"story_id": story_id, "action": "explode"}}
    yield "unknown story status", "PATCH", f"/stories/{story_id}", {"json": {"status": "vaporised"}}
    yield "ingest: not a URL", "POST", "/stories/ingest", {"json": {"url": "file:///etc/passwd"}}
    yield "ingest: unreachable", "POST", "/stories/ingest", {"json": {"url": "http://127.0.0.1:9/feed.xml"}}
    yield "send time out of range", "POST", "/editions", {"json": {"subject": "S", "at": "9999-12-31T23:59:59-14:00"}}
    yield "unknown time zone", "POST", "/editions", {"json": {"subject": "S", "tz": "Mars/Olympus_Mons"}}
    yield "time zone path", "POST", "/editions", {"json": {"subject": "S", "tz": "../../etc/passwd"}}
    yield "test send to a bad address", "POST", f"/editions/{edition_id}/test", {"json": {"email": "a@b\r\nBcc: c@d"}}
    yield "unknown topic", "POST", "/editions", {"json": {"subject": "S", "topics": ["no-such-topic", "\u0000"]}}
    # Longer than the column that would keep it: refused by the request model, never a
    # database error (a 503) at the INSERT.
    story = {"url": "https://x.example/long", "title": "T"}
    for field, size in (("title", 501), ("url", 2049), ("author", 201), ("image_url", 2049)):
        value = "https://x.example/" + "l" * size if field.endswith("url") else "l" * size
        yield f"too long story {field}", "POST", "/stories", {"json": {**story, field: value}}
    yield "too long headline", "POST", f"/editions/{edition_id}/override", {
        "json": {"story_id": story_id, "headline": "h" * 501}}
    newsletter = {"slug": "long", "name": "Long", "cron": "0 7 * * *"}
    for field, size in (("slug", 65), ("name", 121), ("cron", 101), ("timezone", 65), ("subject_template", 301),
                        ("sender_name", 121)):
        yield f"too long newsletter {field}", "POST", "/newsletters", {"json": {**newsletter, field: "n" * size}}
    yield "too long edition subject", "POST", "/editions", {"json": {"subject": "s" * 301}}
    yield "too long time zone", "POST", "/editions", {"json": {"subject": "S", "tz": "Europe/" + "z" * 80}}
    yield "too long token name", "POST", "/tokens", {"json": {"name": "t" * 101}}
    for reader in ("0", "-1", str(2**63), "99999999999999999999999999", "abc"):
        yield f"reader id {reader}", "GET", f"/readers/{reader}", {}
        yield f"reader id {reader}: unsubscribe", "POST", f"/readers/{reader}/unsubscribe", {}
    yield "NUL in a reader search", "GET", "/readers", {"params": {"q": "a\u0000b"}}
    yield "unknown reader status filter", "GET", "/readers", {"params": {"status": "bogus"}}
    yield "huge reader page", "GET", "/readers", {"params": {"limit": 10**6, "offset": 2**70}}
    yield "import: no email column", "POST", "/readers/import", {"json": {"csv": "name\nAnn\n"}}
    yield "import: a line past the csv module's limit", "POST", "/readers/import", {
        "json": {"csv": 'email,name\na@example.org,"' + "x" * 200_000 + '"\n'}}
    yield "import: NUL", "POST", "/readers/import", {"json": {"csv": "email\na\u0000@example.org\n"}}
    yield "import: past the size limit", "POST", "/readers/import", {"json": {"csv": "email\n" + "a" * 11_000_000}}
    yield "import: not JSON", "POST", "/readers/import", {
        "content": b"email\nann@example.org\n", "headers": {"Content-Type": "text/csv"}}


@BACKENDS
def test_hostile_requests_get_a_4xx_json_answer(api: Api) -> None:
    story_id, draft_id = api.story_ids[0], api.edition_ids[0]
    failures = []
    with httpx.Client(base_url=api.base_url, timeout=REQUEST_TIMEOUT_SECONDS, headers=api.headers) as client:
        for label, method, path, kwargs in _hostile_requests(story_id, draft_id):
            try:
                response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
            except httpx.TransportError as exc:  # a dropped connection is no answer at all
                failures.append(f"{label}: {method} {path[:60]} -> {type(exc).__name__}: {exc}")
                continue
            lowest = 200 if label in MAY_BE_TAKEN else 400
            ok = lowest <= response.status_code < 500 and response.headers.get("content-type", "").startswith(
                "application/json")
            if ok:
                try:
                    response.json()
                except ValueError:
                    ok = False
            if not ok:
                failures.append(f"{label}: {method} {path[:60]} -> {response.status_code} {response.text[:200]!r}")
        assert client.get("/stories").status_code == 200  # the editor's token still works
    assert not failures, "\n".join(failures)
    # A 4xx changed nothing: no edition was added, the draft kept its note and its place.
    with api.live.factory() as session:
        editions = {e.id: e for e in session.scalars(select(Edition))}
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.actor == EDITOR)))
    assert sorted(editions) == sorted(api.edition_ids)
    assert editions[draft_id].status == EditionStatus.DRAFT and editions[draft_id].note is None
    assert actions == []


@BACKENDS
def test_a_story_with_a_long_url_is_added_and_audited_whole(api: Api) -> None:
    # News URLs run long (slugs, tracking-free but deep paths): up to the column's 2048.
    url = "https://news.example.com/2026/11/25/" + "a-long-headline-slug-" * 90
    url = url[:2048]
    with httpx.Client(base_url=api.base_url, timeout=REQUEST_TIMEOUT_SECONDS, headers=api.headers) as client:
        response = client.post("/stories", json={"url": url, "title": "A long address"})
    assert response.status_code == 201, response.text
    with api.live.factory() as session:
        story = session.scalar(select(Story).where(Story.id == response.json()["id"]))
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "story.add")).one()
    assert story is not None and story.url == url
    assert len(entry.target) <= 120 and entry.detail == {"target": url}
