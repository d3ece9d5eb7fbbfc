"""Missing and broken templates: one line naming the file (and line), never Jinja's stack.

A release carries its templates inside the package (digest.config.default_templates_dir),
DIGEST_TEMPLATES_DIR points anywhere: either way a file can be missing or fail to compile,
and whoever fixes it needs its path, not a traceback through the loader. Entry points check
every template before they start (`check_templates`), so a broken one stops `digest serve`
or `digest demo` at once instead of failing the first page or batch that uses it.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from jinja2 import Environment, TemplateNotFound, TemplateSyntaxError, meta
from jinja2 import TemplateError as JinjaTemplateError

from digest.config import ConfigError

# What the mail code renders: templates/email/<name>/<part>.
EMAIL_TEMPLATES = ("digest", "confirm", "welcome")
EMAIL_PARTS = ("subject.txt", "body.html", "body.txt")
TEMPLATE_SUFFIXES = (".html", ".txt")


class TemplateError(ConfigError):
    """A template is missing or broken; the message names its file."""


def template_error(error: JinjaTemplateError, folder: Path) -> TemplateError:
    """Jinja's error as one line naming the file under `folder` (the loader's root)."""
    if isinstance(error, TemplateNotFound):
        return TemplateError(f"template {folder / str(error.name)} not found")
    if isinstance(error, TemplateSyntaxError):
        where = error.filename or str(folder / str(error.name))
        return TemplateError(f"template {where}, line {error.lineno}, is broken: {error.message}")
    # It compiled but failed to render (an undefined name, a bad filter): Jinja rewrites the
    # traceback so that the template's own frame carries its file and line.
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename.startswith(str(folder))]
    where = f"{frames[-1].filename}, line {frames[-1].lineno}," if frames else f"in {folder}"
    return TemplateError(f"template {where} is broken: {' '.join(str(error).split())}")


def check_templates(env: Environment, folder: Path, required: tuple[str, ...] = ()) -> None:
    """Compile every template under `folder` with `env` (whose loader reads `folder`) and
    make sure the `required` ones exist; TemplateError for the first that fails."""
    if not folder.is_dir():
        raise TemplateError(f"template folder {folder} not found")
    present = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                     if path.is_file() and path.suffix in TEMPLATE_SUFFIXES)
    for name in [*required, *present]:
        try:
            template = env.get_template(name)
            # A missing base or include shows only when rendering: look for each one now.
            if template.filename:
                source = Path(template.filename).read_text(encoding="utf-8")
                for parent in meta.find_referenced_templates(env.parse(source)):
                    if parent is not None:
                        env.get_template(parent)
        except JinjaTemplateError as exc:
            raise template_error(exc, folder) from None
