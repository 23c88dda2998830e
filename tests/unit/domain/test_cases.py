"""Life cycles of tickets and deals."""

from __future__ import annotations

import pytest

from frontoffice.domain.cases import DealStage, TicketStatus, check_ticket_transition
from frontoffice.domain.exceptions import Conflict


def test_open_and_pending_tickets_are_open_solved_and_closed_are_not() -> None:
    assert [s for s in TicketStatus if s.is_open] == [TicketStatus.OPEN, TicketStatus.PENDING]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TicketStatus.OPEN, TicketStatus.PENDING),
        (TicketStatus.PENDING, TicketStatus.SOLVED),
        (TicketStatus.SOLVED, TicketStatus.OPEN),
        (TicketStatus.SOLVED, TicketStatus.CLOSED),
        (TicketStatus.OPEN, TicketStatus.CLOSED),
        (TicketStatus.CLOSED, TicketStatus.CLOSED),
    ],
)
def test_ticket_moves_that_help_desks_allow(old: TicketStatus, new: TicketStatus) -> None:
    check_ticket_transition(old, new)


@pytest.mark.parametrize("new", [TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED])
def test_a_closed_ticket_is_final(new: TicketStatus) -> None:
    with pytest.raises(Conflict) as caught:
        check_ticket_transition(TicketStatus.CLOSED, new)
    assert caught.value.error_id == "ticket-closed"


def test_won_and_lost_deals_are_closed() -> None:
    assert {s for s in DealStage if s.is_closed} == {DealStage.WON, DealStage.LOST}


def test_a_canned_answer_fills_its_variables_and_leaves_unknown_ones_for_the_agent() -> None:
    from frontoffice.domain.canned import render

    text, missing = render(
        "Hello {{customer.name}}, ticket #{{ ticket.number }}: {{agent.name}} {{agent.phone}} "
        "{{customer.first_name}}",
        {"customer.name": "Anna Petrova", "ticket.number": "42", "agent.name": "Boris"},
    )
    assert text == "Hello Anna Petrova, ticket #42: Boris {{agent.phone}} {{customer.first_name}}"
    assert missing == ["agent.phone", "customer.first_name"]


def test_a_pipeline_needs_one_won_one_lost_and_an_open_stage_with_sensible_probabilities() -> None:
    import pytest

    from frontoffice.domain.exceptions import InvalidInput
    from frontoffice.domain.pipelines import DEFAULT_PIPELINE, Pipeline, PipelineStage, StageKind

    assert [s.key for s in DEFAULT_PIPELINE.stages] == [
        "lead",
        "qualified",
        "proposal",
        "negotiation",
        "won",
        "lost",
    ]
    assert DEFAULT_PIPELINE.first_open.key == "lead"
    with pytest.raises(InvalidInput) as bad:
        Pipeline((PipelineStage("a", "A", 10), PipelineStage("won", "Won", 90, StageKind.WON)))
    assert bad.value.details["problems"] == [
        "a pipeline has exactly one won and one lost stage",
        "a won stage is 100 %, a lost one 0 %",
    ]
    with pytest.raises(InvalidInput):
        DEFAULT_PIPELINE.stage("nope")
    custom = Pipeline(
        (
            PipelineStage("demo", "Demo", 30),
            PipelineStage("won", "Won", 100, StageKind.WON),
            PipelineStage("lost", "Lost", 0, StageKind.LOST),
        ),
        lost_reasons=("price", "timing"),
    )
    custom.check_reason(StageKind.LOST, "price")
    with pytest.raises(InvalidInput):
        custom.check_reason(StageKind.LOST, "weather")
