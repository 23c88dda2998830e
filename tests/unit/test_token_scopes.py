"""The one table from permissions to token scopes (domain/permissions.py)."""

from __future__ import annotations

import pytest

from frontoffice.domain.exceptions import Forbidden
from frontoffice.domain.model import Role
from frontoffice.domain.permissions import PERMISSION_SCOPES, PERMISSIONS, SCOPES, scope_allows
from frontoffice.services.context import Actor


def test_the_table_names_only_known_permissions_and_scopes() -> None:
    assert set(PERMISSION_SCOPES) <= PERMISSIONS
    for scopes in PERMISSION_SCOPES.values():
        assert scopes <= SCOPES


def test_the_admin_scope_grants_every_permission_and_no_scope_grants_nothing() -> None:
    for permission in PERMISSIONS:
        assert scope_allows(frozenset({"admin"}), permission)
        assert scope_allows(None, permission)  # a browser session is not limited by scopes
        assert not scope_allows(frozenset(), permission)


@pytest.mark.parametrize(
    ("scope", "granted", "refused"),
    [
        ("contacts:create", {"contacts.create"}, {"interactions.write", "customers.read", "tokens.write"}),
        (
            "crm:read",
            {"customers.read", "deals.read", "interactions.read"},
            {"customers.write", "tickets.read"},
        ),
        (
            "crm:write",
            {"customers.write", "contacts.create", "customers.read"},
            {"tickets.write", "users.read"},
        ),
        ("tickets:read", {"tickets.read"}, {"tickets.write", "customers.read"}),
        ("tickets:write", {"tickets.read", "tickets.write"}, {"deals.write"}),
        ("reports:read", {"stats.read", "metrics.read"}, {"audit.read", "customers.read"}),
        ("webhooks:manage", {"webhooks.manage"}, {"settings.write"}),
    ],
)
def test_each_scope_grants_its_permissions_and_no_others(
    scope: str, granted: set[str], refused: set[str]
) -> None:
    for permission in granted:
        assert scope_allows(frozenset({scope}), permission), permission
    for permission in refused:
        assert not scope_allows(frozenset({scope}), permission), permission


def test_administration_is_reserved_to_the_admin_scope() -> None:
    narrow = frozenset(SCOPES - {"admin"})
    for permission in ("users.write", "tokens.write", "routing.write", "settings.write", "audit.read"):
        assert not scope_allows(narrow, permission)


def test_an_actor_needs_both_the_role_and_the_scope() -> None:
    agent = Actor(user_id=1, role=Role.AGENT, scopes=frozenset({"admin"}))
    with pytest.raises(Forbidden) as refused:
        agent.require("users.read")
    assert refused.value.error_id == "forbidden"
    token = Actor(user_id=1, role=Role.ADMIN, scopes=frozenset({"crm:read"}))
    token.require("customers.read")
    with pytest.raises(Forbidden) as refused:
        token.require("customers.write")
    assert refused.value.error_id == "token-scope"
    assert refused.value.details["scopes_that_allow"] == ["admin", "crm:write"]
    assert token.can("customers.read") and not token.can("customers.write")
