"""The fuzz targets, their list and their seeds agree: `scripts/fuzz.sh all` (what CI runs)
fuzzes every target in fuzz/targets.py, each starting from seeds of its own. Read, not
imported: atheris instruments digest as it is imported, which this process has done."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def targets_in_module() -> list[str]:
    tree = ast.parse((REPO / "fuzz" / "targets.py").read_text())
    [table] = [node.value for node in tree.body
               if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "TARGETS"]
    assert isinstance(table, ast.Dict)
    return [key.value for key in table.keys if isinstance(key, ast.Constant)]


def targets_in_script() -> list[str]:
    script = (REPO / "scripts" / "fuzz.sh").read_text()
    [names] = re.findall(r'\[ "\$target" = all \] && targets=\(([^)]*)\)', script)
    return names.split()


def test_fuzz_sh_all_runs_every_target() -> None:
    assert {"feed", "jsonfeed", "sitemap", "json", "source"} <= set(targets_in_module())
    assert sorted(targets_in_script()) == sorted(targets_in_module())


def test_every_target_has_seeds() -> None:
    seeds = REPO / "fuzz" / "seeds"

    assert [name for name in targets_in_module() if not any((seeds / name).glob("*"))] == []
