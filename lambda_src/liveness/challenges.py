"""The step pool, how steps are drawn, and the rules that decide whether one frame meets one step.
Pure: a FaceDetail (Rekognition's shape and signs) goes in, a reason code or None comes out.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from enum import Enum
from typing import Any

from .faces import FaceDetail


class StepCode(str, Enum):
    LOOK_STRAIGHT = "LOOK_STRAIGHT"  # the neutral start: always first, never drawn
    FOLLOW_LIGHT = "FOLLOW_LIGHT"  # the light challenge, right after the neutral start (unless LIGHT_CHALLENGE=off)
    TURN_LEFT = "TURN_LEFT"
    TURN_RIGHT = "TURN_RIGHT"
    LOOK_UP = "LOOK_UP"
    LOOK_DOWN = "LOOK_DOWN"
    SMILE = "SMILE"
    OPEN_MOUTH = "OPEN_MOUTH"
    CLOSE_EYES = "CLOSE_EYES"


INSTRUCTIONS: dict[StepCode, str] = {
    StepCode.LOOK_STRAIGHT: "Look straight at the camera.",
    StepCode.FOLLOW_LIGHT: "Hold still and keep your face in the oval while the screen changes colour.",
    StepCode.TURN_LEFT: "Slowly turn your head to your left.",
    StepCode.TURN_RIGHT: "Slowly turn your head to your right.",
    StepCode.LOOK_UP: "Tilt your chin up and look above the camera.",
    StepCode.LOOK_DOWN: "Tilt your chin down and look below the camera.",
    StepCode.SMILE: "Look at the camera and smile.",
    StepCode.OPEN_MOUTH: "Look at the camera and open your mouth.",
    StepCode.CLOSE_EYES: "Close your eyes and keep them closed until the page signals (a tone) that the step is done.",
}

HEAD_MOVEMENTS = (StepCode.TURN_LEFT, StepCode.TURN_RIGHT, StepCode.LOOK_UP, StepCode.LOOK_DOWN)
EXPRESSIONS = (StepCode.SMILE, StepCode.OPEN_MOUTH, StepCode.CLOSE_EYES)
# The steps judged one frame at a time (every step but the light step, which is judged on a batch).
FRAME_STEPS = (StepCode.LOOK_STRAIGHT, *HEAD_MOVEMENTS, *EXPRESSIONS)
MIN_STEPS = 2
MAX_STEPS = 5


class ReasonCode(str, Enum):
    """Why a frame was rejected; clients map these to coaching messages."""

    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    FACE_TOO_SMALL = "FACE_TOO_SMALL"
    LOW_QUALITY = "LOW_QUALITY"
    FACE_OCCLUDED = "FACE_OCCLUDED"
    SUNGLASSES = "SUNGLASSES"
    POSE_NOT_MET = "POSE_NOT_MET"
    EXPRESSION_NOT_MET = "EXPRESSION_NOT_MET"
    NOT_LOOKING_STRAIGHT = "NOT_LOOKING_STRAIGHT"  # the neutral start needs a neutral face toward the camera
    FLAT_FACE = "FLAT_FACE"  # a pitch that foreshortened the face like a tilted photo, not like a head
    PREVIOUS_STEP_HELD = "PREVIOUS_STEP_HELD"  # the frame also meets an earlier step: no visible change
    REPEATED_FRAME = "REPEATED_FRAME"  # the very bytes of a frame this session already judged
    STEP_ALREADY_COMPLETED = "STEP_ALREADY_COMPLETED"  # another frame completed the step this one answered
    # The step was met but the face did not match the reference at an angle where the comparison cannot tell
    # (beyond COMPARE_MAX_DEGREES from the baseline): not a mismatch, and not accepted either.
    FACE_NOT_COMPARABLE = "FACE_NOT_COMPARABLE"
    FACE_MISMATCH = "FACE_MISMATCH"
    # Frame-log only (the request itself answered an error): the session closed while the frame was analysed
    # (409 SESSION_CLOSED), or the frame could not be judged (a dependency failed: the request answered 503).
    SESSION_CLOSED = "SESSION_CLOSED"
    NOT_JUDGED = "NOT_JUDGED"
    # The light step (a batch of frames under the drawn colours, judged by light/decision.py).
    LIGHT_NOT_FOLLOWED = "LIGHT_NOT_FOLLOWED"
    LIGHT_TOO_BRIGHT = "LIGHT_TOO_BRIGHT"
    LIGHT_FACE_MOVED = "LIGHT_FACE_MOVED"


COACHING: dict[ReasonCode, str] = {
    ReasonCode.NO_FACE: "No face found: centre your face in the frame.",
    ReasonCode.MULTIPLE_FACES: "More than one face: make sure you are alone in view.",
    ReasonCode.LOW_CONFIDENCE: "Your face is not clearly visible: face the camera in good light.",
    ReasonCode.FACE_TOO_SMALL: "Move closer to the camera.",
    ReasonCode.LOW_QUALITY: "The image is too dark or blurry: add light and hold still.",
    ReasonCode.FACE_OCCLUDED: "Something covers your face: remove masks, hands or hair.",
    ReasonCode.SUNGLASSES: "Please take off your sunglasses.",
    ReasonCode.POSE_NOT_MET: "Follow the instruction with your head a little further.",
    ReasonCode.EXPRESSION_NOT_MET: "Look straight at the camera and follow the instruction more clearly.",
    ReasonCode.NOT_LOOKING_STRAIGHT: "Look straight at the camera with your head level and a neutral face.",
    ReasonCode.FLAT_FACE: "Move your head itself, slowly, with your whole face in view.",
    ReasonCode.PREVIOUS_STEP_HELD: "Release the earlier movements, then do only what this step asks.",
    ReasonCode.REPEATED_FRAME: "This exact image was already sent: send a new camera frame.",
    ReasonCode.STEP_ALREADY_COMPLETED: "That step was already completed; follow the current instruction.",
    ReasonCode.FACE_NOT_COMPARABLE: "Good, now do the same movement a little less far.",
    ReasonCode.FACE_MISMATCH: "The face does not match the one seen earlier in this session.",
    ReasonCode.SESSION_CLOSED: "The session closed while this frame was being checked.",
    ReasonCode.NOT_JUDGED: "This frame could not be checked; send another.",
    ReasonCode.LIGHT_NOT_FOLLOWED: "The light on the face did not follow the screen's colours; start the light check again.",
    ReasonCode.LIGHT_TOO_BRIGHT: "The room is too bright to see the screen's light: move to a dimmer place, face the "
    "screen and turn its brightness up.",
    ReasonCode.LIGHT_FACE_MOVED: "Hold still with your whole face in the oval while the colours change.",
}
# The reasons a light batch can be rejected with by the light decision itself.
LIGHT_REASONS = (ReasonCode.LIGHT_NOT_FOLLOWED, ReasonCode.LIGHT_TOO_BRIGHT, ReasonCode.LIGHT_FACE_MOVED)


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use; each has an environment variable (see settings.py and docs/sessions.md)."""

    min_face_confidence: float = 90.0  # DetectFaces Confidence that this is a face (not how frontal it is)
    min_face_width: float = 0.15  # bounding-box width as a share of the frame width
    min_brightness: float = 25.0  # Quality.Brightness, 0-100
    min_sharpness: float = 15.0  # Quality.Sharpness, 0-100; webcams are often soft, so this is lenient
    occlusion_confidence: float = 80.0  # FaceOccluded=true at this confidence rejects
    sunglasses_confidence: float = 80.0  # Sunglasses=true at this confidence rejects
    turn_yaw: float = 25.0  # degrees of yaw for TURN_LEFT / TURN_RIGHT
    tilt_pitch: float = 15.0  # degrees of pitch for LOOK_UP / LOOK_DOWN
    off_axis_max: float = 20.0  # the other axes (including roll) must stay within this while turning or tilting
    expression_confidence: float = 80.0  # SMILE / OPEN_MOUTH / CLOSE_EYES confidence
    # Expressions count only while |yaw| and |pitch| are below this. Kept below turn_yaw and tilt_pitch (settings
    # enforce it), so no single image can count as a head movement and an expression: one photo of a smiling,
    # raised face must not pass LOOK_UP and then SMILE. It also stops a head tilted back from reading as closed eyes.
    expression_max_angle: float = 12.0
    min_similarity: float = 90.0  # CompareFaces similarity for the same person
    # The neutral start: |yaw| and |pitch| from the camera at most this (roll within off_axis_max). Generous, as
    # a camera below eye level tilts a straight look by 10-15 degrees; movements are then measured from it.
    neutral_max_angle: float = 20.0
    # A similarity below min_similarity fails the session (FACE_MISMATCH) only for a frame within this many
    # degrees of yaw and pitch from the baseline, where the comparison is reliable (make bench-same-person: the
    # same person >= 97 within 25 degrees); beyond, the embedded model's same-person scores fall (73 turned
    # 30-38 degrees, 3-5 looking 30-45 degrees up), so such a frame is only not accepted (FACE_NOT_COMPARABLE).
    compare_max_angle: float = 25.0
    # A head tilting up or down keeps most of its height in the image (its face is not flat), while a photo tilted
    # to fake it loses height like a plane: the face's height over width, relative to the neutral start's, must
    # stay at least 1 - flat_face_slope x |pitch movement| - FLAT_FACE_ALLOWANCE. Measured on the developers'
    # webcam clip: a real head kept 0.91-0.93 of it at 24-27 degrees, 0.84-0.89 at 33, 0.845 at 43; a photo of it
    # tilted 45-60 degrees read 15-30 degrees of pitch and kept 0.74-0.81 (see tests). 0 switches the check off.
    flat_face_slope: float = 0.005
    # After this many FACE_NOT_COMPARABLE frames the session fails (SAME_PERSON_UNVERIFIED): a person swapped in
    # beyond the comparison range must not get a step's whole frame budget to score high once. 12 gives a person
    # who holds a far pose for two seconds, before any frame on the way could be verified, a second try whose way
    # out or back confirms it (make test: e2e).
    max_not_comparable: float = 12.0
    # The identity chain (embedded analyzer only; docs/sessions.md "Identity through the movement"): a frame beyond
    # compare_max_angle counts as the same person when it matches a verified frame of the same step at most this
    # many degrees of yaw and pitch away (the gap the reference comparison is trusted over). 0: no chain.
    link_max_angle: float = 25.0
    link_max_seconds: float = 2.0  # ... that arrived at most this many seconds before it
    max_link_hops: float = 3.0  # ... and lies at most this many links from a frame compared with the reference

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Thresholds:
        """The stored form (``to_json``). A field added after the stored copy was written takes the value that
        keeps that session's rules as they were (``LEGACY``): an old session had no comparison range (every low
        score was a mismatch), no flat-face check and no limit on incomparable frames."""
        return cls(**{**LEGACY, **{item.name: float(raw[item.name]) for item in fields(cls) if item.name in raw}})


