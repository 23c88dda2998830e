"""Canned answers: templates with ``{{variable}}`` placeholders filled from the ticket at hand.

Pure: the caller gathers the values. A placeholder names one of :data:`VARIABLES`; an unknown one or
one without a value is left as written (the agent sees it in the reply box and fixes it), and listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["VARIABLES", "render"]

#: The variables an answer may use, and what fills them.
VARIABLES: Final = {
    "customer.name": "the customer's display name",
    "customer.first_name": "the customer's first name",
    "ticket.number": "the ticket's number",
    "ticket.subject": "the ticket's subject",
    "agent.name": "the name of the agent answering",
}
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")


def render(template: str, values: Mapping[str, str]) -> tuple[str, list[str]]:
    """The template with its placeholders filled, and the placeholders left unfilled (in order)."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name) if name in VARIABLES else None
        if value is None:
            missing.append(name)
            return match.group(0)
        return value

    return _PLACEHOLDER.sub(fill, template), missing
