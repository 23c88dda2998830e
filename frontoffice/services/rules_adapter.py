"""Entry-point routing rules: compile the stored rule list and build the context a rule sees."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.rules import Rule, RuleSyntaxError, parse_rule

from .acd_schemas import ContactIn
from .channel_contract import InboundContact

__all__ = ["CompiledRules", "compile_rules", "rule_context"]


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """Ordered (rule, queue) pairs and a default; the first matching rule wins."""

    rules: tuple[tuple[Rule, int], ...]
    default_queue_id: int | None

    def matched_index(self, context: Mapping[str, object]) -> int | None:
        for index, (rule, _) in enumerate(self.rules):
            if rule.evaluate(context):
                return index
        return None

    def route(self, context: Mapping[str, object]) -> int | None:
        index = self.matched_index(context)
        return self.rules[index][1] if index is not None else self.default_queue_id


# Rules are parsed into immutable ASTs; every inbound contact routes through its entry point's rules,
# so a rule text is parsed once (a syntax error is raised again each time: exceptions are not cached).
_parse = functools.lru_cache(maxsize=2048)(parse_rule)


def compile_rules(stored: Sequence[Mapping[str, Any]], default_queue_id: int | None) -> CompiledRules:
    """Parse every rule; a syntax error is ``invalid-rule`` naming the rule and the column.

    Its details have one stable shape: ``rule_index`` (0-based), ``column`` (1-based), ``position``
    (0-based offset), ``rule`` (the text), ``reason``, ``field`` (``rules.<index>.rule``) and
    ``errors``, a one-item list as in a 422 (``loc``, ``message``, ``type``, plus ``rule_index`` and
    ``column``), so a form marks the rule's field as it does for any other invalid field.
    """
    compiled = []
    for index, item in enumerate(stored):
        text = str(item.get("rule", ""))
        try:
            rule = _parse(text)
        except RuleSyntaxError as exc:
            loc = ["body", "rules", str(index), "rule"]
            raise InvalidInput(
                "A routing rule has a syntax error",
                error_id="invalid-rule",
                rule_index=index,
                column=exc.column,
                position=exc.position,
                rule=text,
                reason=str(exc),
                field=f"rules.{index}.rule",
                errors=[
                    {
                        "loc": loc,
                        "message": exc.message,
                        "type": "invalid-rule",
                        "rule_index": index,
                        "column": exc.column,
                    }
                ],
            ) from None
        compiled.append((rule, int(item["queue_id"])))
    return CompiledRules(tuple(compiled), default_queue_id)


class RoutedEntry(Protocol):
    """What a rule sees of an entry point (an ORM row, or the contact path's Core row)."""

    @property
    def project_id(self) -> int | None: ...

    @property
    def address(self) -> str: ...


def rule_context(
    data: ContactIn | InboundContact, entry: RoutedEntry, customer: Mapping[str, Any]
) -> dict[str, Any]:
    """What a rule can test: the contact, its IVR choice, the customer card, the entry point."""
    attributes = dict(data.attributes)
    return {
        "channel": data.channel.value,
        "direction": "inbound",
        "language": attributes.get("language") or data.customer.language or customer.get("language"),
        "subject": data.subject,
        "priority": data.priority,
        "project": entry.project_id,
        "entry_point": entry.address,
        "ivr": {"choice": attributes.get("ivr_choice"), "digits": attributes.get("ivr_digits")},
        "customer": dict(customer),
        "from": data.customer.email or data.customer.phone or data.customer.chat_id,
        "to": entry.address,
        "attributes": attributes,
    }
