"""Where staff go back to from an error: the page the error belongs to, else their own
dashboard (ops cannot open the editor's), never the readers' sign-up page."""

from __future__ import annotations

import pytest

from digest.web.errors import editor_back


@pytest.mark.parametrize(("path", "role", "back"), [
    ("/editor/editions/12/test", "editor", "/editor/editions/12"),
    ("/editor/stories/4/flags", "editor", "/editor/stories"),
    ("/editor/readers/9/erase", "ops", "/editor/readers/9"),
    ("/ops/editions/3/pause", "ops", "/ops"),
    ("/ops/audit.csv", "ops", "/ops/audit"),
    ("/account/password", "ops", "/ops"),
    ("/account/password", "editor", "/editor"),
    ("/account/password", "admin", "/editor"),
    ("/editor/embed", "editor", "/editor"),
])
def test_staff_go_back_to_the_page_or_their_dashboard(path: str, role: str, back: str) -> None:
    assert editor_back(path, role) == back
