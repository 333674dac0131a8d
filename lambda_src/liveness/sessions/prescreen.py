"""The pre-screen on the Rekognition path: the embedded analyzer refuses the frames that clearly cannot meet the
current step, so that only frames that may meet it cost a Rekognition call. Pure.

It may only refuse, never accept: Rekognition stays the judge of every frame that could count. The step's own
rule runs on the embedded measurement with thresholds widened by margins larger than the two analyzers'
disagreement (docs/analyzers.md, "The pre-screen"), so a frame Rekognition would accept is almost never refused.
"""

from __future__ import annotations

from dataclasses import replace

from ..challenges import HEAD_MOVEMENTS, Measured, ReasonCode, StepCode, Thresholds, step_reason
from ..faces import FaceDetail

PRESCREEN_ANALYZER = "local-mesh"
# Widened by these (degrees): the embedded analyzer's pose disagrees with Rekognition's by a bias and noise of
# about 9 degrees of yaw on labelled faces; a movement measured from its own baseline keeps less of the bias.
YAW_MARGIN = 12.0
PITCH_MARGIN = 9.0
OFF_AXIS_MARGIN = 15.0
NEUTRAL_MARGIN = 15.0
# An expression step's frame is refused only when the embedded analyzer is this sure there is no expression
# (its confidence that there is one below this), and a face this far off (degrees) beyond the expression window.
EXPRESSION_FLOOR = 15.0
EXPRESSION_ANGLE_MARGIN = 10.0
# Refusals the pre-screen makes: the step's rule, and two faces. No face is refused only for a frontal step
# (the embedded detector may lose a face turned far that Rekognition still finds).
FRONTAL_STEPS = frozenset({StepCode.LOOK_STRAIGHT, StepCode.SMILE, StepCode.OPEN_MOUTH, StepCode.CLOSE_EYES})


def widened(step: StepCode, t: Thresholds) -> Thresholds:
    """The session's thresholds widened toward accepting, for this step's rule."""
    if step is StepCode.LOOK_STRAIGHT:
        return replace(
            t,
            neutral_max_angle=t.neutral_max_angle + NEUTRAL_MARGIN,
            off_axis_max=t.off_axis_max + OFF_AXIS_MARGIN,
            expression_confidence=101.0,  # an expression is Rekognition's to see at the neutral start
        )
    if step in HEAD_MOVEMENTS:
        return replace(
            t,
            turn_yaw=max(0.0, t.turn_yaw - YAW_MARGIN),
            tilt_pitch=max(0.0, t.tilt_pitch - PITCH_MARGIN),
            off_axis_max=t.off_axis_max + OFF_AXIS_MARGIN,
            flat_face_slope=0.0,  # a flat face is Rekognition's measurement's to judge
        )
    return replace(
        t,
        expression_confidence=EXPRESSION_FLOOR,
        expression_max_angle=t.expression_max_angle + EXPRESSION_ANGLE_MARGIN,
    )


def screen_reason(step: StepCode, faces: list[FaceDetail], movement: Measured, t: Thresholds) -> ReasonCode | None:
    """Why the frame clearly cannot meet ``step`` by the embedded measurement, or None: send it to Rekognition.
    ``movement`` is relative to the embedded analyzer's own baseline (the neutral start: from the camera)."""
    if len(faces) > 1:
        return ReasonCode.MULTIPLE_FACES
    if not faces:
        return ReasonCode.NO_FACE if step in FRONTAL_STEPS else None
    if movement.yaw is None or movement.pitch is None or movement.roll is None:
        return None
    return step_reason(step, movement, widened(step, t))
