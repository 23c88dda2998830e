"""The SQL conditions that limit CRM and history queries to a user's projects (services/scope.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.scope import (
    company_visible,
    customer_visible,
    deal_visible,
    event_visible,
    interaction_visible,
    ticket_visible,
)
from frontoffice.store.tables import Interaction

CONDITIONS = (
    company_visible,
    customer_visible,
    deal_visible,
    event_visible,
    interaction_visible,
    ticket_visible,
)


def test_unrestricted_users_and_administrators_get_no_condition_so_their_queries_do_not_change() -> None:
    for actor in (Actor.system(), Actor(user_id=3, role=Role.SUPERVISOR), Actor(user_id=4, role=Role.AGENT)):
        assert all(condition(actor) is None for condition in CONDITIONS)


def test_a_limited_user_sees_their_projects_contacts_their_own_and_their_customers_unassigned_ones() -> None:
    actor = Actor(user_id=5, role=Role.AGENT, project_ids=frozenset({2, 1}))
    assert all(condition(actor) is not None for condition in CONDITIONS)
    condition = interaction_visible(actor, customer_known_visible=True)
    assert condition is not None
    sql = str(
        select(Interaction.id)
        .where(condition)
        .compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    )
    assert "interactions.project_id IN (1, 2)" in sql
    assert "interactions.agent_id = 5" in sql
    assert "interactions.project_id IS NULL" in sql
    assert "EXISTS" not in sql  # within one visible customer, no per-row customer check


def test_a_limited_actor_without_a_user_has_no_own_work() -> None:
    actor = Actor(user_id=None, role=Role.SUPERVISOR, project_ids=frozenset({1}))
    condition = interaction_visible(actor, customer_known_visible=True)
    assert condition is not None
    sql = str(select(Interaction.id).where(condition).compile(compile_kwargs={"literal_binds": True}))
    assert "agent_id" not in sql
