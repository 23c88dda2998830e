"""Sales pipelines: the stages a deal moves through, each with an order, a probability and a kind
(open, won, lost), and the reasons a deal is won or lost.

A project may define its own pipelines; a deal of no pipeline follows :data:`DEFAULT_PIPELINE` (the
stages of :class:`~frontoffice.domain.cases.DealStage`). A deal's ``stage`` is the key of one of its
pipeline's stages; a won or lost stage closes the deal. Pure: no storage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .cases import DealStage
from .exceptions import InvalidInput

__all__ = ["DEFAULT_PIPELINE", "MAX_STAGES", "Pipeline", "PipelineStage", "StageKind"]

#: A pipeline longer than this is a process map, not a sales pipeline (CRMs show ~5-10 columns).
MAX_STAGES: Final = 20
_KEY: Final = re.compile(r"^[a-z0-9_]{1,32}$")


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class PipelineStage:
    key: str
    name: str
    probability_pct: int
    kind: StageKind = StageKind.OPEN


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Stages in board order (their position is their index)."""

    stages: tuple[PipelineStage, ...]
    won_reasons: tuple[str, ...] = ()
    lost_reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys = [s.key for s in self.stages]
        problems = []
        if not 2 <= len(keys) <= MAX_STAGES:
            problems.append(f"a pipeline has 2 to {MAX_STAGES} stages")
        if len(set(keys)) != len(keys):
            problems.append("stage keys must differ")
        problems += [f"bad stage key {k!r}" for k in keys if not _KEY.match(k)]
        kinds = [s.kind for s in self.stages]
        if kinds.count(StageKind.WON) != 1 or kinds.count(StageKind.LOST) != 1:
            problems.append("a pipeline has exactly one won and one lost stage")
        if StageKind.OPEN not in kinds:
            problems.append("a pipeline has at least one open stage")
        for s in self.stages:
            if not 0 <= s.probability_pct <= 100:
                problems.append(f"probability of {s.key!r} must be 0 to 100")
            if (s.kind is StageKind.WON and s.probability_pct != 100) or (
                s.kind is StageKind.LOST and s.probability_pct != 0
            ):
                problems.append("a won stage is 100 %, a lost one 0 %")
        if problems:
            raise InvalidInput("Invalid pipeline", error_id="invalid-pipeline", problems=problems)

    def stage(self, key: str) -> PipelineStage:
        for s in self.stages:
            if s.key == key:
                return s
        raise InvalidInput(
            "No such stage in the deal's pipeline",
            error_id="no-such-stage",
            stage=key,
            stages=[s.key for s in self.stages],
        )

    @property
    def first_open(self) -> PipelineStage:
        return next(s for s in self.stages if s.kind is StageKind.OPEN)

    def check_reason(self, kind: StageKind, reason: str | None) -> None:
        """A won or lost deal's reason must be one of the pipeline's, when it lists any."""
        allowed: Sequence[str] = {StageKind.WON: self.won_reasons, StageKind.LOST: self.lost_reasons}.get(
            kind, ()
        )
        if reason is not None and allowed and reason not in allowed:
            raise InvalidInput(
                "Not one of the pipeline's reasons",
                error_id="invalid-close-reason",
                reason=reason,
                reasons=list(allowed),
            )


DEFAULT_PIPELINE: Final = Pipeline(
    tuple(
        PipelineStage(
            st.value,
            st.value.title(),
            st.probability_pct,
            StageKind.WON
            if st is DealStage.WON
            else StageKind.LOST
            if st is DealStage.LOST
            else StageKind.OPEN,
        )
        for st in DealStage
    )
)
