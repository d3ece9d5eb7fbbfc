"""The edition actions that can leave an edition scheduled and due ask for its release at
once, after commit (and only those); an edit writes its audit row with the fields changed,
and a refused edit changes nothing and leaves no row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from digest import actions
from digest.config import get_settings
from digest.editions import EditionChanges, EditionFrozen, InvalidEdition, NewsletterNotFound, create_newsletter
from digest.store import AuditEntry, Edition, EditionStatus, utcnow
from digest.store.engine import session_factory
from tests.support.samples import TOPICS

CLI = actions.Actor.command_line()


class World:
    """The actions' world with recording queues: what was asked for, and whether the change
    had committed by then."""

    def __init__(self, engine: Engine) -> None:
        self.factory = session_factory(engine)
        self.releases: list[list[str]] = []  # at each release: the statuses committed then
        self.deps = actions.Deps(self.factory, get_settings(), self.refuse, self.refuse, self.release)

    def refuse(self, *args: object) -> None:
        raise AssertionError(f"an edition action enqueued {args}")

    def release(self) -> None:
        with self.factory() as session:
            self.releases.append([e.status.value for e in session.scalars(select(Edition).order_by(Edition.id))])

    def edition(self, status: EditionStatus, send_at_in: timedelta) -> int:
        with self.factory.begin() as session:
            edition = Edition(subject="Morning", send_at=utcnow() + send_at_in, status=status, max_stories=5,
                              window_hours=48)
            session.add(edition)
            session.flush()
            return edition.id

    def audit(self) -> list[tuple[str, str, object]]:
        with self.factory() as session:
            return [(r.action, r.target, r.detail) for r in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def test_scheduling_a_due_draft_asks_for_its_release_after_commit(world: World) -> None:
    edition_id = world.edition(EditionStatus.DRAFT, timedelta(minutes=-5))

    outcome = actions.editions.schedule(world.deps, CLI, edition_id)

    assert outcome.changed and outcome.data == {"sending_now": True}
    assert world.releases == [["scheduled"]]  # committed before the release was asked for
    assert actions.editions.schedule(world.deps, CLI, edition_id).data == {"sending_now": False}
    assert len(world.releases) == 1


def test_scheduling_for_later_leaves_it_to_beat(world: World) -> None:
    edition_id = world.edition(EditionStatus.DRAFT, timedelta(hours=2))

    assert actions.editions.schedule(world.deps, CLI, edition_id).data == {"sending_now": False}
    assert world.releases == []


@pytest.mark.parametrize(("draft", "at", "released"), [(False, timedelta(0), True), (False, timedelta(hours=1), False),
                                                       (True, timedelta(0), False)])
def test_creating_asks_for_a_release_only_when_scheduled_and_due(world: World, draft: bool, at: timedelta,
                                                                  released: bool) -> None:
    actions.editions.create_edition(world.deps, CLI, subject="Now", send_at=utcnow() + at, topics=None,
                                    max_stories=5, window_hours=48, draft=draft)

    assert world.releases == ([["scheduled"]] if released else [])


def test_a_one_off_for_a_newsletter_records_it(world: World) -> None:
    with world.factory.begin() as session:
        morning = create_newsletter(session, slug="morning", name="Morning", cron="0 7 * * *", timezone="UTC",
                                    allowed_topics=TOPICS).id

    made = actions.editions.create_edition(world.deps, CLI, subject="For Morning", send_at=utcnow(), topics=None,
                                           max_stories=5, window_hours=48, draft=True, newsletter="morning")

    assert made["newsletter_id"] == morning
    assert world.audit() == [("edition.add", f"edition:{made['id']}", {"draft": True, "newsletter_id": morning})]
    with pytest.raises(NewsletterNotFound):
        actions.editions.create_edition(world.deps, CLI, subject="Nobody's", send_at=utcnow(), topics=None,
                                        max_stories=5, window_hours=48, draft=True, newsletter="evening")
    assert len(world.audit()) == 1


def test_an_edit_is_audited_with_each_field_and_what_it_replaced(world: World) -> None:
    edition_id = world.edition(EditionStatus.SCHEDULED, timedelta(days=1))
    with world.factory() as session:
        was = session.get_one(Edition, edition_id).send_at
    later = was + timedelta(days=1)

    outcome = actions.editions.edit(world.deps, CLI, edition_id, EditionChanges(
        subject="Evening", send_at=later, max_stories=3, note="Hello"))

    assert outcome.changed and outcome.data["changed"] == ["subject", "send_at", "max_stories", "note"]
    assert outcome.data["edition"]["subject"] == "Evening" and outcome.data["sending_now"] is False
    assert world.audit() == [("edition.edit", f"edition:{edition_id}", {
        "changed": ["subject", "send_at", "max_stories", "note"], "subject": "Evening", "subject_was": "Morning",
        "max_stories": 3, "max_stories_was": 5, "send_at": later.isoformat(), "send_at_was": was.isoformat()})]
    assert world.releases == []


def test_a_scheduled_edition_moved_to_the_past_is_released_now(world: World) -> None:
    edition_id = world.edition(EditionStatus.SCHEDULED, timedelta(days=1))

    outcome = actions.editions.edit(world.deps, CLI, edition_id, EditionChanges(send_at=utcnow() - timedelta(days=9)))

    assert outcome.data["sending_now"] is True
    assert world.releases == [["scheduled"]]
    with world.factory() as session:
        assert session.get_one(Edition, edition_id).send_at >= utcnow() - timedelta(minutes=1)


def test_a_refused_edit_changes_nothing_and_leaves_no_row(world: World) -> None:
    frozen = world.edition(EditionStatus.SENDING, timedelta(0))
    draft = world.edition(EditionStatus.DRAFT, timedelta(days=1))

    with pytest.raises(EditionFrozen):
        actions.editions.edit(world.deps, CLI, frozen, EditionChanges(subject="Too late"))
    with pytest.raises(InvalidEdition):
        actions.editions.edit(world.deps, CLI, draft, EditionChanges(subject="Fine", max_stories=99))

    assert world.audit() == [] and world.releases == []
    with world.factory() as session:
        assert [e.subject for e in session.scalars(select(Edition))] == ["Morning", "Morning"]
