"""Which role may do what. Every endpoint names one of these permissions."""

from __future__ import annotations

from .model import Role

__all__ = [
    "PERMISSIONS",
    "PERMISSION_SCOPES",
    "ROLE_PERMISSIONS",
    "SCOPES",
    "role_allows",
    "scope_allows",
]

PERMISSIONS: frozenset[str] = frozenset(
    {
        "customers.read",
        "customers.write",
        "customers.merge",
        "customers.delete",
        "customers.import",
        "customers.export",
        "companies.read",
        "companies.write",
        "interactions.read",
        "interactions.write",
        "tickets.read",
        "tickets.write",
        "deals.read",
        "deals.write",
        "projects.read",
        "projects.write",
        "users.read",
        "users.write",
        "tokens.write",
        "audit.read",
        "metrics.read",
        "routing.read",
        "routing.write",
        "agents.supervise",
        "stats.read",
        "settings.write",
        # Outgoing webhooks and integration lookups: they send the center's data to other systems.
        "webhooks.manage",
        "self.read",
        # Taking in a new inbound contact (POST /interactions): what a website's form or a shop
        # needs, apart from the rest of interactions.write (accepting, ending, abandoning contacts).
        "contacts.create",
    }
)

_AGENT = frozenset(
    {
        "customers.read",
        "customers.write",
        "companies.read",
        "companies.write",
        "interactions.read",
        "interactions.write",
        "tickets.read",
        "tickets.write",
        "deals.read",
        "deals.write",
        "projects.read",
        "self.read",
        "contacts.create",
    }
)
_SUPERVISOR = _AGENT | {
    "customers.merge",
    # Deleting a card erases what identifies a person (identities, notes); their contacts, tickets and
    # deals stay, without a customer. An agent edits cards but does not erase them.
    "customers.delete",
    "customers.import",
    "customers.export",
    "users.read",
    "audit.read",
    "routing.read",
    "agents.supervise",
    "stats.read",
}

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.AGENT: _AGENT,
    Role.SUPERVISOR: frozenset(_SUPERVISOR),
    Role.ADMIN: PERMISSIONS,
}


# API token scopes. A token acts with its owner's role (and project limit) *and* only within its
# scopes: a permission is allowed when the role holds it and one of the token's scopes grants it.
# ``admin`` grants every permission (the owner's full rights: tokens made before scopes existed).
SCOPES: frozenset[str] = frozenset(
    {
        "contacts:create",
        "crm:read",
        "crm:write",
        "tickets:read",
        "tickets:write",
        "reports:read",
        "webhooks:manage",
        "admin",
    }
)

# The one table from permissions to the scopes that grant them (besides ``admin``). A permission
# missing here is granted by ``admin`` only (users, tokens, routing, settings, the audit log).
PERMISSION_SCOPES: dict[str, frozenset[str]] = {
    "contacts.create": frozenset({"contacts:create", "crm:write"}),
    "customers.read": frozenset({"crm:read", "crm:write"}),
    "companies.read": frozenset({"crm:read", "crm:write"}),
    "deals.read": frozenset({"crm:read", "crm:write"}),
    "interactions.read": frozenset({"crm:read", "crm:write"}),
    "projects.read": frozenset({"crm:read", "crm:write", "tickets:read", "tickets:write"}),
    "customers.export": frozenset({"crm:read", "crm:write"}),
    "customers.write": frozenset({"crm:write"}),
    "customers.merge": frozenset({"crm:write"}),
    "customers.delete": frozenset({"crm:write"}),
    "customers.import": frozenset({"crm:write"}),
    "companies.write": frozenset({"crm:write"}),
    "deals.write": frozenset({"crm:write"}),
    "interactions.write": frozenset({"crm:write"}),
    "tickets.read": frozenset({"tickets:read", "tickets:write"}),
    "tickets.write": frozenset({"tickets:write"}),
    "stats.read": frozenset({"reports:read"}),
    "metrics.read": frozenset({"reports:read"}),
    "webhooks.manage": frozenset({"webhooks:manage"}),
    # Who am I (GET /me): any token may ask. Creating tokens needs ``admin`` (services/auth.py).
    "self.read": SCOPES,
}


def role_allows(role: Role, permission: str) -> bool:
    """True when ``role`` holds ``permission``; unknown permissions are a programming error."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in ROLE_PERMISSIONS[role]


def scope_allows(scopes: frozenset[str] | None, permission: str) -> bool:
    """True when a token's ``scopes`` grant ``permission`` (``None``: not a scoped caller, a
    browser session or the system)."""
    if scopes is None or "admin" in scopes:
        return True
    return not scopes.isdisjoint(PERMISSION_SCOPES.get(permission, ()))
