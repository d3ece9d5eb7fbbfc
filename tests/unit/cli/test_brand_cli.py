"""`digest newsletters brand SLUG --accent-color … --logo-url …`: the brand set from the
command line through the same action as the API and the editor (one audit row), a refused
value one line on stderr naming it, nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.editions import create_newsletter
from digest.store.engine import make_engine, session_factory
from digest.store.migrate import upgrade
from digest.store.models import AuditEntry, Newsletter
from tests.support.zygote import run_digest

CLI_TIMEOUT_SECONDS = 60


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    engine = make_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    upgrade(engine)
    with session_factory(engine).begin() as session:
        create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                          allowed_topics=[])
    engine.dispose()
    return tmp_path


def digest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_DATABASE_URL=f"sqlite:///{folder / 'digest.db'}", DIGEST_SMTP_URL=f"outbox://{folder / 'out'}",
               DIGEST_BROKER_URL="redis://127.0.0.1:1/0", COLUMNS="200")
    return run_digest(list(args), cwd=folder, env=env, timeout=CLI_TIMEOUT_SECONDS)


def stored(folder: Path) -> tuple[Newsletter, list[AuditEntry]]:
    engine = make_engine(f"sqlite:///{folder / 'digest.db'}")
    with session_factory(engine)() as session:
        newsletter = session.scalars(select(Newsletter)).one()
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "newsletter.brand")))
        session.expunge_all()
    engine.dispose()
    return newsletter, rows


def test_the_brand_is_set_printed_and_put_back(folder: Path) -> None:
    done = digest(folder, "newsletters", "brand", "morning", "--accent-color", "#0B5394", "--logo-url",
                  "https://cdn.example/logo.png", "--logo-width", "180", "--font", "verdana", "--reply-to",
                  "desk@news.example.com", "--language", "ar", "--footer-text", "Reader-funded.", "--link-color",
                  "#5b2a86")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("newsletter morning: logo_url, logo_width, accent_color, link_color, font, "
                                  "footer_text, reply_to, language changed")
    assert "accent_color: #0b5394" in done.stdout
    newsletter, rows = stored(folder)
    assert (newsletter.brand_accent_color, newsletter.brand_logo_width, newsletter.brand_language) == (
        "#0b5394", 180, "ar")
    assert len(rows) == 1 and rows[0].via == "cli"

    shown = digest(folder, "newsletters", "brand", "morning", "--json")
    assert json.loads(shown.stdout)["brand"]["font"] == "verdana"
    back = digest(folder, "newsletters", "brand", "morning", "--font", "", "--json")
    assert json.loads(back.stdout)["brand"]["font"] is None
    assert "font: (default)" in digest(folder, "newsletters", "brand", "morning").stdout
    assert "brand: logo_url=https://cdn.example/logo.png, logo_width=180, accent_color=#0b5394" in digest(
        folder, "newsletters", "show", "morning").stdout


@pytest.mark.parametrize(("args", "line"), [
    (("--accent-color", "#ffcc00"), "accent_color #ffcc00 is 1.5:1 on white; needs 4.5:1"),
    (("--logo-url", "http://cdn.example/logo.png"), "logo_url must be an https:// address"),
    (("--logo-width", "wide"), "logo_width must be a whole number of pixels from 16 to 536"),
    (("--reply-to", "nobody"), "reply_to 'nobody' is not a valid email address"),
])
def test_a_refused_value_is_one_line_on_stderr_and_changes_nothing(folder: Path, args: tuple[str, ...],
                                                                   line: str) -> None:
    refused = digest(folder, "newsletters", "brand", "morning", "--font", "arial", *args)

    assert refused.returncode == 1 and refused.stdout == ""
    assert line in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr
    newsletter, rows = stored(folder)
    assert (newsletter.brand_font, rows) == (None, [])
