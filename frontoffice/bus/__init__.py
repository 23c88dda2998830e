"""Event publication to live listeners (WebSocket clients, webhooks). In-process by default."""

from .memory import BusMessage, InProcessBus, Subscription

__all__ = ["BusMessage", "InProcessBus", "Subscription"]
