"""Missing and broken email templates: one line naming the file, never Jinja's traceback;
where the templates are found with and without DIGEST_TEMPLATES_DIR."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import REPO_ROOT, ConfigError, Settings, get_settings
from digest.mail import TemplateError, check_email_templates, render_template
from tests.support.caches import clear_caches

CONTEXT = {"edition": None, "stories": (), "reader": {}, "sender_name": "N", "postal_address": "P",
           "site_url": "https://x.example", "archive_url": "https://x.example/archive"}


@pytest.fixture
def templates(digest_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's templates, in use through DIGEST_TEMPLATES_DIR."""
    folder = digest_env / "templates"
    shutil.copytree(REPO_ROOT / "templates", folder)
    monkeypatch.setenv("DIGEST_TEMPLATES_DIR", str(folder))
    clear_caches()
    return folder


def one_line(error: pytest.ExceptionInfo[TemplateError]) -> str:
    message = str(error.value)
    assert "\n" not in message and error.value.__cause__ is None
    return message


def test_from_a_checkout_the_repository_templates_are_used(digest_env: Path) -> None:
    assert get_settings().templates_dir == REPO_ROOT / "templates"
    check_email_templates(get_settings().templates_dir)


def test_templates_dir_without_email_templates_is_refused_at_start(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="has no email/ folder"):
        Settings(templates_dir=tmp_path)
    monkeypatch.setenv("DIGEST_TEMPLATES_DIR", str(tmp_path / "nowhere"))
    clear_caches()
    with pytest.raises(ConfigError, match=f"^DIGEST_TEMPLATES_DIR: {tmp_path / 'nowhere'} has no email/ folder"):
        get_settings()


def test_a_missing_template_names_its_file(templates: Path) -> None:
    (templates / "email" / "confirm" / "subject.txt").unlink()
    with pytest.raises(TemplateError) as error:
        render_template("confirm", CONTEXT)
    assert one_line(error) == f"template {templates / 'email' / 'confirm' / 'subject.txt'} not found"
    with pytest.raises(TemplateError, match="confirm/subject.txt not found"):
        check_email_templates(templates)


def test_a_missing_base_names_the_base(templates: Path) -> None:
    (templates / "email" / "_base" / "body.html").unlink()
    with pytest.raises(TemplateError) as error:
        check_email_templates(templates)  # every template extending it is found out
    assert one_line(error) == f"template {templates / 'email' / '_base' / 'body.html'} not found"


def test_a_template_that_does_not_compile_names_its_file_and_line(templates: Path) -> None:
    path = templates / "email" / "welcome" / "subject.txt"
    path.write_text("Hello\n{% if reader %}\nno end\n")
    with pytest.raises(TemplateError) as error:
        render_template("welcome", CONTEXT)
    assert one_line(error).startswith(f"template {path}, line ")
    with pytest.raises(TemplateError, match="welcome/subject.txt, line"):
        check_email_templates(templates)


def test_a_template_that_fails_to_render_names_its_file_and_line(templates: Path) -> None:
    path = templates / "email" / "welcome" / "subject.txt"
    path.write_text("Welcome\n{{ no_such_name.attribute }}\n")
    check_email_templates(templates)  # it compiles
    with pytest.raises(TemplateError) as error:
        render_template("welcome", {**CONTEXT, "when": datetime(2026, 12, 1, tzinfo=UTC)})
    message = one_line(error)
    assert message.startswith(f"template {path}, line 2, is broken:") and "no_such_name" in message
