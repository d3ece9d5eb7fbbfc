"""The shape of the tests, checked: what test files share lives in tests/support (no test
module or conftest is imported by another file), conftest files hold fixtures only, and
the folders inside each tier mirror digest's packages."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = "tests.support"
TIERS = ("unit", "integration", "chaos")
PACKAGES = {path.parent.name for path in (TESTS.parent / "src" / "digest").glob("*/__init__.py")}


def python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth; a relative import is
    given as its dots and module, for it can only mean another test module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level == 0 and node.module == "tests":  # `from tests import x`: tests.x
                found += [(node.lineno, f"tests.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return found


def is_support(module: str) -> bool:
    return module == SUPPORT or module.startswith(SUPPORT + ".")


def test_test_files_import_only_tests_support() -> None:
    """`from tests.support.stack import Stack`, never `from tests.integration.conftest import …`
    or `from tests.integration.web.test_reader_http import …`: one test module does not lean
    on another, and a conftest is pytest's to load."""
    sample = ast.parse("import tests.unit.conftest\nfrom tests import integration\nfrom . import helpers\n"
                       "def f():\n    from tests.support.stack import Stack\n")
    assert [m for _, m in imported_modules(sample)] == [
        "tests.unit.conftest", "tests.integration", ".", "tests.support.stack"]
    wrong = []
    for path in python_files():
        for line, module in imported_modules(ast.parse(path.read_text())):
            if module.startswith(".") or ((module == "tests" or module.startswith("tests.")) and not is_support(module)):
                wrong.append(f"{path.relative_to(TESTS.parent)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def is_fixture(decorator: ast.expr) -> bool:
    """`@pytest.fixture`, `@pytest.fixture(...)`, `@fixture` or `@fixture(...)`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr == "fixture" and isinstance(target.value, ast.Name) and target.value.id == "pytest"
    return isinstance(target, ast.Name) and target.id == "fixture"


def not_fixtures_only(tree: ast.Module) -> list[str]:
    """What a conftest's top level holds besides its docstring, imports, module constants,
    fixtures and pytest hooks."""
    wrong = []
    for index, node in enumerate(tree.body):
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign):
            continue
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("pytest_") or any(is_fixture(d) for d in node.decorator_list):
                continue
            wrong.append(f"{node.lineno}: function {node.name} is not a fixture")
        elif isinstance(node, ast.ClassDef):
            wrong.append(f"{node.lineno}: class {node.name}")
        else:
            wrong.append(f"{node.lineno}: {type(node).__name__} statement")
    return wrong


def test_conftest_files_hold_fixtures_only() -> None:
    sample = ast.parse('"""Doc."""\nimport pytest\nLIMIT = 3\n@pytest.fixture\ndef a(): ...\n'
                       "@pytest.fixture(scope='session')\ndef b(): ...\ndef pytest_configure(config): ...\n"
                       "def helper(): ...\nclass Thing: ...\n")
    assert not_fixtures_only(sample) == ["9: function helper is not a fixture", "10: class Thing"]
    conftests = sorted(TESTS.rglob("conftest.py"))
    assert len(conftests) >= 3  # tests/, tests/unit/, tests/integration/
    wrong = [f"{path.relative_to(TESTS.parent)}:{problem}"
             for path in conftests for problem in not_fixtures_only(ast.parse(path.read_text()))]
    assert not wrong, "\n".join(wrong)


def test_test_folders_mirror_the_packages() -> None:
    """tests/<tier>/<package>/test_*.py, each folder a package (__init__.py) named after one
    of digest's; tests of a top-level module (config.py) sit in the tier itself."""
    assert PACKAGES >= {"store", "mail", "delivery", "web"}
    wrong = []
    for tier in TIERS:
        for folder in sorted(p for p in (TESTS / tier).rglob("*") if p.is_dir() and p.name != "__pycache__"):
            where = folder.relative_to(TESTS.parent)
            if folder.parent != TESTS / tier or folder.name not in PACKAGES:
                wrong.append(f"{where} is not tests/{tier}/<one of digest's packages>")
            if not (folder / "__init__.py").is_file():
                wrong.append(f"{where} has no __init__.py")
    assert not wrong, "\n".join(wrong)
