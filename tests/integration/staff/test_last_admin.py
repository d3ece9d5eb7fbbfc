"""The last-admin rule under a race: two admins disabling each other at the same moment must
not both succeed. On PostgreSQL the second change waits for the first (the active admins'
rows are locked) and is then refused; on SQLite writers take turns and the guard sits inside
the UPDATE, so the second is refused too (or, at worst, fails with nothing changed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from digest import staff
from digest.store.engine import make_engine
from digest.store.migrate import upgrade
from digest.store.models import AuditEntry, Role, User, WebSession

pytestmark = pytest.mark.integration

WAIT_SECONDS = 10


@pytest.fixture(params=["postgresql", "sqlite"])
def factory(request, tmp_path) -> Iterator[sessionmaker[Session]]:  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for table in (AuditEntry, WebSession, User):
            conn.execute(delete(table))
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def test_two_admins_disabling_each_other_at_once_leave_one(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        admins = [User(email=f"admin{i}@example.org", role=Role.ADMIN, password_hash="x") for i in (1, 2)]
        session.add_all(admins)
        session.flush()
        first, second = (a.id for a in admins)

    outcome: dict[str, object] = {}

    def the_other() -> None:
        try:
            with factory.begin() as session:
                staff.set_disabled(session, first, True)
            outcome["other"] = "disabled"
        except (staff.LastAdmin, OperationalError) as exc:
            outcome["other"] = exc

    session = factory()
    try:
        with session.begin():
            assert staff.set_disabled(session, second, True)[1]  # not committed yet
            racer = threading.Thread(target=the_other)
            racer.start()
            racer.join(0.5)  # it gets as far as it can while this transaction is open
        racer.join(WAIT_SECONDS)
    finally:
        session.close()

    assert not racer.is_alive()
    assert isinstance(outcome["other"], staff.LastAdmin | OperationalError), outcome
    with factory() as check:
        active = check.scalar(select(func.count()).select_from(User).where(
            User.role == Role.ADMIN, User.disabled_at.is_(None)))
    assert active == 1
