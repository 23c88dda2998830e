"""Which role may do what. Every endpoint names one of these permissions."""

from __future__ import annotations

from .model import Role

__all__ = ["PERMISSIONS", "ROLE_PERMISSIONS", "role_allows"]

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


def role_allows(role: Role, permission: str) -> bool:
    """True when ``role`` holds ``permission``; unknown permissions are a programming error."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in ROLE_PERMISSIONS[role]
