"""The API's shapes of campaigns, their contacts, dial attempts and do-not-call lists."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frontoffice.domain.dialer import DEFAULT_ABANDON_CAP, AmdParameters, DialerError

from . import campaign_rules as rules

__all__ = [
    "AmdMachineAction",
    "AmdParametersIn",
    "AttemptOut",
    "CallbackIn",
    "CampaignIn",
    "CampaignMode",
    "CampaignOut",
    "CampaignPatch",
    "CampaignProgressOut",
    "CampaignState",
    "ContactOut",
    "ContactState",
    "DeskCampaignOut",
    "DispositionIn",
    "DncIn",
    "DncOut",
    "PreviewOut",
    "RetryRuleIn",
    "SegmentIn",
    "SkipIn",
    "WindowIn",
]

_TIME = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"
_AMD = AmdParameters()
# The detector holds the answered call (and the analysed audio is kept): 10 s is already twice
# Asterisk's default analysis time and longer than any greeting worth waiting for.
_AMD_MAX_MS = 10_000


class CampaignMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"
    NOTIFICATION = "notification"


class CampaignState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class ContactState(StrEnum):
    PENDING = "pending"  # waits for its next attempt (next_attempt_at; none: as soon as possible)
    DIALLING = "dialling"  # an attempt is in flight (claimed before the INVITE left)
    PREVIEW = "preview"  # on an agent's desk (preview mode)
    DONE = "done"  # reached (answered and handled, or confirmed)
    FAILED = "failed"  # attempts used up
    SKIPPED = "skipped"  # an agent skipped it in preview, with a reason
    DNC = "dnc"  # on a do-not-call list (or opted out) when its turn came: never dialled


class WindowIn(BaseModel):
    """Hours a contact may be called, in the contact's own time zone: ``days`` 0 = Monday."""

    days: list[int] = Field(default=[0, 1, 2, 3, 4, 5, 6], min_length=1, max_length=7)
    start: str = Field(default="09:00", pattern=_TIME)
    end: str = Field(default="21:00", pattern=_TIME)

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(days))

    @model_validator(mode="after")
    def _order(self) -> WindowIn:
        try:
            rules.windows_of([self.model_dump()])
        except DialerError as exc:
            raise ValueError(str(exc)) from None
        return self


class RetryRuleIn(BaseModel):
    """After this outcome, try again ``after_s`` later, as long as the contact had fewer than
    ``max_attempts`` attempts in all (1: never again). An abandoned number waits 72 hours at least."""

    after_s: int = Field(default=3600, ge=0, le=30 * 86400)
    max_attempts: int = Field(default=3, ge=1, le=50)


class AmdMachineAction(StrEnum):
    HANGUP = "hangup"  # the outcome is voicemail; the retry rule for voicemail decides what next
    MESSAGE = "message"  # leave the campaign's recorded message once the greeting ends, then hang up


class AmdParametersIn(BaseModel):
    """Asterisk ``AMD()``'s parameters in milliseconds (``silence_threshold``: average absolute
    amplitude of a 20 ms frame, 0-32767); the defaults are Asterisk's
    (:class:`~frontoffice.domain.dialer.AmdParameters`)."""

    model_config = ConfigDict(extra="forbid")

    initial_silence: int = Field(default=_AMD.initial_silence, ge=100, le=_AMD_MAX_MS)
    greeting: int = Field(default=_AMD.greeting, ge=100, le=_AMD_MAX_MS)
    after_greeting_silence: int = Field(default=_AMD.after_greeting_silence, ge=100, le=_AMD_MAX_MS)
    total_analysis_time: int = Field(default=_AMD.total_analysis_time, ge=1000, le=_AMD_MAX_MS)
    min_word_length: int = Field(default=_AMD.min_word_length, ge=20, le=5000)
    between_words_silence: int = Field(default=_AMD.between_words_silence, ge=20, le=5000)
    maximum_number_of_words: int = Field(default=_AMD.maximum_number_of_words, ge=1, le=20)
    silence_threshold: int = Field(default=_AMD.silence_threshold, ge=1, le=32767)
    maximum_word_length: int = Field(default=_AMD.maximum_word_length, ge=100, le=_AMD_MAX_MS)

    @model_validator(mode="after")
    def _within_the_analysis(self) -> AmdParametersIn:
        # A limit past the analysis time can never be reached: the call would always be NOTSURE there.
        for name in ("initial_silence", "after_greeting_silence", "greeting"):
            if getattr(self, name) >= self.total_analysis_time:
                raise ValueError(
                    f"{name} must be shorter than total_analysis_time ({self.total_analysis_time} ms)"
                )
        return self

    def domain(self) -> AmdParameters:
        return AmdParameters(**self.model_dump())


class CampaignSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    abandon_cap: float = Field(
        default=DEFAULT_ABANDON_CAP,
        ge=0.0,
        le=DEFAULT_ABANDON_CAP,
        description="of live answered calls (Ofcom, FTC: 3 % at most)",
    )
    max_lines: int = Field(default=30, ge=1, le=2000, description="calls of this campaign at once")
    ring_timeout_s: float = Field(default=25.0, ge=5.0, le=120.0)
    agent_wait_s: float = Field(default=2.0, ge=0.5, le=10.0, description="answered → abandoned after")
    amd: bool = Field(
        default=False,
        description="answering-machine detection after the answer (docs/outbound.md): off by default, "
        "since every machine it mistakes a person for is a live customer hung up on",
    )
    amd_machine_action: AmdMachineAction = Field(
        default=AmdMachineAction.HANGUP,
        description="a detected machine: hang up, or leave the campaign's message after its greeting",
    )
    amd_parameters: AmdParametersIn = Field(default_factory=lambda: AmdParametersIn())


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    mode: CampaignMode = CampaignMode.PROGRESSIVE
    project_id: int | None = None
    queue_id: int | None = None
    caller_id: str = Field(default="", max_length=32, pattern=r"^\+?[0-9]*$")
    trunk: str | None = Field(default=None, max_length=64)
    priority: int = Field(default=0, ge=-100, le=100)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    windows: list[WindowIn] = Field(default_factory=lambda: [WindowIn()], min_length=1, max_length=14)
    retry: dict[str, RetryRuleIn] = Field(default_factory=dict)
    dispositions: list[str] = Field(default_factory=list, max_length=50)
    message_text: str = Field(default="", max_length=1000)
    message_language: str = Field(default="en", pattern=r"^(en|ru)$")
    settings: CampaignSettings = Field(default_factory=CampaignSettings)

    @field_validator("retry")
    @classmethod
    def _outcomes(cls, retry: dict[str, RetryRuleIn]) -> dict[str, RetryRuleIn]:
        return _checked_retry(retry)


class CampaignPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    mode: CampaignMode | None = None
    queue_id: int | None = None
    caller_id: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9]*$")
    trunk: str | None = None
    priority: int | None = Field(default=None, ge=-100, le=100)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    windows: list[WindowIn] | None = Field(default=None, min_length=1, max_length=14)
    retry: dict[str, RetryRuleIn] | None = None
    dispositions: list[str] | None = None
    message_text: str | None = Field(default=None, max_length=1000)
    message_language: str | None = Field(default=None, pattern=r"^(en|ru)$")
    settings: CampaignSettings | None = None

    @field_validator("retry")
    @classmethod
    def _outcomes(cls, retry: dict[str, RetryRuleIn] | None) -> dict[str, RetryRuleIn] | None:
        return None if retry is None else _checked_retry(retry)


def _checked_retry(retry: dict[str, RetryRuleIn]) -> dict[str, RetryRuleIn]:
    unknown = set(retry) - set(rules.RETRY_OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}; known: {', '.join(rules.RETRY_OUTCOMES)}")
    try:
        rules.check_retry({k: v.model_dump() for k, v in retry.items()})
    except DialerError as exc:
        raise ValueError(str(exc)) from None
    return retry


