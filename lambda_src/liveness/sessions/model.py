"""A session's data: its statuses, steps, frame records and the evaluation a frame brings (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from ..challenges import Baseline, Measured, ReasonCode, StepCode, Thresholds
from ..faces import FaceComparison
from ..light.decision import LightThresholds
from ..light.mode import OFF
from ..light.sequence import LightSequence
from ..limits import SessionLimits


class SessionStatus(str, Enum):
    IN_PROGRESS = "IN_PROGRESS"
    PASSED = "PASSED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class StepStatus(str, Enum):
    PENDING = "PENDING"
    PASSED = "PASSED"
    FAILED = "FAILED"


class FailureReason(str, Enum):
    SESSION_EXPIRED = "SESSION_EXPIRED"
    STEP_TIMEOUT = "STEP_TIMEOUT"
    ATTEMPT_LIMIT = "ATTEMPT_LIMIT"
    FACE_MISMATCH = "FACE_MISMATCH"
    # Too many frames met their step but could not be compared with the reference (FACE_NOT_COMPARABLE).
    SAME_PERSON_UNVERIFIED = "SAME_PERSON_UNVERIFIED"
    LIGHT_NOT_FOLLOWED = "LIGHT_NOT_FOLLOWED"  # light attempts used up, one of them not following the colours
    LIGHT_UNVERIFIED = "LIGHT_UNVERIFIED"  # light attempts used up, none of them judged


class SamePersonCheck(str, Enum):
    PENDING = "pending"  # no comparison yet
    PASSED = "passed"  # every comparison reached the similarity threshold
    FAILED = "failed"  # a comparison fell below it (the session failed)
    NOT_PERFORMED = "not_performed"  # the analyzer could not compare at least once: never a silent pass


class Verdict(str, Enum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Step:
    code: StepCode
    status: StepStatus = StepStatus.PENDING
    started_at: datetime | None = None  # when the step became current (step 0: at the first frame)
    completed_at: datetime | None = None
    attempts: int = 0
    frames_received: int = 0  # frame slots reserved while this step was current (its share of the budget)
    frame_id: str | None = None  # the accepted frame
    reason: str | None = None  # last rejection reason, or the failure reason


@dataclass(frozen=True)
class PendingFrame:
    """A reserved frame not settled yet: what its request will archive it under, so that if the request dies, the
    repair can log the frame with its archive key (the upload may already be in the archive)."""

    frame_id: str
    frame_key: str
    step_index: int


@dataclass(frozen=True)
class VerifiedFrame:
    """A frame of the current step shown to be the reference's person: directly (``hops`` 0) or through a chain
    of links (see chain.py). Its face crop is archived (write-once), so a later frame can be compared with it."""

    frame_id: str
    step_index: int
    yaw: float  # movement from the baseline, mirror-corrected
    pitch: float
    at: datetime  # when it arrived
    hops: int


@dataclass(frozen=True)
class AwaitingFrame:
    """A frame of the current step that met it beyond the comparison range with no verified frame to link to
    yet. Its face crop is archived, so a frame verified on the way back can still confirm it (see chain.py)."""

    frame_id: str
    step_index: int
    yaw: float  # movement from the baseline, mirror-corrected
    pitch: float
    at: datetime  # when it arrived


@dataclass(frozen=True)
class Confirmation:
    """A far frame awaiting a link, matched by a later frame verified on its way: the step's frame after all."""

    frame_id: str
    hops: int  # links from the far frame back to one compared with the reference directly
    gap_degrees: float
    similarity: float


@dataclass(frozen=True)
class Link:
    """What a frame beyond the comparison range was compared with: a verified frame, and the chain's length."""

    frame_id: str
    hops: int  # links from this frame back to one compared with the reference directly
    gap_degrees: float


@dataclass(frozen=True)
class LightChallenge:
    """The open light challenge: the drawn sequence (revealed to the client once), and its deadlines."""

    sequence: LightSequence
    revealed_at: datetime
    submit_by: datetime  # a batch after this is refused, and the attempt is used
    attempt: int  # 1-based


@dataclass(frozen=True)
class LightAttempt:
    """One judged (or expired) light challenge: single use, whatever its outcome."""

    challenge_id: str
    attempt: int
    outcome: str  # a LightOutcome, a gate's ReasonCode (no usable face), or EXPIRED
    accepted: bool  # the step passed (shadow: whatever the outcome)
    at: datetime


