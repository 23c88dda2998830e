"""The Telegram channel: a bot as an entry point (``bot_api``: the Bot API client with 429 handling;
``bot``: long polling with a persisted offset, the inbound adapter and the outbox sender)."""

from .bot import TelegramBot, TelegramChannel, TelegramSender, bot_api_for
from .bot_api import DEFAULT_BASE_URL, BotApi, TelegramError

__all__ = [
    "DEFAULT_BASE_URL",
    "BotApi",
    "TelegramBot",
    "TelegramChannel",
    "TelegramError",
    "TelegramSender",
    "bot_api_for",
]
