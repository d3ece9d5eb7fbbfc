"""Subject templates: text with `{{ newsletter }}`, `{{ date }}` and `{{ weekday }}` filled
in, and nothing else.

A template is read by Jinja's own parser and taken only if it is plain text and those
names: no expressions, filters, tags, loops or calls. So filling one in costs time in
proportion to its 300 characters, whatever an editor writes (`{{ 9**(9**8) }}` or
`{% for x in range(10**6) %}` are refused when the newsletter is saved, not run), and a
template stored before this rule that breaks it is skipped by the scheduler with its
reason (`subject_problem`), never run.

`SubjectTemplates().from_string(t).render(**values)` mirrors Jinja's interface, and its
refusals are `jinja2.TemplateError`s, so callers handle them as they did Jinja's.
"""

from __future__ import annotations

from jinja2 import Environment, TemplateError, nodes

SUBJECT_NAMES = ("newsletter", "date", "weekday")
_ALLOWED = ", ".join("{{ %s }}" % name for name in SUBJECT_NAMES)  # noqa: UP031 - braces galore
_parser = Environment(autoescape=False)
_SAMPLE = {"newsletter": "Sample", "date": "Monday 1 January 2026", "weekday": "Monday"}


class SubjectError(TemplateError):
    """A subject template that is not plain text and the documented names."""


class SubjectTemplate:
    """A checked template: its pieces, each text or a name."""

    def __init__(self, pieces: list[tuple[bool, str]]) -> None:
        self.pieces = pieces

    def render(self, **values: str) -> str:
        return "".join(values[piece] if is_name else piece for is_name, piece in self.pieces)


class SubjectTemplates:
    def from_string(self, template: str) -> SubjectTemplate:
        """The template's pieces; SubjectError saying what is not allowed."""
        try:
            tree = _parser.parse(template)
        except TemplateError as exc:
            raise SubjectError(str(exc)) from None
        pieces: list[tuple[bool, str]] = []
        for statement in tree.body:
            if not isinstance(statement, nodes.Output):
                raise SubjectError(f"only text and {_ALLOWED} may be used, no {{% … %}} tags")
            for node in statement.nodes:
                if isinstance(node, nodes.TemplateData):
                    pieces.append((False, node.data))
                elif isinstance(node, nodes.Name) and node.name in SUBJECT_NAMES:
                    pieces.append((True, node.name))
                elif isinstance(node, nodes.Name):
                    raise SubjectError(f"{{{{ {node.name} }}}} is not a name subjects know: use {_ALLOWED}")
                else:
                    raise SubjectError(f"only text and {_ALLOWED} may be used, no expressions or filters")
        return SubjectTemplate(pieces)


def subject_problem(template: str) -> str | None:
    """Why `template` cannot make a subject (for a stored one), or None."""
    try:
        subject = SubjectTemplates().from_string(template).render(**_SAMPLE)
    except TemplateError as exc:
        return str(exc)
    return None if subject.strip() else "it renders empty"
