"""What a user limited to some projects may see on the stream, and queue figures split per project."""

from __future__ import annotations

from typing import Any, cast

from frontoffice.bootstrap import FiguresPublisher
from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.domain.metrics import LiveQueueFigures
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.stats import StatsService
from frontoffice.web.stream import project_filter


def _message(project_id: int | None, *audience: str) -> BusMessage:
    return BusMessage(type="x", data={}, audience=audience or ("supervisors",), project_id=project_id)


def test_an_unlimited_user_gets_no_filter_and_sees_every_project() -> None:
    actor = Actor(user_id=1, role=Role.SUPERVISOR)
    assert project_filter(actor) is None
    assert actor.sees_project(7) and actor.sees_project(None)


def test_a_limited_user_sees_their_projects_no_project_and_their_own_work() -> None:
    actor = Actor(user_id=5, role=Role.AGENT, project_ids=frozenset({1, 2}))
    accepts = project_filter(actor)
    assert accepts is not None
    assert accepts(_message(1)) and accepts(_message(2)) and accepts(_message(None))
    assert not accepts(_message(3))
    # An offer from another project's queue that the agent serves still rings on their desk.
    assert accepts(_message(3, "supervisors", "agent:5"))
    assert not accepts(_message(3, "supervisors", "agent:6"))
    assert not actor.sees_project(3) and actor.sees_project(None)


class _Stats:
    def __init__(self, figures: dict[int, Any]) -> None:
        self.figures = figures

    def live(self) -> dict[int, Any]:
        return self.figures


def _figures(queue_id: int) -> LiveQueueFigures:
    fields = {name: 0 for name in LiveQueueFigures.__dataclass_fields__}
    return LiveQueueFigures(**(fields | {"queue_id": queue_id}))


def test_queue_figures_go_out_as_one_message_per_project() -> None:
    bus = InProcessBus()
    sub = bus.subscribe()
    projects = {10: 1, 11: 1, 12: 2, 13: None}
    stats = cast(StatsService, _Stats({q: _figures(q) for q in (10, 11, 12, 13)}))
    publisher = FiguresPublisher(stats, bus, project_of=projects.get)
    publisher._dirty = {10, 11, 12, 13, 99}  # 99: no figures yet
    publisher._flush()
    sent = {}
    while not sub.queue.empty():
        m = sub.queue.get_nowait()
        sent[m.project_id] = [q["queue_id"] for q in m.data["queues"]]
        assert m.type == "queue_figures" and m.audience == ("supervisors",)
    assert sent == {1: [10, 11], 2: [12], None: [13]}