class CampaignOut(BaseModel):
    id: int
    name: str
    mode: str
    state: str
    project_id: int | None
    queue_id: int | None
    caller_id: str
    trunk: str | None
    priority: int
    starts_at: datetime | None
    ends_at: datetime | None
    windows: list[WindowIn]
    retry: dict[str, RetryRuleIn]
    dispositions: list[str]
    message_text: str
    message_language: str
    message_audio: bool = Field(description="a WAV was uploaded or rendered for the message")
    settings: CampaignSettings
    contacts: dict[str, int] = Field(default_factory=dict, description="contacts per state")
    state_changed_at: datetime


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    phone: str
    name: str
    customer_id: int | None
    time_zone: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_outcome: str | None
    disposition: str | None
    callback_at: datetime | None
    callback_agent_id: int | None
    agent_id: int | None
    confirmation: str | None
    skip_reason: str | None
    data: dict[str, Any]


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    attempt: int
    phone: str
    state: str
    outcome: str | None
    sip_status: int | None
    dnc_result: str
    interaction_id: int | None
    agent_id: int | None
    claimed_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    amd_decision: str | None = Field(
        default=None, description="answering-machine detection: HUMAN, MACHINE, NOTSURE"
    )
    amd_cause: str | None = Field(
        default=None, description="why: initialsilence, longgreeting, maxwords, ..."
    )
    amd_ms: int | None = Field(default=None, description="audio analysed before the decision (ms)")
    amd_audio: str | None = Field(
        default=None, description="the analysed audio's WAV: GET .../attempts/{id}/amd-audio"
    )
    call_id: str | None = Field(default=None, description="the INVITE's Call-ID (in the carrier's records)")
    node: str | None = Field(default=None, description="the node that placed the call (several voice nodes)")


class SegmentIn(BaseModel):
    """CRM customers to add: all the tags given, custom fields equal to the values given, of a
    project (customers created in it, or with a contact there)."""

    tags: list[str] = Field(default_factory=list, max_length=20)
    custom: dict[str, str] = Field(default_factory=dict)
    project_id: int | None = None


class DispositionIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    callback_at: datetime | None = None
    callback_to: str = Field(default="me", pattern=r"^(me|team)$")


class CallbackIn(BaseModel):
    at: datetime
    to: str = Field(default="me", pattern=r"^(me|team)$", description="me: the agent; team: the queue")


class SkipIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class PreviewOut(BaseModel):
    """The contact an agent previews: the list entry and the customer's card."""

    contact: ContactOut
    campaign: str
    campaign_id: int
    dispositions: list[str]
    customer: dict[str, Any] | None
    attempts: list[AttemptOut]
    interaction_id: int | None = Field(default=None, description="the call (for the current contact)")


class DeskCampaignOut(BaseModel):
    id: int
    name: str
    mode: str
    state: str
    dispositions: list[str]


class DncIn(BaseModel):
    phone: str = Field(min_length=3, max_length=40)
    project_id: int | None = Field(default=None, description="None: the global list")
    reason: str = Field(default="", max_length=200)


class DncOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    phone: str
    project_id: int | None
    reason: str
    source: str
    added_by: int | None
    added_at: datetime


class AgentShare(BaseModel):
    agent_id: int
    name: str
    calls: int
    talk_s: float
    share: float = Field(description="talk time on this campaign's calls / the period")


class CampaignProgressOut(BaseModel):
    """What a supervisor watches: progress through the list and today's (or the last hour's) rates."""

    campaign_id: int
    state: str
    mode: str
    effective_mode: str = Field(description="predictive drops to progressive while over the abandon cap")
    contacts: dict[str, int]
    total: int
    done_share: float
    in_flight: int
    attempts_last_hour: int
    contacts_per_hour: float
    answered: int = Field(description="live answers (a machine recognised by detection is not one)")
    voicemail: int = Field(default=0, description="answering machines recognised by detection")
    answer_rate: float
    abandoned: int
    abandon_rate: float
    abandon_cap: float
    confirmations: dict[str, int]
    agents: list[AgentShare]
