"""A web chat entry point's settings (``entry_points.config["chat"]``): where the widget may be
embedded, how it looks and greets, what the pre-chat form asks (docs/chat.md)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from .schemas import Input

__all__ = ["ChatSettings", "chat_settings"]

PrechatField = Literal["name", "email", "phone", "topic"]
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$")


def _default_fields() -> list[PrechatField]:
    return ["name", "email", "topic"]


def _default_required() -> list[PrechatField]:
    return ["name"]


class ChatSettings(Input):
    """How a chat widget behaves on the sites that embed it."""

    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="sites that may embed the widget (scheme://host[:port]); empty: only this server's own",
    )
    color: str = Field(default="#1f6feb", description="the widget's main colour (#rrggbb)")
    position: Literal["right", "left"] = "right"
    language: Literal["auto", "en", "ru"] = Field(default="auto", description="auto: the page's language")
    greeting: dict[str, str] = Field(
        default_factory=dict, description="per language: {'en': '...', 'ru': '...'}; max 500 characters each"
    )
    prechat_fields: list[PrechatField] = Field(default_factory=_default_fields, max_length=4)
    prechat_required: list[PrechatField] = Field(default_factory=_default_required, max_length=4)
    topics: list[str] = Field(default_factory=list, max_length=20, description="choices of the topic field")
    knowledge_base: bool = Field(default=True, description="suggest articles by the topic before the chat")
    offline: bool = Field(default=False, description="closed: the widget shows the offline form only")
    rating: bool = True
    transcript: bool = True

    @field_validator("color")
    @classmethod
    def _color(cls, value: str) -> str:
        if not _COLOR.match(value):
            raise ValueError("a colour is #rrggbb")
        return value.lower()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            value = value.strip().rstrip("/").lower()
            if not _ORIGIN.match(value):
                raise ValueError(f"not an origin (scheme://host[:port]): {value}")
            out.append(value)
        return sorted(set(out))

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, values: dict[str, str]) -> dict[str, str]:
        return {k[:8]: v[:500] for k, v in values.items()}


def chat_settings(config: dict[str, Any] | None) -> ChatSettings:
    """The chat settings in an entry point's ``config`` (defaults when none are set)."""
    raw = (config or {}).get("chat")
    return ChatSettings.model_validate(raw) if isinstance(raw, dict) else ChatSettings()