# Values for fields a stored session predates (see Thresholds.from_json).
LEGACY: dict[str, float] = {
    "compare_max_angle": 180.0,
    "flat_face_slope": 0.0,
    "max_not_comparable": 1000.0,
    "link_max_angle": 0.0,
}
# Frame-to-frame noise of the face's aspect on one still face (about +/-1.5% on the webcam clip), allowed on top.
FLAT_FACE_ALLOWANCE = 0.03


def threshold_problems(t: Thresholds) -> list[str]:
    """Why a threshold set is unsafe; empty when it is fine. Settings refuse a set with any problem.

    The step windows must be disjoint across kinds, so that no pose meets two different steps' pose rules:
    - opposite movements: turn_yaw > 0 and tilt_pitch > 0 (TURN_LEFT needs yaw >= turn_yaw, TURN_RIGHT
      yaw <= -turn_yaw);
    - a turn against a tilt: a turn needs |yaw| >= turn_yaw with |pitch| <= off_axis_max, a tilt needs
      |pitch| >= tilt_pitch with |yaw| <= off_axis_max. Both at once need turn_yaw <= off_axis_max AND
      tilt_pitch <= off_axis_max, so either movement threshold above off_axis_max separates them;
    - an expression against a movement: expressions need |yaw| and |pitch| < expression_max_angle, so
      expression_max_angle < min(turn_yaw, tilt_pitch) (and > 0, or no expression could ever be met).
    Two expressions can both be met by one face (a grin); PREVIOUS_STEP_HELD covers that, not the windows."""
    problems = []
    if t.neutral_max_angle <= 0 or t.compare_max_angle <= 0:
        problems.append("NEUTRAL_MAX_DEGREES and COMPARE_MAX_DEGREES must be positive")
    if t.compare_max_angle < t.expression_max_angle:
        problems.append(
            "COMPARE_MAX_DEGREES must be at least EXPRESSION_MAX_ANGLE_DEGREES, or a swap during an expression could "
            f"never fail the session ({t.compare_max_angle:g} < {t.expression_max_angle:g})"
        )
    if t.flat_face_slope < 0 or t.max_not_comparable < 1:
        problems.append("FLAT_FACE_SLOPE must be 0 or more and MAX_NOT_COMPARABLE at least 1")
    if t.link_max_angle < 0 or t.link_max_seconds <= 0 or t.max_link_hops < 1:
        problems.append("LINK_MAX_DEGREES must be 0 or more, LINK_MAX_SECONDS positive and MAX_LINK_HOPS at least 1")
    if t.turn_yaw <= 0 or t.tilt_pitch <= 0 or t.off_axis_max <= 0:
        problems.append("TURN_YAW_DEGREES, TILT_PITCH_DEGREES and OFF_AXIS_MAX_DEGREES must be positive")
    if t.turn_yaw <= t.off_axis_max and t.tilt_pitch <= t.off_axis_max:
        problems.append(
            "TURN_YAW_DEGREES or TILT_PITCH_DEGREES must be above OFF_AXIS_MAX_DEGREES, or one pose could be both a "
            f"turn and a tilt ({t.turn_yaw:g} and {t.tilt_pitch:g} <= {t.off_axis_max:g})"
        )
    if not 0 < t.expression_max_angle < min(t.tilt_pitch, t.turn_yaw):
        problems.append(
            "EXPRESSION_MAX_ANGLE_DEGREES must be above 0 and below TILT_PITCH_DEGREES and TURN_YAW_DEGREES "
            f"({t.expression_max_angle:g}, {min(t.tilt_pitch, t.turn_yaw):g})"
        )
    return problems


