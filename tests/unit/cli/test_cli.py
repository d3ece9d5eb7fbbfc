"""The `digest` command, each run a process of its own: output shapes, and bad input that
ends in one line on stderr, a non-zero exit and an unchanged database.

The runs are forked from a process that has imported the console script already
(tests/support/zygote.py), which saves two seconds of imports a run; a few tests start
the installed script itself, so the script and its imports are covered as users run them.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from digest import readers, staff
from digest.editions.create import create_edition, parse_send_at
from digest.feeds import FeedSettings, add_feed, set_active
from digest.readers import add_subscriber
from digest.store.engine import make_engine, session_factory
from digest.store.migrate import upgrade
from digest.store.models import AuditEntry, Edition, EditionStatus, Newsletter, Story
from digest.stories import ingest_source, load_source
from tests.support.http_server import local_server, page
from tests.support.samples import article_page
from tests.support.zygote import run_digest

DIGEST = Path(sys.executable).with_name("digest")  # the console script of the venv running pytest
CLI_TIMEOUT_SECONDS = 60
# A fresh interpreter takes a second or two; a broker that is away must not add Celery's
# retries to that (the release is asked for once, on a connection of its own).
CLI_FAIL_FAST_SECONDS = 8


@dataclass
class Workspace:
    """A working folder with its own SQLite file and outbox, as a user's shell would have."""

    folder: Path

    @property
    def database(self) -> Path:
        return self.folder / "digest.db"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        env.update(DIGEST_DATABASE_URL=f"sqlite:///{self.database}",
                   DIGEST_SMTP_URL=f"outbox://{self.folder / 'outbox'}",
                   DIGEST_BROKER_URL="redis://127.0.0.1:1/0", COLUMNS="200")
        env.update(extra)
        return env

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return run_digest(list(args), cwd=self.folder, env=self.env(**extra_env), timeout=CLI_TIMEOUT_SECONDS)

    def run_script(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """The installed console script itself, in a fresh interpreter."""
        return subprocess.run([str(DIGEST), *args], cwd=self.folder, env=self.env(**extra_env),
                              capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json"))

    def counts(self) -> dict[str, int]:
        """Rows per table, every table of the schema."""
        with closing(sqlite3.connect(self.database)) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}

    def copy_to(self, folder: Path) -> Workspace:
        """The same files and a consistent copy of the database (WAL included) in `folder`."""
        shutil.copytree(self.folder, folder, ignore=shutil.ignore_patterns("digest.db*"))
        with closing(sqlite3.connect(self.database)) as source, closing(sqlite3.connect(folder / "digest.db")) as copy:
            source.backup(copy)
        return Workspace(folder)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """An initialised workspace (`digest init` itself is tested below; this is quicker)."""
    workspace = Workspace(tmp_path)
    engine = make_engine(f"sqlite:///{workspace.database}")
    upgrade(engine)
    engine.dispose()
    return workspace


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Initialised, with a reader, the sample feed and one edition; tests must not change it.

    Filled through the library, not the CLI: the commands that do this have their own
    tests here, and each run of the CLI costs a fresh interpreter.
    """
    workspace = Workspace(tmp_path_factory.mktemp("stocked"))
    engine = make_engine(f"sqlite:///{workspace.database}")
    upgrade(engine)
    with session_factory(engine).begin() as session:
        add_subscriber(session, "ann@example.com", name="Ann", confirmed=True, allowed_topics=["world"])
        ingest_source(session, "sample:sample_feed.json")
        send_at = parse_send_at("2026-12-01T07:00", "Europe/Kyiv", datetime.now(UTC))
        edition = create_edition(session, subject="Morning", send_at=send_at, topics=None, allowed_topics=[],
                                 max_stories=5, window_hours=48)
        (workspace.folder / "edition-id").write_text(str(edition.id))
        staff.create_user(session, "admin@example.org", "admin", "correct horse battery staple")
    engine.dispose()
    (workspace.folder / "bad.json").write_text('[{"url": "https://a.example/x", "title": "T"}]')
    (workspace.folder / "latin1.csv").write_bytes("email,name\nzoë@example.com,Zoë\n".encode("latin-1"))
    (workspace.folder / "folder").mkdir()
    return workspace


def edition_id(workspace: Workspace) -> str:
    return (workspace.folder / "edition-id").read_text().strip()


# ------------------------------------------------------------------ happy paths


def test_init_twice_is_fine(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)

    first_run = workspace.run_script("init")  # the installed script, as a user starts it
    assert first_run.returncode == 0 and first_run.stderr == "", first_run.stderr
    first, second = first_run.stdout, workspace.ok("init")

    assert "schema revision" in first and "schema revision" in second
    counts = workspace.counts()
    assert {"subscribers", "stories", "editions", "deliveries", "alembic_version"} <= set(counts)
    assert {table: n for table, n in counts.items() if table != "alembic_version"} == dict.fromkeys(
        set(counts) - {"alembic_version"}, 0)
    assert counts["alembic_version"] == 1


def test_commands_before_init_say_so(tmp_path: Path) -> None:
    result = Workspace(tmp_path).run("subscribers", "list")

    assert result.returncode == 1
    assert result.stderr == "digest: error: the database is not initialised: run `digest init` first\n"


def test_subscribers_add_and_list_json(ws: Workspace) -> None:
    ws.ok("subscribers", "add", "Olena@Example.org", "--name", "Olena K", "--topics", "world,Politics",
          "--confirmed")
    ws.ok("subscribers", "add", "bob@example.org")

    rows = ws.json("subscribers", "list")

    assert isinstance(rows, list) and len(rows) == 2
    assert {key: rows[0][key] for key in ("email", "name", "status", "topics")} == {
        "email": "Olena@example.org", "name": "Olena K", "status": "active", "topics": ["politics", "world"]}
    assert {key: rows[1][key] for key in ("email", "name", "status", "topics")} == {
        "email": "bob@example.org", "name": None, "status": "pending", "topics": []}
    assert [r["email"] for r in ws.json("subscribers", "list", "--status", "pending")] == ["bob@example.org"]


def test_stories_ingest_and_list_json(ws: Workspace) -> None:
    assert "added" in ws.ok("stories", "ingest", "sample:sample_feed.json")
    ws.ok("stories", "ingest", "sample:sample_article.txt")

    rows = ws.json("stories", "list")

    assert isinstance(rows, list) and len(rows) >= 13
    for row in rows:
        assert {"id", "url", "title", "summary", "published_at", "topics", "featured", "status"} <= set(row)
        assert isinstance(row["id"], int) and isinstance(row["featured"], bool)
        assert isinstance(row["topics"], list) and row["status"] == "published"
        assert datetime.fromisoformat(row["published_at"]).utcoffset() is not None
    (lead,) = [r for r in rows if r["title"].startswith("Zelensky")]
    assert lead["title"] == "Zelensky Insists Bakhmut “is Not Occupied” by Russia"
    assert lead["published_at"].startswith("2023-05-22")
    published = [r["published_at"] for r in rows]
    assert published == sorted(published, reverse=True)


def test_stories_ingest_an_article_page_by_url(ws: Workspace) -> None:
    plain = load_source("sample:sample_article.txt").decode()
    canonical = "https://news.example.com/2023/05/zelensky"
    with local_server({"/a": page(article_page(plain, canonical))}) as server:
        allowed = ws.run("stories", "ingest", server.url("/a"), DIGEST_FETCH_ALLOW=f"127.0.0.1:{server.port}")
        refused = ws.run("stories", "ingest", server.url("/a"))

    assert allowed.returncode == 0 and allowed.stderr == ""
    assert allowed.stdout.strip() == f"1 added, 0 updated from {server.url('/a')}"
    [story] = ws.json("stories", "list")
    assert (story["url"], story["title"]) == (canonical, "Zelensky Insists Bakhmut “is Not Occupied” by Russia")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == f"digest: error: could not fetch {server.url('/a')}: refused (private address)\n"


def test_editions_create_json_and_plain(ws: Workspace) -> None:
    created = ws.json("editions", "create", "--subject", "Morning", "--at", "2026-12-01T07:00", "--tz",
                      "Europe/Kyiv")
    plain = ws.ok("editions", "create", "--subject", "Evening")

    assert isinstance(created, dict)
    assert {"id", "status", "send_at"} <= set(created)
    assert created["send_at"] == "2026-12-01T05:00:00+00:00"
    assert created["status"] == "scheduled"
    assert plain == f"{created['id'] + 1}\n"
    assert ws.counts()["editions"] == 2


def test_a_due_edition_made_without_a_broker_is_one_warning_and_no_wait(ws: Workspace) -> None:
    # DIGEST_BROKER_URL points at a closed port: asking for the release at once fails fast,
    # says so once, and the edition is made all the same (beat releases it later).
    started = time.monotonic()
    result = ws.run_script("editions", "create", "--subject", "Now")
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    [warning] = result.stderr.splitlines()
    assert warning.startswith("could not ask for the edition's release now") and "Connection refused" in warning
    assert "beat releases it" in warning
    assert elapsed < CLI_FAIL_FAST_SECONDS
    [edition] = ws.json("editions", "list")  # type: ignore[misc]
    assert edition["status"] == "scheduled"
    # A draft, or an edition for later, asks for nothing.
    assert ws.run("editions", "create", "--subject", "Later", "--draft").stderr == ""
    assert ws.run("editions", "create", "--subject", "Later", "--at", "2031-01-01T07:00").stderr == ""


def test_editions_edit_changes_what_is_given(ws: Workspace) -> None:
    ws.ok("newsletters", "add", "morning", "--name", "Morning", "--cron", "0 7 * * *")
    draft = ws.json("editions", "create", "--subject", "Draft", "--at", "2031-01-01T07:00", "--draft")
    for_morning = ws.json("editions", "create", "--subject", "Morning's", "--at", "2031-01-01T07:00", "--draft",
                          "--newsletter", "morning")
    assert isinstance(draft, dict) and isinstance(for_morning, dict)
    assert draft["newsletter_id"] is None and for_morning["newsletter_id"] == 1
    edition = str(draft["id"])

    said = ws.ok("editions", "edit", edition, "--subject", "Evening", "--at", "2031-06-01T09:30", "--tz",
                 "Europe/Kyiv", "--max-stories", "3")
    assert said == f"edition {edition}: subject, send_at, max_stories changed\n"
    assert ws.ok("editions", "edit", edition, "--subject", "Evening") == f"edition {edition}: nothing changed\n"
    assert ws.ok("editions", "edit", edition, "--newsletter", "morning") == (
        f"edition {edition}: newsletter_id changed\n")
    edited = ws.json("editions", "edit", edition, "--no-newsletter", "--window-hours", "72")
    assert isinstance(edited, dict)
    assert {k: edited[k] for k in ("subject", "send_at", "max_stories", "newsletter_id", "status")} == {
        "subject": "Evening", "send_at": "2031-06-01T06:30:00+00:00", "max_stories": 3, "newsletter_id": None,
        "status": "draft"}
    engine = make_engine(f"sqlite:///{ws.database}")
    with session_factory(engine)() as session:
        audit = session.execute(select(AuditEntry.action, AuditEntry.via, AuditEntry.detail)
                                .where(AuditEntry.action == "edition.edit").order_by(AuditEntry.id)).all()
    engine.dispose()
    assert [(via, detail["changed"]) for _, via, detail in audit] == [  # type: ignore[index]
        ("cli", ["subject", "send_at", "max_stories"]), ("cli", []), ("cli", ["newsletter_id"]),
        ("cli", ["window_hours", "newsletter_id"])]


def test_editing_an_edition_that_has_started_sending_is_refused(ws: Workspace) -> None:
    engine = make_engine(f"sqlite:///{ws.database}")
    with session_factory(engine).begin() as session:
        session.add(Edition(subject="Going", send_at=datetime.now(UTC), status=EditionStatus.SENDING))
    engine.dispose()

    result = ws.run("editions", "edit", "1", "--subject", "Too late")

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "digest: error: Edition 1 is sending: it can no longer be changed.\n"
    [edition] = ws.json("editions", "list")  # type: ignore[misc]
    assert edition["subject"] == "Going"


def test_a_newsletter_can_take_the_existing_readers_and_editions_show_their_audience(ws: Workspace) -> None:
    ws.ok("subscribers", "add", "ann@example.com", "--topics", "politics", "--confirmed")
    ws.ok("subscribers", "add", "bob@example.com", "--topics", "sports", "--confirmed")
    ws.ok("subscribers", "add", "cat@example.com", "--topics", "politics")  # pending: not added
    joined = ws.json("newsletters", "add", "politics-daily", "--name", "Politics Daily", "--cron", "0 7 * * *",
                     "--topics", "politics", "--subscribe-existing", "--json")
    alone = ws.ok("newsletters", "add", "sports", "--name", "Sports", "--cron", "0 7 * * *")
    assert isinstance(joined, dict) and joined["subscribers"] == 1
    assert alone.endswith(", 0 readers\n")
    listed = ws.json("newsletters", "list", "--json")
    assert isinstance(listed, list)
    assert {n["slug"]: n["subscribers"] for n in listed} == {"politics-daily": 1, "sports": 0}

    ws.ok("editions", "create", "--subject", "Politics", "--topics", "politics", "--draft")
    ws.ok("editions", "create", "--subject", "Culture", "--topics", "culture", "--draft")
    editions = ws.json("editions", "list", "--json")
    assert isinstance(editions, list)
    one_offs = {e["subject"]: e["audience"] for e in editions if e["newsletter_id"] is None}
    assert one_offs == {"Politics": 1, "Culture": 0}
    # Each newsletter's first editions were made with it, and go to its readers.
    own = {e["newsletter_id"]: e["audience"] for e in editions if e["newsletter_id"] is not None}
    assert own == {joined["id"]: 1, {n["slug"]: n["id"] for n in listed}["sports"]: 0}


def test_a_newsletter_sent_by_its_stories_needs_no_cron_and_a_trigger_can_be_cleared(ws: Workspace) -> None:
    refused = ws.run("newsletters", "add", "never", "--name", "Never")
    assert refused.returncode != 0 and "story trigger" in refused.stderr and "Traceback" not in refused.stderr
    alerts = ws.json("newsletters", "add", "alerts", "--name", "Alerts", "--trigger-stories", "3",
                     "--trigger-every", "20", "--trigger-hold", "5")
    assert isinstance(alerts, dict)
    assert (alerts["cron"], alerts["trigger_stories"], alerts["trigger_every_minutes"],
            alerts["trigger_hold_minutes"]) == (None, 3, 20, 5)
    assert alerts["schedule"] == ("When 3 new stories have arrived, at most every 20 minutes, "
                                  "held 5 minutes for editors")
    assert ws.json("editions", "list") == []  # no cron: no editions ahead
    cleared = ws.run("newsletters", "edit", "alerts", "--trigger-stories", "0")
    assert cleared.returncode != 0 and "story trigger" in cleared.stderr
    both = ws.json("newsletters", "edit", "alerts", "--cron", "0 7 * * *", "--trigger-every", "90")
    assert isinstance(both, dict) and both["schedule"] == (
        "At 07:00, every day, UTC; and when 3 new stories have arrived, at most every 90 minutes, "
        "held 5 minutes for editors")
    cron_only = ws.json("newsletters", "edit", "alerts", "--trigger-stories", "0")
    assert isinstance(cron_only, dict) and cron_only["trigger_stories"] is None
    assert cron_only["schedule"] == "At 07:00, every day, UTC"


def test_a_newsletter_tags_its_story_links_when_asked(ws: Workspace) -> None:
    made = ws.json("newsletters", "add", "morning", "--name", "Morning", "--cron", "0 7 * * *")
    assert isinstance(made, dict) and made["utm_tags"] is False
    tagged = ws.json("newsletters", "edit", "morning", "--utm-tags")
    assert isinstance(tagged, dict) and tagged["utm_tags"] is True
    untagged = ws.json("newsletters", "edit", "morning", "--no-utm-tags")
    assert isinstance(untagged, dict) and untagged["utm_tags"] is False


def test_a_newsletter_orders_by_readers_clicks_only_when_asked(ws: Workspace) -> None:
    made = ws.json("newsletters", "add", "morning", "--name", "Morning", "--cron", "0 7 * * *")
    assert isinstance(made, dict) and made["engagement_order"] is False
    on = ws.json("newsletters", "edit", "morning", "--engagement-order")
    assert isinstance(on, dict) and on["engagement_order"] is True
    assert "engagement_order: True" in ws.ok("newsletters", "show", "morning")
    off = ws.json("newsletters", "edit", "morning", "--no-engagement-order")
    assert isinstance(off, dict) and off["engagement_order"] is False


def test_click_history_and_the_open_pixel_are_off_until_turned_on(ws: Workspace) -> None:
    made = ws.json("newsletters", "add", "evening", "--name", "Evening", "--cron", "0 19 * * *")
    assert isinstance(made, dict) and made["click_history"] is False and made["open_pixel"] is False
    on = ws.json("newsletters", "edit", "evening", "--click-history", "--open-pixel")
    assert isinstance(on, dict) and on["click_history"] is True and on["open_pixel"] is True
    off = ws.json("newsletters", "edit", "evening", "--no-click-history")
    assert isinstance(off, dict) and off["click_history"] is False and off["open_pixel"] is True


def test_subscribers_import_reports_bad_lines(ws: Workspace) -> None:
    ws.ok("subscribers", "add", "ann@example.com")
    (ws.folder / "readers.csv").write_text(
        "email,name,topics\n"
        "new@example.com,New,world\n"
        "not-an-email,Bad,\n"
        "ANN@example.com,Dup,\n"
        "zed@example.com,Zed,astrology\n"
        "kim@example.com,Kim,\n"
    )

    result = ws.run("subscribers", "import", "readers.csv")

    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["line 3", "line 5"]
    assert "not-an-email" in lines[0] and "astrology" in lines[1]
    summary = result.stdout.strip()
    assert "\n" not in summary
    for part in ("imported 2", "already subscribed 1", "rejected 2"):
        assert part in summary
    assert ws.counts()["subscribers"] == 3


FIXTURE_IMPORTS = Path(__file__).parents[2] / "fixtures" / "imports"


def test_subscribers_import_from_another_service_then_export_and_back(ws: Workspace) -> None:
    shutil.copy(FIXTURE_IMPORTS / "beehiiv/subscribers_export_2026-11-30.csv", ws.folder / "beehiiv.csv")

    result = ws.run("subscribers", "import", "beehiiv.csv")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("beehiiv: imported 35 (subscribed 15, pending 12, unsubscribed 4, cleaned 4), "
                                     "already subscribed 0, suppressed 0, rejected 1")
    assert result.stderr.startswith("line 19: unknown status 'archived'")
    again = ws.run("subscribers", "import", "beehiiv.csv", "--from", "beehiiv")
    assert "imported 0, already subscribed 35" in again.stdout

    exported = ws.run("subscribers", "export", "--status", "pending")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert lines[0].startswith("email,name,status,topics,newsletters,created_at,confirmed_at")
    assert len(lines) == 13 and all(",pending," in line for line in lines[1:])
    ws.ok("subscribers", "export", "--format", "json", "--out", "all.json")
    assert len(json.loads((ws.folder / "all.json").read_text())) == 35
    refused = ws.run("subscribers", "import", "beehiiv.csv", "--from", "hotmail")
    assert refused.returncode == 1 and "unknown --from 'hotmail'" in refused.stderr


def test_editions_preview_writes_html(stocked: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "preview.html"

    result = stocked.run("editions", "preview", edition_id(stocked), "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Subject: Morning\n\n")
    assert "Unsubscribe: " in result.stdout
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert 'width="600"' in html and "/unsubscribe/preview-token" in html


def test_status_json_shape(stocked: Workspace) -> None:
    rows = stocked.json("status")
    one = stocked.json("status", edition_id(stocked))

    assert isinstance(rows, list) and len(rows) == 1
    for key in ("planned", "sent", "failed", "bounced", "skipped", "pending"):
        assert rows[0][key] == 0
    assert isinstance(one, dict) and one == rows[0]
    assert str(one["id"]) == edition_id(stocked)
    assert one["status"] == "scheduled" and one["send_at"] == "2026-12-01T05:00:00+00:00"


def test_status_ends_with_the_feeds_health(ws: Workspace) -> None:
    engine = make_engine(f"sqlite:///{ws.database}")
    with session_factory(engine).begin() as session:
        add_feed(session, "https://news.example.com/well.xml", FeedSettings(), [])
        failing = add_feed(session, "https://news.example.com/failing.xml", FeedSettings(), [])
        failing.failures, failing.last_status, failing.last_error = 2, "failed", "could not fetch it: HTTP 500"
        gone = add_feed(session, "https://news.example.com/gone.xml", FeedSettings(), [])
        set_active(session, gone.id, False, datetime.now(UTC), "gone: could not fetch it: HTTP 410")
        failing_id, gone_id = failing.id, gone.id
    engine.dispose()

    lines = ws.ok("status").splitlines()
    at = lines.index("feeds: 1 polled and well, 1 failing, 1 paused")
    assert lines[at + 1:at + 3] == [
        f"  feed {gone_id} stopped: https://news.example.com/gone.xml: gone: could not fetch it: HTTP 410",
        f"  feed {failing_id} failing: https://news.example.com/failing.xml: 2 failed polls in a row: "
        "could not fetch it: HTTP 500"]
    assert isinstance(ws.json("status"), list)  # the JSON stays the editions, as documented


def test_tables_print_titles_and_subjects_as_they_are(ws: Workspace) -> None:
    # Rich reads "[/b]" as markup and ":name:" as emoji; feed titles, editors' subjects and
    # readers' names are not markup. Every list command prints through one table helper.
    title, subject, name = "[/politics] Budget :fire: vote [bold]now", "[/b] Morning :smile:", "[/b] Morning"
    engine = make_engine(f"sqlite:///{ws.database}")
    with session_factory(engine).begin() as session:
        session.add(Story(url="https://news.example.com/x", title=title, published_at=datetime.now(UTC)))
        session.add(Edition(subject=subject, send_at=datetime.now(UTC)))
        session.add(Newsletter(slug="morning", name=name, cron="0 7 * * *", timezone="UTC",
                               subject_template="{{ newsletter }}"))
        add_subscriber(session, "reader@example.org", name=name, allowed_topics=[], confirmed=True)
    engine.dispose()

    for args, text in ((["stories", "list"], title), (["editions", "list"], subject), (["status"], subject),
                       (["newsletters", "list"], name), (["subscribers", "list"], name)):
        result = ws.run(*args)
        assert result.returncode == 0, result.stderr
        assert text in result.stdout


def test_users_are_listed_disabled_enabled_and_reset(ws: Workspace) -> None:
    added = ws.ok("users", "add", "Olena@Example.org", "--role", "editor").splitlines()
    assert added[0] == "added olena@example.org (editor)" and added[1].startswith("one-time password: ")

    [listed] = ws.json("users", "list")  # type: ignore[misc]
    assert {k: listed[k] for k in ("email", "role", "status", "must_change_password", "last_login_at")} == {
        "email": "olena@example.org", "role": "editor", "status": "active", "must_change_password": True,
        "last_login_at": None}
    assert ws.ok("users", "disable", "olena@example.org") == "olena@example.org: disabled\n"
    assert ws.ok("users", "disable", "olena@example.org") == "olena@example.org: was disabled already\n"
    table = ws.ok("users", "list")
    assert "olena@example.org" in table and "disabled" in table and "one-time" in table
    assert ws.ok("users", "enable", "OLENA@example.org") == "olena@example.org: enabled\n"
    assert ws.ok("users", "role", "olena@example.org", "--role", "ops") == "olena@example.org: ops\n"

    reset = ws.ok("users", "reset", "olena@example.org").splitlines()
    assert reset[0] == "olena@example.org: password reset, signed out everywhere"
    password = reset[1].removeprefix("one-time password: ")
    engine = make_engine(f"sqlite:///{ws.database}")
    factory = session_factory(engine)
    assert staff.authenticate(factory, "olena@example.org", password) is not None
    assert staff.authenticate(factory, "olena@example.org", added[1].removeprefix("one-time password: ")) is None
    with factory() as session:
        audit = session.execute(select(AuditEntry.action, AuditEntry.via, AuditEntry.detail)
                                .order_by(AuditEntry.id)).all()
    engine.dispose()
    assert [(action, via) for action, via, _ in audit] == [
        ("user.add", "cli"), ("user.disable", "cli"), ("user.disable", "cli"), ("user.enable", "cli"),
        ("user.role", "cli"), ("user.reset", "cli")]
    assert password not in str(audit)


# ------------------------------------------------------------------ bad input

BAD_INPUT = {
    "malformed address": (["subscribers", "add", "not-an-email"], "invalid email address"),
    "address already listed": (["subscribers", "add", "ANN@example.com"], "already on the list"),
    "name with a newline": (["subscribers", "add", "new@example.com", "--name", "Ann\nBcc: x@example.com"],
                            "single line"),
    "unknown topic": (["subscribers", "add", "new@example.com", "--topics", "astrology"], "unknown topic"),
    "unknown --status": (["subscribers", "list", "--status", "sleeping"], "unknown status 'sleeping'"),
    "preview unknown edition": (["editions", "preview", "999"], "no edition with id 999"),
    "status unknown edition": (["status", "999"], "no edition with id 999"),
    "edition id not a number": (["editions", "preview", "one"], "Invalid value"),
    "ingest missing file": (["stories", "ingest", "missing.json"], "cannot read"),
    "ingest a folder": (["stories", "ingest", "folder"], "is a folder"),
    "ingest bad JSON item": (["stories", "ingest", "bad.json"], "item 1: published_at: missing"),
    "ingest a private address": (["stories", "ingest", "http://0177.0.0.1:6379/"],
                                 "could not fetch http://0177.0.0.1:6379/: refused (private address)"),
    "import missing file": (["subscribers", "import", "missing.csv"], "cannot read missing.csv"),
    "import not UTF-8": (["subscribers", "import", "latin1.csv"], "not UTF-8"),
    "bad date": (["editions", "create", "--subject", "S", "--at", "next tuesday"], "not an ISO 8601"),
    "bad zone": (["editions", "create", "--subject", "S", "--at", "2026-12-01T07:00", "--tz", "Mars/Base"],
                 "unknown time zone"),
    "subject with a newline": (["editions", "create", "--subject", "Hello\nBcc: victim@example.com"],
                               "subject must be a single line"),
    "option without its value": (["editions", "create", "--subject"], "requires an argument"),
    "unknown command": (["subscribers", "delete", "ann@example.com"], "No such command"),
    "disable unknown user": (["users", "disable", "nobody@example.org"], "no user nobody@example.org"),
    "enable unknown user": (["users", "enable", "nobody@example.org"], "no user nobody@example.org"),
    "reset unknown user": (["users", "reset", "nobody@example.org"], "no user nobody@example.org"),
    "disable the last admin": (["users", "disable", "admin@example.org"], "is the last active admin"),
    "demote the last admin": (["users", "role", "admin@example.org", "--role", "editor"], "is the last active admin"),
    "user with an unknown role": (["users", "add", "new@example.org", "--role", "owner"], "role must be one of"),
    "user already there": (["users", "add", "ADMIN@example.org", "--role", "editor"], "admin@example.org exists"),
    "create for an unknown newsletter": (["editions", "create", "--subject", "S", "--newsletter", "evening"],
                                         "no newsletter 'evening'"),
    "edit unknown edition": (["editions", "edit", "999", "--subject", "S"], "no edition with id 999"),
    "edit with nothing to change": (["editions", "edit", "1"], "nothing to change"),
    "edit --tz without --at": (["editions", "edit", "1", "--tz", "Europe/Kyiv"], "give --at with it"),
    "edit bad date": (["editions", "edit", "1", "--at", "next tuesday"], "not an ISO 8601"),
    "edit bad zone": (["editions", "edit", "1", "--at", "2031-01-01T07:00", "--tz", "Mars/Base"],
                      "unknown time zone"),
    "edit subject with a newline": (["editions", "edit", "1", "--subject", "Hi\nBcc: victim@example.com"],
                                    "subject must be a single line"),
    "edit too many stories": (["editions", "edit", "1", "--max-stories", "51"], "max stories must be between 1 and 50"),
    "edit max stories not a number": (["editions", "edit", "1", "--max-stories", "lots"], "Invalid value"),
    "edit unknown newsletter": (["editions", "edit", "1", "--newsletter", "evening"], "no newsletter 'evening'"),
    "edit both newsletter options": (["editions", "edit", "1", "--newsletter", "a", "--no-newsletter"],
                                     "not both"),
    "embed for an unknown newsletter": (["embed", "--newsletter", "evening"], "no newsletter 'evening'"),
    "embed an unknown topic": (["embed", "--topics", "world,gossip"], "unknown topic(s) gossip"),
}


@dataclass
class BadRun:
    result: subprocess.CompletedProcess[str]
    before: dict[str, int]
    after: dict[str, int]


@pytest.fixture(scope="module")
def bad_runs(stocked: Workspace, tmp_path_factory: pytest.TempPathFactory) -> dict[str, BadRun]:
    """Every BAD_INPUT case at once, each on its own copy of the stocked workspace: the
    copies keep a case's effect on the database its own, and running them side by side
    keeps the suite fast (each run is a fresh interpreter)."""
    def run(case: str) -> BadRun:
        copy = stocked.copy_to(tmp_path_factory.mktemp("bad") / "ws")
        before = copy.counts()
        result = copy.run(*BAD_INPUT[case][0])
        return BadRun(result, before, copy.counts())

    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        return dict(zip(BAD_INPUT, pool.map(run, BAD_INPUT), strict=True))


@pytest.mark.parametrize("case", BAD_INPUT.keys())
def test_bad_input_is_one_line_and_changes_nothing(bad_runs: dict[str, BadRun], case: str) -> None:
    run, message = bad_runs[case], BAD_INPUT[case][1]

    assert run.result.returncode != 0
    assert "Traceback" not in run.result.stderr
    assert len(run.result.stderr.splitlines()) == 1, run.result.stderr
    assert run.result.stderr.startswith("digest: error: ")
    assert message in run.result.stderr
    assert run.result.stdout == ""
    assert run.after == run.before
    assert run.before["stories"] >= 13 and run.before["subscribers"] == 1 and run.before["editions"] == 1


def test_bad_setting_is_one_line_naming_the_variable(ws: Workspace) -> None:
    result = ws.run_script("subscribers", "list", DIGEST_SMTP_URL="http://mail.example.com")

    assert result.returncode == 1
    assert result.stderr.startswith("digest: error: DIGEST_SMTP_URL: ")
    assert len(result.stderr.splitlines()) == 1


def test_embed_prints_a_form_for_the_publishers_pages(ws: Workspace) -> None:
    ws.ok("newsletters", "add", "evening", "--name", "Evening <Briefing>", "--cron", "0 18 * * *")
    base = "https://news.example.com/digest"
    snippet = ws.run("embed", "--newsletter", "evening", "--topics", "world,science", DIGEST_BASE_URL=base)
    assert snippet.returncode == 0, snippet.stderr
    html = snippet.stdout
    assert f'<form class="digest-signup" method="post" action="{base}/subscribe">' in html
    assert '<label for="digest-email">' in html and 'id="digest-email" name="email" type="email"' in html
    assert 'name="newsletters_offered" value="1"' in html
    assert 'name="newsletters" value="1"' in html
    assert "Subscribe to Evening &lt;Briefing&gt;" in html  # escaped: names are editors' text
    assert [t for t in ("science", "world") if f'name="topics" value="{t}"' in html] == ["science", "world"]
    assert 'name="website"' in html and "aria-hidden" in html
    assert "<script" not in html  # plain HTML unless --script is asked for
    assert readers.CONSENT_TEXT in html

    assert f'<script src="{base}/embed.js" defer></script>' in ws.run("embed", "--script", DIGEST_BASE_URL=base).stdout
    ws.ok("newsletters", "archive", "evening")
    refused = ws.run("embed", "--newsletter", "evening")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("digest: error: ") and "archived" in refused.stderr


def test_a_bad_embed_origin_is_one_line_naming_the_variable(ws: Workspace) -> None:
    result = ws.run("embed", DIGEST_EMBED_ORIGINS="https://news.example.com/articles")
    assert result.returncode == 1
    assert result.stderr.startswith("digest: error: DIGEST_EMBED_ORIGINS: ")
    assert len(result.stderr.splitlines()) == 1


# ------------------------------------------------------------------ demo


def test_demo_without_a_broker_writes_one_message_per_reader(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    folder = tmp_path / "demo"

    result = workspace.run("demo", "--folder", str(folder), "--readers", "12")

    assert result.returncode == 0, result.stderr
    assert "in-process" in result.stdout
    messages = sorted((folder / "outbox").glob("*.eml"))
    assert len(messages) == 12
    recipients = set()
    for path in messages:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients.add(message["To"].addresses[0].addr_spec)
        assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    assert recipients == {f"reader{i}@example.org" for i in range(1, 13)}
    preview = (folder / "outbox" / "preview.html").read_text(encoding="utf-8")
    assert "Zelensky Insists Bakhmut" in preview
    assert not workspace.database.exists()  # the demo keeps to its own folder


def broken_templates(tmp_path: Path, kind: str, name: str) -> Path:
    """A copy of the repository's templates with templates/<kind>/<name> that does not compile."""
    templates = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[3] / "templates", templates)
    (templates / kind / name).write_text("{% for story in stories %}\nno end\n")
    return templates / kind / name


@pytest.mark.parametrize(("command", "kind", "name"), [
    (("demo", "--folder", "demo"), "email", "digest/body.txt"),
    (("serve", "--port", "1"), "email", "_base/body.html"),
    (("serve", "--port", "1"), "web", "archive.html"),
])
def test_a_broken_template_stops_the_command_in_one_line_naming_it(ws: Workspace, command: tuple[str, ...],
                                                                  kind: str, name: str) -> None:
    broken = broken_templates(ws.folder, kind, name)

    result = ws.run(*command, DIGEST_TEMPLATES_DIR=str(ws.folder / "templates"))

    assert result.returncode == 1
    assert result.stderr.startswith(f"digest: error: template {broken}, line ")
    assert "is broken: Unexpected end of template" in result.stderr
    assert result.stderr.count("\n") == 1 and "'endfor'" in result.stderr
    assert not (ws.folder / "demo" / "outbox").exists() or not list((ws.folder / "demo" / "outbox").glob("*.eml"))
