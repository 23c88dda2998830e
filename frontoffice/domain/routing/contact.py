"""The input of the engine: a contact as a channel hands it over."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact as the channel hands it to the engine.

    ``preferred_agent_id`` (or ``attributes["preferred_agent_id"]`` / ``attributes["last_agent_id"]``)
    names the agent who gets the contact first for the queue's ``sticky_s``. ``is_callback`` marks an
    outbound callback task rather than a customer on the line. Higher ``priority`` is served first.
    """

    contact_id: str
    channel: str
    queue_id: str
    priority: int = 0
    customer_id: str | None = None
    preferred_agent_id: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)
    is_callback: bool = False

    def __init__(
        self,
        contact_id: str,
        channel: str,
        queue_id: str,
        priority: int = 0,
        customer_id: str | None = None,
        preferred_agent_id: str | None = None,
        attributes: Mapping[str, object] | None = None,
        is_callback: bool = False,
    ) -> None:
        # Written by hand (the dataclass keeps a class's own __init__): one Contact is built per
        # arrival, and the generated frozen __init__, which goes through object.__setattr__ by name for
        # every field, cost twice as much as setting the slots through their descriptors. Same fields,
        # defaults (a new dict per contact for attributes) and immutability.
        _set_contact_id(self, contact_id)
        _set_channel(self, channel)
        _set_queue_id(self, queue_id)
        _set_priority(self, priority)
        _set_customer_id(self, customer_id)
        _set_preferred_agent_id(self, preferred_agent_id)
        _set_attributes(self, {} if attributes is None else attributes)
        _set_is_callback(self, is_callback)

    def preferred_agent(self) -> str | None:
        """The agent this contact should go to first, if any."""
        if self.preferred_agent_id:
            return self.preferred_agent_id
        for key in ("preferred_agent_id", "last_agent_id"):
            value = self.attributes.get(key)
            if isinstance(value, str) and value:
                return value
            # Agent ids are user ids: numbers in JSON everywhere else, so a number names the agent too.
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
        return None


def _slot_setter(name: str) -> Callable[[Contact, object], None]:
    """The setter of one of Contact's slot descriptors (it bypasses the frozen ``__setattr__``)."""
    setter: Callable[[Contact, object], None] = vars(Contact)[name].__set__
    return setter


_set_contact_id = _slot_setter("contact_id")
_set_channel = _slot_setter("channel")
_set_queue_id = _slot_setter("queue_id")
_set_priority = _slot_setter("priority")
_set_customer_id = _slot_setter("customer_id")
_set_preferred_agent_id = _slot_setter("preferred_agent_id")
_set_attributes = _slot_setter("attributes")
_set_is_callback = _slot_setter("is_callback")