def draw_steps(count: int, *, exclude_expressions: bool = False) -> tuple[StepCode, ...]:
    """``count`` distinct steps in a random order, from the OS's CSPRNG so a client cannot predict them.

    The neutral start is not among them: ``challenge`` puts it first."""
    pool = list(HEAD_MOVEMENTS if exclude_expressions else HEAD_MOVEMENTS + EXPRESSIONS)
    if not MIN_STEPS <= count <= max_steps(exclude_expressions):
        raise ValueError(f"count must be between {MIN_STEPS} and {max_steps(exclude_expressions)}")
    drawn: list[StepCode] = []
    for _ in range(count):
        drawn.append(pool.pop(secrets.randbelow(len(pool))))
    return tuple(drawn)


def challenge(random_steps: tuple[StepCode, ...], *, light: bool = False) -> tuple[StepCode, ...]:
    """The steps a session asks for: the neutral start, the light step (``light``), then the drawn steps."""
    return (StepCode.LOOK_STRAIGHT, *((StepCode.FOLLOW_LIGHT,) if light else ()), *random_steps)


def max_steps(exclude_expressions: bool) -> int:
    return min(MAX_STEPS, len(HEAD_MOVEMENTS) if exclude_expressions else len(HEAD_MOVEMENTS + EXPRESSIONS))


