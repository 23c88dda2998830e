"""The web chat channel: the widget's wire protocol (sans-IO, ``protocol.py``) and the channel's ways
out (``channel.py``: the outbox sender and the channel port). The socket itself is ``web/chat.py``."""

from .channel import ChatPort, ChatSender
from .protocol import ChatProtocolError, RateLimit, VisitorToken, VisitorTokens, parse_frame

__all__ = [
    "ChatPort",
    "ChatProtocolError",
    "ChatSender",
    "RateLimit",
    "VisitorToken",
    "VisitorTokens",
    "parse_frame",
]