@dataclass(frozen=True)
class FrameRecord:
    """One analysed frame, as kept in the session's bounded frame log and the audit record."""

    frame_id: str
    received_at: datetime
    step_index: int
    step_code: StepCode
    verdict: Verdict
    reason: ReasonCode | None
    measured: dict[str, Any]
    similarity: float | None
    mirrored: bool
    frame_key: str  # where the uploaded frame is archived ("" if it never was: not judged, or a pre-screen refusal)
    sha256: str | None = None  # hex digest of the upload's bytes: REPEATED_FRAME; never the image itself
    link: Link | None = None  # compared with a verified frame of the step, not with the reference face
    confirms: Confirmation | None = None  # a far frame of the step this frame confirmed (it then passed the step)
    judged_by: str | None = None  # the analyzer whose measurement decided (the pre-screen's refusals: local-mesh)


@dataclass(frozen=True)
class Session:
    session_id: str
    owner: str
    steps: tuple[Step, ...]
    created_at: datetime
    expires_at: datetime
    mirrored: bool
    analyzer: str
    limits: SessionLimits
    status: SessionStatus = SessionStatus.IN_PROGRESS
    current_step: int = 0
    version: int = 1
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    frames_received: int = 0
    frames: tuple[FrameRecord, ...] = field(default_factory=tuple)
    reference_frame_id: str | None = None
    comparisons: int = 0
    same_person_check: SamePersonCheck = SamePersonCheck.PENDING
    failure_reason: FailureReason | None = None
    # Set (on a closed session only) once the audit record is known to exist, so reads stop re-writing it.
    audit_written: bool = False
    # The thresholds in force when the session was created: every frame is judged with them and the audit
    # record carries them. None only for items stored before they were kept (the caller's settings then apply).
    thresholds: Thresholds | None = None
    # The person's own straight pose, from the accepted neutral frame; later steps are measured from it.
    baseline: Baseline | None = None
    # The same pose as the pre-screen's embedded analyzer measured it (the Rekognition path with PRESCREEN=on).
    screen_baseline: Baseline | None = None
    # Reserved frames whose verdict is not logged yet (at most the frames in flight); see PendingFrame.
    pending: tuple[PendingFrame, ...] = ()
    # The current step's verified frames (the identity chain; at most MAX_VERIFIED_KEPT, the latest).
    verified: tuple[VerifiedFrame, ...] = ()
    # The current step's far frames with no link yet, the latest few (see AwaitingFrame).
    awaiting: tuple[AwaitingFrame, ...] = ()
    # The light step (issue 19): the mode and thresholds at creation, the open challenge, the attempts so far.
    light_mode: str = OFF
    light_thresholds: LightThresholds | None = None
    light_challenge: LightChallenge | None = None
    light_attempts: tuple[LightAttempt, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status is SessionStatus.IN_PROGRESS

    @property
    def settled(self) -> bool:
        """Every reserved frame has its verdict logged (none is still being analysed)."""
        return len(self.frames) >= self.frames_received

    @property
    def step(self) -> Step:
        return self.steps[self.current_step]


@dataclass(frozen=True)
class FrameEvaluation:
    """What the rules found in one frame against the step current when it arrived (computed by the service).

    ``comparison`` is set only when the frame met the step and the session already has a reference face;
    ``comparable`` says whether the frame's pose is close enough to the baseline for a low similarity to mean
    another person (``challenges.comparison_reliable``).
    """

    frame_id: str
    step_index: int
    reason: ReasonCode | None
    measured: Measured
    mirrored: bool
    frame_key: str
    comparison: FaceComparison | None = None
    sha256: str | None = None
    comparable: bool = True
    movement: Measured | None = None  # ``measured`` relative to the baseline (None before the baseline is set)
    link: Link | None = None  # compared with this verified frame instead of the reference face
    # The analyzer's comparison is not robust to pose: a frame verified now joins the identity chain.
    chained: bool = False
    # A head movement on its way (not meeting the step yet), compared only to give later frames a link.
    transit: bool = False
    # A far frame that met the step with no link: its crop is archived, to be confirmed by a later frame.
    awaiting: bool = False
    # A frame verified on its way that also matched an awaiting far frame of the step (compared with its crop).
    confirmation: Confirmation | None = None
    judged_by: str | None = None  # the analyzer whose measurement decided
    screen_measured: Measured | None = None  # the pre-screen's measurement (from the camera), when it ran
    light: dict[str, Any] | None = None  # a light batch's measurement and outcome (the frame log's measured.light)