# ---------------------------------------------------------------------------------------------------------
# Measurements: what the client is told about a frame, in the user's point of view.


@dataclass(frozen=True)
class Measured:
    """Values as the user sees them: ``yaw > 0`` = turned to their own left; ``pitch > 0`` = chin up."""

    face_confidence: float | None = None
    face_width: float | None = None
    brightness: float | None = None
    sharpness: float | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    smile: float | None = None  # confidence that the user smiles
    mouth_open: float | None = None  # confidence that the mouth is open
    eyes_closed: float | None = None  # confidence that the eyes are closed
    # The face box's height over its width in pixels; relative to the baseline's once ``relative_to`` applied.
    face_aspect: float | None = None

    def pose_json(self) -> dict[str, float]:
        """What the API answers: the pose (the face's aspect is the flat-face check's business)."""
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}

    def to_json(self) -> dict[str, float | None]:
        return {
            _CAMEL.get(key, key): (None if value is None else round(value, 2)) for key, value in asdict(self).items()
        }


_CAMEL = {
    "face_confidence": "faceConfidence",
    "face_width": "faceWidth",
    "mouth_open": "mouthOpen",
    "eyes_closed": "eyesClosed",
    "face_aspect": "faceAspect",
}


@dataclass(frozen=True)
class Baseline:
    """The person's own "straight": the pose of the accepted neutral frame, in the user's point of view."""

    yaw: float
    pitch: float
    roll: float
    face_aspect: float | None = None  # the face's height over width at the neutral start

    @classmethod
    def of(cls, measured: Measured) -> Baseline | None:
        if measured.yaw is None or measured.pitch is None or measured.roll is None:
            return None
        # Rounded as stored (to_json), so the state in memory and the state read back judge alike.
        aspect = round(measured.face_aspect, 4) if measured.face_aspect else None
        return cls(round(measured.yaw, 2), round(measured.pitch, 2), round(measured.roll, 2), aspect)

    def pose_json(self) -> dict[str, float]:
        """What the API answers: the pose (the face's aspect is the flat-face check's business)."""
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}

    def to_json(self) -> dict[str, float | None]:
        return {
            "yaw": round(self.yaw, 2),
            "pitch": round(self.pitch, 2),
            "roll": round(self.roll, 2),
            "faceAspect": self.face_aspect,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Baseline:
        aspect = raw.get("faceAspect")
        return cls(float(raw["yaw"]), float(raw["pitch"]), float(raw["roll"]), float(aspect) if aspect else None)


def relative_to(measured: Measured, baseline: Baseline | None) -> Measured:
    """The pose as a movement from the person's baseline (unchanged without one: the neutral start itself)."""
    if baseline is None or measured.yaw is None or measured.pitch is None or measured.roll is None:
        return measured
    aspect = measured.face_aspect
    return replace(
        measured,
        yaw=measured.yaw - baseline.yaw,
        pitch=measured.pitch - baseline.pitch,
        roll=measured.roll - baseline.roll,
        face_aspect=aspect / baseline.face_aspect if aspect and baseline.face_aspect else None,
    )


def comparison_reliable(movement: Measured, t: Thresholds) -> bool:
    """Whether a face this far from the baseline can be told apart from another person by the comparison."""
    if movement.yaw is None or movement.pitch is None:
        return False
    return max(abs(movement.yaw), abs(movement.pitch)) <= t.compare_max_angle


def measure(face: FaceDetail, mirrored: bool, image_size: tuple[int, int] | None = None) -> Measured:
    """``image_size`` (width, height) in pixels gives the face's aspect (the box is in ratios of the image)."""
    sign = -1.0 if mirrored else 1.0  # a mirrored image flips left and right: yaw and roll change sign
    pose, quality, box = face.pose, face.quality, face.bounding_box
    aspect = None
    if image_size is not None and box.width > 0 and box.height > 0:
        aspect = (box.height * image_size[1]) / (box.width * image_size[0])
    return Measured(
        face_confidence=face.confidence,
        face_width=face.bounding_box.width,
        brightness=quality.brightness if quality else None,
        sharpness=quality.sharpness if quality else None,
        yaw=sign * pose.yaw if pose else None,
        pitch=pose.pitch if pose else None,
        roll=sign * pose.roll if pose else None,
        smile=face.smile.confidence_that(True) if face.smile else None,
        mouth_open=face.mouth_open.confidence_that(True) if face.mouth_open else None,
        eyes_closed=face.eyes_open.confidence_that(False) if face.eyes_open else None,
        face_aspect=aspect,
    )


# ---------------------------------------------------------------------------------------------------------
# Gates: is this a usable frame of exactly one, clearly visible person? Checked before any step rule.


def gate_faces(faces: list[FaceDetail], thresholds: Thresholds) -> ReasonCode | None:
    if not faces:
        return ReasonCode.NO_FACE
    if len(faces) > 1:
        return ReasonCode.MULTIPLE_FACES
    return gate_face(faces[0], thresholds)


def gate_face(face: FaceDetail, t: Thresholds) -> ReasonCode | None:
    if face.confidence < t.min_face_confidence:
        return ReasonCode.LOW_CONFIDENCE
    if face.bounding_box.width < t.min_face_width:
        return ReasonCode.FACE_TOO_SMALL
    # An analyzer that reports no quality cannot vouch for it: reject rather than pass silently.
    if face.quality is None or face.quality.brightness < t.min_brightness or face.quality.sharpness < t.min_sharpness:
        return ReasonCode.LOW_QUALITY
    if _is_true(face.face_occluded, t.occlusion_confidence):
        return ReasonCode.FACE_OCCLUDED
    if _is_true(face.sunglasses, t.sunglasses_confidence):
        return ReasonCode.SUNGLASSES
    return None


def _is_true(attribute: Any, min_confidence: float) -> bool:
    return attribute is not None and attribute.value and attribute.confidence >= min_confidence


# ---------------------------------------------------------------------------------------------------------
# Step rules: does a (gated) face perform the asked movement? ``measured`` is already mirror-corrected and, for
# every step after the neutral start, relative to the baseline (``relative_to``). Head movements and expressions
# have disjoint windows (see Thresholds.expression_max_angle).


def step_reason(step: StepCode, measured: Measured, t: Thresholds) -> ReasonCode | None:
    if step is StepCode.FOLLOW_LIGHT:
        raise ValueError("the light step is judged on a batch (POST /sessions/{id}/light/frames), not on one frame")
    if step is StepCode.LOOK_STRAIGHT:
        return None if _neutral_met(measured, t) else ReasonCode.NOT_LOOKING_STRAIGHT
    if step in HEAD_MOVEMENTS:
        if not _pose_met(step, measured, t):
            return ReasonCode.POSE_NOT_MET
        return ReasonCode.FLAT_FACE if step in (StepCode.LOOK_UP, StepCode.LOOK_DOWN) and _flat(measured, t) else None
    return None if _expression_met(step, measured, t) else ReasonCode.EXPRESSION_NOT_MET


def step_reason_after(
    step: StepCode, earlier: Sequence[StepCode], measured: Measured, t: Thresholds
) -> ReasonCode | None:
    """The step's rule, plus: the frame must not also meet ANY earlier step of the session.

    A frame that meets this step AND an earlier one is rejected, so one still image (a smile with the mouth
    open, say) cannot answer two steps, adjacent or not: [SMILE, TURN_LEFT, OPEN_MOUTH] cannot be passed by
    one grinning photo, another frame, and the grinning photo again (or a crop of it). The neutral start is not a
    challenge (every expression is made near it), so it is not an earlier step here."""
    reason = step_reason(step, measured, t)
    challenges = [other for other in earlier if other not in (StepCode.LOOK_STRAIGHT, StepCode.FOLLOW_LIGHT)]
    if reason is None and any(step_reason(other, measured, t) is None for other in challenges):
        return ReasonCode.PREVIOUS_STEP_HELD
    return reason


def _neutral_met(m: Measured, t: Thresholds) -> bool:
    """Toward the camera, head level, and no expression: the reference face is a neutral one, and one smiling
    (or eyes-closed) photo cannot answer both the neutral start and an expression step."""
    if m.yaw is None or m.pitch is None or m.roll is None:
        return False
    expressions = (m.smile, m.mouth_open, m.eyes_closed)
    if any(value is not None and value >= t.expression_confidence for value in expressions):
        return False
    return max(abs(m.yaw), abs(m.pitch)) <= t.neutral_max_angle and abs(m.roll) <= t.off_axis_max


def _flat(movement: Measured, t: Thresholds) -> bool:
    """The face lost more height than a head pitching this far does: a photo tilted in front of the camera."""
    if not t.flat_face_slope or movement.face_aspect is None or movement.pitch is None:
        return False
    return movement.face_aspect < 1.0 - t.flat_face_slope * abs(movement.pitch) - FLAT_FACE_ALLOWANCE


def _pose_met(step: StepCode, m: Measured, t: Thresholds) -> bool:
    if m.yaw is None or m.pitch is None or m.roll is None:
        return False
    if abs(m.roll) > t.off_axis_max:  # a head leaning sideways is not the asked movement
        return False
    if step is StepCode.TURN_LEFT:
        return m.yaw >= t.turn_yaw and abs(m.pitch) <= t.off_axis_max
    if step is StepCode.TURN_RIGHT:
        return m.yaw <= -t.turn_yaw and abs(m.pitch) <= t.off_axis_max
    if step is StepCode.LOOK_UP:
        return m.pitch >= t.tilt_pitch and abs(m.yaw) <= t.off_axis_max
    return m.pitch <= -t.tilt_pitch and abs(m.yaw) <= t.off_axis_max  # LOOK_DOWN


def _expression_met(step: StepCode, m: Measured, t: Thresholds) -> bool:
    if m.yaw is None or m.pitch is None or max(abs(m.yaw), abs(m.pitch)) >= t.expression_max_angle:
        return False
    value = {StepCode.SMILE: m.smile, StepCode.OPEN_MOUTH: m.mouth_open, StepCode.CLOSE_EYES: m.eyes_closed}[step]
    return value is not None and value >= t.expression_confidence
