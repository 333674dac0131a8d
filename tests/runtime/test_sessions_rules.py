"""The pure parts: step drawing, gates, step rules (mirror-aware) and the session state machine."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from liveness.challenges import (
    COACHING,
    EXPRESSIONS,
    FRAME_STEPS,
    HEAD_MOVEMENTS,
    INSTRUCTIONS,
    LEGACY,
    Baseline,
    Measured,
    ReasonCode,
    StepCode,
    Thresholds,
    challenge,
    comparison_reliable,
    draw_steps,
    gate_faces,
    measure,
    relative_to,
    step_reason,
    step_reason_after,
)
from liveness.faces import FaceComparison
from liveness.limits import SessionLimits
from liveness.sessions.codec import session_from_dict, session_to_dict
from liveness.sessions.model import FailureReason, FrameEvaluation, SamePersonCheck, SessionStatus, StepStatus
from liveness.sessions.transitions import apply_frame, close_if_due, new_session, reserve_frame, settle_frame
from liveness.settings import Settings

from testkit.faces import face, face_for
from tests.runtime.session_helpers import START

T = Thresholds()


# --- drawing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_draw_gives_distinct_steps_of_the_asked_count(count: int) -> None:
    steps = draw_steps(count)
    assert len(steps) == count and len(set(steps)) == count


def test_draw_without_expressions_uses_head_movements_only() -> None:
    for _ in range(50):
        assert set(draw_steps(4, exclude_expressions=True)) == set(HEAD_MOVEMENTS)
        assert not set(draw_steps(2, exclude_expressions=True)) & set(EXPRESSIONS)


def test_draw_covers_the_whole_pool_in_varied_orders() -> None:
    firsts = Counter(draw_steps(3)[0] for _ in range(700))
    # Every challenge step can come first among the drawn ones: the order is not fixed. The neutral start is never
    # drawn (``challenge`` puts it before them).
    assert (
        set(firsts)
        == set(StepCode) - {StepCode.LOOK_STRAIGHT, StepCode.FOLLOW_LIGHT}
        == set(HEAD_MOVEMENTS + EXPRESSIONS)
    )
    assert max(firsts.values()) < 200  # ~100 each expected; a biased draw would pile up


@pytest.mark.parametrize("count,exclude", [(1, False), (6, False), (5, True)])
def test_draw_refuses_impossible_counts(count: int, exclude: bool) -> None:
    with pytest.raises(ValueError):
        draw_steps(count, exclude_expressions=exclude)


# --- gates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faces,reason",
    [
        ([], ReasonCode.NO_FACE),
        ([face(), face()], ReasonCode.MULTIPLE_FACES),
        ([face(confidence=89.9)], ReasonCode.LOW_CONFIDENCE),
        ([face(width=0.14)], ReasonCode.FACE_TOO_SMALL),
        ([face(brightness=10)], ReasonCode.LOW_QUALITY),
        ([face(sharpness=5)], ReasonCode.LOW_QUALITY),
        ([face(occluded=(True, 85.0))], ReasonCode.FACE_OCCLUDED),
        ([face(sunglasses=(True, 90.0))], ReasonCode.SUNGLASSES),
        ([face(occluded=(True, 60.0))], None),  # not sure enough to reject
        ([face(sunglasses=(False, 99.0))], None),
        ([face()], None),
    ],
)
def test_gates(faces: list, reason: ReasonCode | None) -> None:
    assert gate_faces(faces, T) is reason


def test_a_face_without_quality_is_not_passed_silently() -> None:
    assert gate_faces([replace(face(), quality=None)], T) is ReasonCode.LOW_QUALITY


# --- step rules --------------------------------------------------------------------------------------------


def _met(step: StepCode, detail, mirrored: bool = False) -> ReasonCode | None:
    return step_reason(step, measure(detail, mirrored), T)


def test_unmirrored_positive_yaw_is_the_users_left() -> None:
    assert _met(StepCode.TURN_LEFT, face(yaw=30)) is None
    assert _met(StepCode.TURN_RIGHT, face(yaw=30)) is ReasonCode.POSE_NOT_MET  # wrong direction
    assert _met(StepCode.TURN_RIGHT, face(yaw=-30)) is None


def test_mirrored_frames_flip_yaw_and_roll() -> None:
    assert _met(StepCode.TURN_LEFT, face(yaw=30), mirrored=True) is ReasonCode.POSE_NOT_MET
    assert _met(StepCode.TURN_LEFT, face(yaw=-30), mirrored=True) is None
    measured = measure(face(yaw=-30, pitch=5, roll=12), mirrored=True)
    assert (measured.yaw, measured.pitch, measured.roll) == (30, 5, -12)  # pitch is not mirrored


@pytest.mark.parametrize(
    "step,detail,reason",
    [
        (StepCode.TURN_LEFT, face(yaw=24.9), ReasonCode.POSE_NOT_MET),  # not far enough
        (StepCode.TURN_LEFT, face(yaw=25.0), None),
        (StepCode.TURN_LEFT, face(yaw=35, pitch=25), ReasonCode.POSE_NOT_MET),  # turned while looking up
        (StepCode.TURN_LEFT, face(yaw=35, roll=20), None),  # roll within OFF_AXIS_MAX_DEGREES
        (StepCode.TURN_LEFT, face(yaw=35, roll=-21), ReasonCode.POSE_NOT_MET),  # leaning sideways while turning
        (StepCode.LOOK_DOWN, face(pitch=-22, roll=25), ReasonCode.POSE_NOT_MET),
        (StepCode.LOOK_UP, face(pitch=15), None),
        (StepCode.LOOK_UP, face(pitch=-20), ReasonCode.POSE_NOT_MET),
        (StepCode.LOOK_UP, face(pitch=20, yaw=25), ReasonCode.POSE_NOT_MET),
        (StepCode.LOOK_DOWN, face(pitch=-16), None),
        (StepCode.LOOK_DOWN, face(pitch=16), ReasonCode.POSE_NOT_MET),
        (StepCode.SMILE, face(smile=True, attribute_confidence=85), None),
        (StepCode.SMILE, face(smile=True, attribute_confidence=70), ReasonCode.EXPRESSION_NOT_MET),
        (StepCode.SMILE, face(smile=False), ReasonCode.EXPRESSION_NOT_MET),
        (StepCode.OPEN_MOUTH, face(mouth_open=True), None),
        (StepCode.OPEN_MOUTH, face(), ReasonCode.EXPRESSION_NOT_MET),
        (StepCode.CLOSE_EYES, face(eyes_open=False), None),
        (StepCode.CLOSE_EYES, face(eyes_open=True), ReasonCode.EXPRESSION_NOT_MET),
        # Low confidence that the eyes are OPEN is some confidence that they are closed: 100-85 = 15 < 80.
        (StepCode.CLOSE_EYES, face(eyes_open=True, attribute_confidence=85), ReasonCode.EXPRESSION_NOT_MET),
    ],
)
def test_step_rules(step: StepCode, detail, reason: ReasonCode | None) -> None:
    assert _met(step, detail) is reason


def test_missing_pose_never_meets_a_head_movement() -> None:
    assert _met(StepCode.TURN_LEFT, replace(face(yaw=40), pose=None)) is ReasonCode.POSE_NOT_MET


@pytest.mark.parametrize("step", FRAME_STEPS)
def test_the_helper_faces_meet_exactly_their_own_step(step: StepCode) -> None:
    """Each helper face meets its own step only: the neutral start needs a neutral face, so not even an
    expression made toward the camera meets it."""
    for mirrored in (False, True):
        met = {other for other in FRAME_STEPS if _met(other, face_for(step, mirrored=mirrored), mirrored) is None}
        assert met == {step}


# --- state machine -----------------------------------------------------------------------------------------

LIMITS = SessionLimits(step_count=3, step_time_limit_seconds=10, session_ttl_seconds=120, max_frames=5)
STEPS = (StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)


def _session():
    return new_session("s-1", "owner", STEPS, mirrored=False, analyzer="scripted", now=START, limits=LIMITS)


def _frame(session, reason=None, similarity: float | None = 99.0, frame_id: str = "f") -> FrameEvaluation:
    compared = reason is None and session.reference_frame_id is not None
    return FrameEvaluation(
        frame_id=frame_id,
        step_index=session.current_step,
        reason=reason,
        measured=measure(face(), False),
        mirrored=False,
        frame_key=f"k/{frame_id}",
        comparison=FaceComparison(similarity, "scripted") if compared else None,
    )


def _apply(session, evaluation, now, min_similarity: float = 90):
    """A frame as the service runs it: reserve a slot, then apply the verdict (two versions)."""
    reserved, ok = reserve_frame(session, now)
    assert ok, "no slot"
    return apply_frame(reserved, evaluation, now, min_similarity)


def _at(seconds: float):
    return START + timedelta(seconds=seconds)


def test_accepting_every_step_passes_and_bumps_the_version_per_frame() -> None:
    session = _session()
    for index in range(3):
        session, record = _apply(session, _frame(session, frame_id=f"f{index}"), _at(index + 1), 90)
        assert record.verdict.value == "ACCEPTED"
    assert session.status is SessionStatus.PASSED and session.version == 7  # a reservation and a verdict each
    assert session.reference_frame_id == "f0" and session.comparisons == 2
    assert session.same_person_check is SamePersonCheck.PASSED
    assert [step.status for step in session.steps] == [StepStatus.PASSED] * 3


def test_a_rejected_frame_counts_an_attempt_and_keeps_the_step() -> None:
    session, record = _apply(_session(), _frame(_session(), ReasonCode.POSE_NOT_MET), _at(1), 90)
    assert record.reason is ReasonCode.POSE_NOT_MET and session.current_step == 0
    assert session.step.attempts == 1 and session.frames_received == 1 and session.step.reason == "POSE_NOT_MET"
    assert session.step.started_at == _at(1)  # step 0's timer starts with the first frame, not at creation


def test_a_different_person_fails_the_session() -> None:
    session, _ = _apply(_session(), _frame(_session()), _at(1), 90)
    session, record = _apply(session, _frame(session, similarity=42.0), _at(2), 90)
    assert record.reason is ReasonCode.FACE_MISMATCH and record.similarity == 42.0
    assert session.status is SessionStatus.FAILED and session.failure_reason is FailureReason.FACE_MISMATCH
    assert session.same_person_check is SamePersonCheck.FAILED


def test_an_unavailable_comparison_is_flagged_not_passed() -> None:
    session = _session()
    for index in range(3):
        session, _ = _apply(session, _frame(session, similarity=None, frame_id=f"f{index}"), _at(index + 1), 90)
    assert session.status is SessionStatus.PASSED
    assert session.same_person_check is SamePersonCheck.NOT_PERFORMED


def test_step_timeout_and_expiry() -> None:
    session, _ = _apply(_session(), _frame(_session()), _at(1), 90)  # step 1 starts at t=1
    assert close_if_due(session, _at(11)) is session  # exactly the limit: still allowed
    timed_out = close_if_due(session, _at(11.001))
    assert timed_out.status is SessionStatus.FAILED and timed_out.failure_reason is FailureReason.STEP_TIMEOUT
    assert timed_out.version == session.version + 1 and timed_out.steps[1].status is StepStatus.FAILED
    expired = close_if_due(_session(), _at(120))
    assert expired.status is SessionStatus.EXPIRED and expired.failure_reason is FailureReason.SESSION_EXPIRED


def test_attempt_cap_fails_the_session_on_the_last_allowed_frame() -> None:
    session = _session()
    for index in range(5):
        session, _ = _apply(session, _frame(session, ReasonCode.NO_FACE, frame_id=f"f{index}"), _at(index), 90)
    assert session.status is SessionStatus.FAILED and session.failure_reason is FailureReason.ATTEMPT_LIMIT
    assert len(session.frames) == 5


def test_closed_sessions_and_evaluations_of_future_steps_are_refused() -> None:
    closed = close_if_due(_session(), _at(500))
    with pytest.raises(ValueError):
        apply_frame(closed, _frame(_session()), _at(501), 90)
    future = replace(_frame(_session()), step_index=1)
    with pytest.raises(ValueError):  # a step index is only ever the current one or an earlier one
        apply_frame(_session(), future, _at(1), 90)


def test_a_frame_judged_for_a_completed_step_is_rejected_not_moved_to_the_next() -> None:
    """The race: frames A and B both judged against step 0; B commits first. A must not count for step 1."""
    arrived = _session()
    advanced, _ = _apply(arrived, _frame(arrived, frame_id="b"), _at(1), 90)
    late, record = _apply(advanced, _frame(arrived, frame_id="a"), _at(1.5), 90)
    assert record.verdict.value == "REJECTED" and record.reason is ReasonCode.STEP_ALREADY_COMPLETED
    assert (record.step_index, record.step_code) == (0, StepCode.TURN_LEFT) and record.similarity is None
    assert late.current_step == 1 and late.step.status is StepStatus.PENDING and late.step.attempts == 0
    assert late.steps[0] == advanced.steps[0]  # the completed step keeps its accepted frame
    assert late.frames_received == 2 and late.version == advanced.version + 2 and late.frames[-1] == record


def test_a_superseded_frame_of_another_person_still_fails_the_session() -> None:
    session, _ = _apply(_session(), _frame(_session(), frame_id="f0"), _at(1), 90)  # reference set
    judged = _frame(session, similarity=30.0, frame_id="swap")  # compared against the reference: another person
    advanced, _ = _apply(session, _frame(session, frame_id="f1"), _at(2), 90)
    failed, record = _apply(advanced, judged, _at(2.5), 90)
    assert record.reason is ReasonCode.FACE_MISMATCH and record.similarity == 30.0
    assert failed.status is SessionStatus.FAILED and failed.failure_reason is FailureReason.FACE_MISMATCH
    assert failed.same_person_check is SamePersonCheck.FAILED


def test_superseded_frames_count_toward_the_frame_cap() -> None:
    session, _ = _apply(_session(), _frame(_session(), frame_id="f0"), _at(1), 90)
    stale = _frame(_session(), frame_id="stale")
    for index in range(4):
        session, _ = _apply(session, replace(stale, frame_id=f"s{index}"), _at(2), 90)
    assert session.frames_received == 5 and session.failure_reason is FailureReason.ATTEMPT_LIMIT


def test_plain_data_round_trip() -> None:
    session, _ = _apply(_session(), _frame(_session(), ReasonCode.LOW_QUALITY), _at(1), 90)
    assert session_from_dict(session_to_dict(session)) == session


@pytest.mark.parametrize(
    ("yaw", "pitch", "met"),
    [(0.0, 0.0, True), (-11.9, 11.9, True), (-12.0, 0.0, False), (0.0, 12.0, False), (0.0, 33.0, False)],
)
def test_expressions_count_only_on_a_face_toward_the_camera(yaw: float, pitch: float, met: bool) -> None:
    """A head tilted far back reads as eyes closed to a mesh: it must not pass CLOSE_EYES."""
    closed = face(yaw=yaw, pitch=pitch, eyes_open=False)
    reason = step_reason(StepCode.CLOSE_EYES, measure(closed, mirrored=False), Thresholds())
    assert reason == (None if met else ReasonCode.EXPRESSION_NOT_MET)


def test_no_face_counts_as_both_a_head_movement_and_an_expression() -> None:
    """Disjoint windows: every expression at full confidence, over a grid of poses."""
    angles = [-40.0, -25.0, -15.0, -12.0, -11.9, 0.0, 11.9, 12.0, 15.0, 25.0, 40.0]
    for yaw in angles:
        for pitch in angles:
            for roll in (0.0, 15.0):
                measured = measure(
                    face(yaw=yaw, pitch=pitch, roll=roll, smile=True, mouth_open=True, eyes_open=False), False
                )
                met = {step for step in FRAME_STEPS if step_reason(step, measured, T) is None}
                assert not (met & set(HEAD_MOVEMENTS) and met & set(EXPRESSIONS)), (yaw, pitch, roll, met)


def test_a_frame_meeting_the_previous_step_too_is_held() -> None:
    grin = measure(face(smile=True, mouth_open=True), False)
    assert step_reason_after(StepCode.OPEN_MOUTH, [], grin, T) is None  # the first step has no earlier one
    assert step_reason_after(StepCode.OPEN_MOUTH, [StepCode.SMILE], grin, T) is ReasonCode.PREVIOUS_STEP_HELD
    assert step_reason_after(StepCode.SMILE, [StepCode.OPEN_MOUTH], grin, T) is ReasonCode.PREVIOUS_STEP_HELD
    mouth_only = measure(face(mouth_open=True), False)
    assert step_reason_after(StepCode.OPEN_MOUTH, [StepCode.SMILE], mouth_only, T) is None
    # A miss keeps its own reason: the coaching is about the step asked, not the one before.
    assert step_reason_after(StepCode.LOOK_UP, [StepCode.SMILE], grin, T) is ReasonCode.POSE_NOT_MET


def test_a_frame_meeting_any_earlier_step_is_held_not_only_the_previous_one() -> None:
    """[SMILE, TURN_LEFT, OPEN_MOUTH]: a grin met SMILE; at OPEN_MOUTH the same grin still meets SMILE, two steps
    back. Checking only the previous step (TURN_LEFT) would let it pass."""
    grin = measure(face(smile=True, mouth_open=True), False)
    earlier = [StepCode.SMILE, StepCode.TURN_LEFT]
    assert step_reason_after(StepCode.OPEN_MOUTH, earlier[-1:], grin, T) is None  # the old, previous-only rule
    assert step_reason_after(StepCode.OPEN_MOUTH, earlier, grin, T) is ReasonCode.PREVIOUS_STEP_HELD
    assert step_reason_after(StepCode.OPEN_MOUTH, earlier, measure(face(mouth_open=True), False), T) is None


# --- reservation, cap, repeated frames ---------------------------------------------------------------------


def test_a_reservation_takes_a_slot_and_the_cap_refuses_more_before_analysis() -> None:
    session = _session()
    for index in range(5):
        session, ok = reserve_frame(session, _at(index))
        assert ok and session.frames_received == index + 1 and session.version == index + 2
    assert session.step.started_at == _at(0)  # step 0's timer starts with the first frame's arrival
    full, ok = reserve_frame(session, _at(6))
    assert not ok and full is session  # every slot taken (some still analysed): no sixth analysis
    assert session.is_open and not session.settled  # five frames still to log: the cap closes nothing yet
    for index in range(4):
        session, _ = settle_frame(session, _frame(session, ReasonCode.NO_FACE, frame_id=f"f{index}"), _at(7), 90)
        assert session.is_open
    session, record = settle_frame(session, _frame(session, ReasonCode.NO_FACE, frame_id="f4"), _at(7), 90)
    assert session.failure_reason is FailureReason.ATTEMPT_LIMIT and session.settled and len(session.frames) == 5


def test_the_last_frame_to_settle_may_still_pass_the_last_step() -> None:
    session = new_session(
        "s-1", "owner", STEPS[:2], mirrored=False, analyzer="scripted", now=START, limits=replace(LIMITS, max_frames=2)
    )
    session, _ = settle_frame(reserve_frame(session, _at(1))[0], _frame(session, frame_id="a"), _at(1), 90)
    reserved, _ = reserve_frame(session, _at(2))
    passed, _ = settle_frame(reserved, _frame(reserved, frame_id="b"), _at(2), 90)
    assert passed.status is SessionStatus.PASSED and passed.frames_received == 2


def test_a_deadline_closes_at_reservation_without_a_slot() -> None:
    closed, ok = reserve_frame(_session(), _at(500))
    assert not ok and closed.status is SessionStatus.EXPIRED and closed.frames_received == 0


def test_a_frame_settled_after_the_session_closed_is_logged_as_session_closed() -> None:
    session = _session()
    first, _ = reserve_frame(session, _at(1))
    both, _ = reserve_frame(first, _at(1))
    swap = _frame(both, frame_id="swap")
    failed, _ = settle_frame(both, replace(_frame(both, frame_id="miss"), reason=ReasonCode.NO_FACE), _at(1), 90)
    failed = close_if_due(failed, _at(500))  # the session closes while "swap" is still being analysed
    assert not failed.settled
    logged, record = settle_frame(failed, swap, _at(1), 90)
    assert record.reason is ReasonCode.SESSION_CLOSED and record.verdict.value == "REJECTED"
    assert logged.status is SessionStatus.EXPIRED and logged.settled and logged.version == failed.version + 1
    assert [frame.frame_id for frame in logged.frames] == ["miss", "swap"]


def test_the_same_bytes_are_a_repeated_frame_even_if_they_would_meet_the_step() -> None:
    session = _session()
    first = replace(_frame(session, ReasonCode.POSE_NOT_MET, frame_id="a"), sha256="ab" * 32)
    session, _ = _apply(session, first, _at(1))
    assert session.frames[0].sha256 == "ab" * 32
    again = replace(_frame(session, frame_id="b"), sha256="ab" * 32)  # would meet TURN_LEFT
    session, record = _apply(session, again, _at(2))
    assert record.reason is ReasonCode.REPEATED_FRAME and session.current_step == 0
    fresh = replace(_frame(session, frame_id="c"), sha256="cd" * 32)
    assert _apply(session, fresh, _at(3))[1].verdict.value == "ACCEPTED"


def test_a_frame_not_judged_may_be_sent_again() -> None:
    session, _ = reserve_frame(_session(), _at(1))
    unjudged = replace(_frame(session, ReasonCode.NOT_JUDGED, frame_id="a"), sha256="ab" * 32)
    session, record = settle_frame(session, unjudged, _at(1), 90)
    assert record.reason is ReasonCode.NOT_JUDGED and session.step.attempts == 0 and session.frames_received == 1
    resent = replace(_frame(session, frame_id="b"), sha256="ab" * 32)
    assert _apply(session, resent, _at(2))[1].verdict.value == "ACCEPTED"


# --- threshold validation ------------------------------------------------------------------------------------


def _random_valid_thresholds(rng: random.Random) -> Thresholds:
    while True:
        values = {
            "turn_yaw": rng.uniform(1, 60),
            "tilt_pitch": rng.uniform(1, 60),
            "off_axis_max": rng.uniform(1, 60),
            "expression_max_angle": rng.uniform(0.5, 40),
        }
        env = {
            "TURN_YAW_DEGREES": repr(values["turn_yaw"]),
            "TILT_PITCH_DEGREES": repr(values["tilt_pitch"]),
            "OFF_AXIS_MAX_DEGREES": repr(values["off_axis_max"]),
            "EXPRESSION_MAX_ANGLE_DEGREES": repr(values["expression_max_angle"]),
        }
        try:
            return Settings.from_env(env).thresholds
        except ValueError:
            continue


def test_no_pose_meets_two_different_steps_under_any_accepted_thresholds() -> None:
    """Random threshold sets the settings accept, a pose grid through every boundary: no measured pose (with every
    expression at full confidence) meets two steps' rules, except two expressions (a grin), which
    PREVIOUS_STEP_HELD separates."""
    rng = random.Random(20261103)
    accepted = 0
    for _ in range(60):
        t = _random_valid_thresholds(rng)
        accepted += 1
        edges = {0.0, t.turn_yaw, t.tilt_pitch, t.off_axis_max, t.expression_max_angle}
        angles = sorted({sign * (edge + delta) for edge in edges for delta in (-0.01, 0.0, 0.01) for sign in (1, -1)})
        for yaw in angles:
            for pitch in angles:
                measured = Measured(yaw=yaw, pitch=pitch, roll=0.0, smile=99.0, mouth_open=99.0, eyes_closed=99.0)
                met = {step for step in FRAME_STEPS if step_reason(step, measured, t) is None}
                movements = met & set(HEAD_MOVEMENTS)
                assert len(movements) <= 1 and not (movements and met & set(EXPRESSIONS)), (t, yaw, pitch, met)
    assert accepted == 60


# --- the neutral start, the baseline and the comparison range (issue 7) ---------------------------------------


def test_a_challenge_always_starts_with_the_neutral_step_which_is_never_drawn() -> None:
    for _ in range(200):
        drawn = draw_steps(3)
        assert StepCode.LOOK_STRAIGHT not in drawn
        assert challenge(drawn) == (StepCode.LOOK_STRAIGHT, *drawn)
    assert INSTRUCTIONS[StepCode.LOOK_STRAIGHT] == "Look straight at the camera."


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll", "met"),
    [
        (0.0, 0.0, 0.0, True),
        (20.0, -20.0, 0.0, True),  # NEUTRAL_MAX_DEGREES itself: a camera below eye level tilts a straight look
        (-20.0, 20.0, -20.0, True),  # roll within OFF_AXIS_MAX_DEGREES
        (20.1, 0.0, 0.0, False),
        (0.0, -20.1, 0.0, False),
        (0.0, 0.0, 20.1, False),  # head leaning sideways
        (35.0, 0.0, 0.0, False),  # a turn
        (0.0, 22.0, 0.0, False),  # looking up
    ],
)
def test_the_neutral_step_needs_a_face_toward_the_camera(yaw: float, pitch: float, roll: float, met: bool) -> None:
    reason = _met(StepCode.LOOK_STRAIGHT, face(yaw=yaw, pitch=pitch, roll=roll))
    assert reason is (None if met else ReasonCode.NOT_LOOKING_STRAIGHT)
    assert _met(StepCode.LOOK_STRAIGHT, replace(face(), pose=None)) is ReasonCode.NOT_LOOKING_STRAIGHT


def _from(baseline: Baseline | None, **pose: float) -> Measured:
    return relative_to(measure(face(**pose), False), baseline)


def test_movements_are_judged_relative_to_the_baseline() -> None:
    """A camera below eye level: the person's straight look reads as pitch -12. Chin up to +5 is a 17 degree
    movement (LOOK_UP needs 15); the same +5 from a camera-level straight look (baseline 0) is not enough."""
    below = Baseline(yaw=0.0, pitch=-12.0, roll=0.0)
    level = Baseline(yaw=0.0, pitch=0.0, roll=0.0)
    assert _from(below, pitch=5.0).pitch == 17.0
    assert step_reason(StepCode.LOOK_UP, _from(below, pitch=5.0), T) is None
    assert step_reason(StepCode.LOOK_UP, _from(level, pitch=5.0), T) is ReasonCode.POSE_NOT_MET
    # And LOOK_DOWN: -16 is a real tilt from a level look, only 4 degrees from the camera-below baseline.
    assert step_reason(StepCode.LOOK_DOWN, _from(level, pitch=-16.0), T) is None
    assert step_reason(StepCode.LOOK_DOWN, _from(below, pitch=-16.0), T) is ReasonCode.POSE_NOT_MET
    # Yaw: a person whose straight look reads 12 degrees to their right turns left to +14: a 26 degree turn.
    aside = Baseline(yaw=-12.0, pitch=0.0, roll=0.0)
    assert step_reason(StepCode.TURN_LEFT, _from(aside, yaw=14.0), T) is None
    assert step_reason(StepCode.TURN_LEFT, _from(level, yaw=14.0), T) is ReasonCode.POSE_NOT_MET
    assert step_reason(StepCode.TURN_RIGHT, _from(level, yaw=-26.0), T) is None
    assert step_reason(StepCode.TURN_RIGHT, _from(aside, yaw=-26.0), T) is ReasonCode.POSE_NOT_MET  # 14 degrees
    # Roll too: leaning is measured from the person's own roll.
    tilted = Baseline(yaw=0.0, pitch=0.0, roll=15.0)
    assert step_reason(StepCode.TURN_LEFT, _from(tilted, yaw=35.0, roll=30.0), T) is None
    assert step_reason(StepCode.TURN_LEFT, _from(level, yaw=35.0, roll=30.0), T) is ReasonCode.POSE_NOT_MET


def test_expressions_are_judged_near_the_baseline() -> None:
    """With the camera below eye level (baseline pitch -12) a smile at pitch -14 is made toward the person's own
    straight look; from the camera it would be beyond EXPRESSION_MAX_ANGLE_DEGREES."""
    below = Baseline(yaw=0.0, pitch=-12.0, roll=0.0)
    level = Baseline(yaw=0.0, pitch=0.0, roll=0.0)
    assert step_reason(StepCode.SMILE, _from(below, pitch=-14.0, smile=True), T) is None
    assert step_reason(StepCode.SMILE, _from(level, pitch=-14.0, smile=True), T) is ReasonCode.EXPRESSION_NOT_MET
    # A smile at the camera (pitch 0) is 12 degrees from that baseline: not near it any more.
    assert step_reason(StepCode.SMILE, _from(below, pitch=0.0, smile=True), T) is ReasonCode.EXPRESSION_NOT_MET


def test_without_a_baseline_the_pose_is_unchanged() -> None:
    measured = measure(face(yaw=10.0, pitch=-5.0, roll=3.0), False)
    assert relative_to(measured, None) == measured
    moved = relative_to(measured, Baseline(yaw=4.0, pitch=-8.0, roll=1.0))
    assert (moved.yaw, moved.pitch, moved.roll) == (6.0, 3.0, 2.0) and moved.smile == measured.smile


def test_the_neutral_start_needs_a_neutral_face_and_holds_back_no_expression() -> None:
    """One smiling (or eyes-closed, open-mouthed) photo must not answer both the neutral start and an expression
    step: the neutral start refuses any expression. And as expressions are made near the neutral pose, the
    neutral start is not an earlier step for the held rule."""
    for expression in ({"smile": True}, {"mouth_open": True}, {"eyes_open": False}):
        made = measure(face(**expression), False)
        assert step_reason(StepCode.LOOK_STRAIGHT, made, T) is ReasonCode.NOT_LOOKING_STRAIGHT, expression
    smile = measure(face(smile=True), False)
    assert step_reason_after(StepCode.SMILE, [StepCode.LOOK_STRAIGHT], smile, T) is None
    earlier = [StepCode.LOOK_STRAIGHT, StepCode.OPEN_MOUTH]  # still held by a real earlier step
    grin = measure(face(smile=True, mouth_open=True), False)
    assert step_reason_after(StepCode.SMILE, earlier, grin, T) is ReasonCode.PREVIOUS_STEP_HELD


@pytest.mark.parametrize(
    ("yaw", "pitch", "reliable"),
    [(0.0, 0.0, True), (25.0, 0.0, True), (0.0, -25.0, True), (25.1, 0.0, False), (0.0, 25.1, False)],
)
def test_the_comparison_is_reliable_only_within_the_compare_range(yaw: float, pitch: float, reliable: bool) -> None:
    assert comparison_reliable(Measured(yaw=yaw, pitch=pitch, roll=0.0), T) is reliable
    assert comparison_reliable(Measured(yaw=-yaw, pitch=-pitch, roll=0.0), T) is reliable
    assert comparison_reliable(Measured(), T) is False  # no pose: nothing says the comparison can be trusted


NEUTRAL_STEPS = challenge(STEPS)  # LOOK_STRAIGHT, TURN_LEFT, SMILE, LOOK_UP


def _neutral_session(limits: SessionLimits = LIMITS):
    return new_session("s-2", "owner", NEUTRAL_STEPS, mirrored=False, analyzer="scripted", now=START, limits=limits)


def _seen(session, detail, *, similarity: float | None = 99.0, frame_id: str = "f", reason=None, step_index=None):
    """The evaluation the service makes of ``detail`` against the session's current step (or ``step_index``)."""
    measured = measure(detail, False)
    movement = relative_to(measured, session.baseline)
    compared = reason is None and session.reference_frame_id is not None
    return FrameEvaluation(
        frame_id=frame_id,
        step_index=session.current_step if step_index is None else step_index,
        reason=reason,
        measured=measured,
        mirrored=False,
        frame_key=f"k/{frame_id}",
        comparison=FaceComparison(similarity, "scripted") if compared else None,
        comparable=comparison_reliable(movement, T),
        movement=movement if session.baseline is not None else None,
    )


def test_the_neutral_frame_sets_the_reference_and_the_baseline() -> None:
    session = _neutral_session()
    session, record = _apply(session, _seen(session, face(pitch=-12.0, yaw=3.0, roll=1.5), frame_id="n"), _at(1))
    assert record.verdict.value == "ACCEPTED" and record.step_code is StepCode.LOOK_STRAIGHT
    assert "movement" not in record.measured  # the neutral frame is judged from the camera
    assert session.reference_frame_id == "n" and session.current_step == 1
    assert session.baseline == Baseline(yaw=3.0, pitch=-12.0, roll=1.5)
    # The next frame is judged and recorded as a movement from that baseline.
    session, turn = _apply(session, _seen(session, face(yaw=35.0, pitch=-12.0), frame_id="t"), _at(2))
    assert turn.verdict.value == "ACCEPTED" and turn.measured["movement"] == {"yaw": 32.0, "pitch": 0.0, "roll": -1.5}
    assert session.reference_frame_id == "n" and session.baseline == Baseline(yaw=3.0, pitch=-12.0, roll=1.5)
    assert session_from_dict(session_to_dict(session)) == session


def test_a_low_similarity_beyond_the_compare_range_is_not_a_mismatch() -> None:
    session = _neutral_session(replace(LIMITS, max_frames=10))
    session, _ = _apply(session, _seen(session, face(), frame_id="n"), _at(1))
    far = _seen(session, face(yaw=35.0), similarity=31.5, frame_id="far")  # 35 degrees from the baseline
    assert far.comparable is False
    session, record = _apply(session, far, _at(2))
    assert record.verdict.value == "REJECTED" and record.reason is ReasonCode.FACE_NOT_COMPARABLE
    assert record.similarity == 31.5 and COACHING[ReasonCode.FACE_NOT_COMPARABLE]
    assert session.status is SessionStatus.IN_PROGRESS and session.current_step == 1
    assert session.same_person_check is not SamePersonCheck.FAILED and session.step.reason == "FACE_NOT_COMPARABLE"
    assert session.step.attempts == 1 and session.step.status is StepStatus.PENDING
    # The same similarity on a turn within the range (25 degrees) is another person.
    near = _seen(session, face(yaw=25.0), similarity=31.5, frame_id="near")
    assert near.comparable is True
    failed, record = _apply(session, near, _at(3))
    assert record.reason is ReasonCode.FACE_MISMATCH and record.similarity == 31.5
    assert failed.status is SessionStatus.FAILED and failed.failure_reason is FailureReason.FACE_MISMATCH
    assert failed.same_person_check is SamePersonCheck.FAILED


def test_the_compare_range_is_measured_from_the_baseline() -> None:
    """Raw yaw 33 is beyond 25 from the camera, but only 25 from a baseline of yaw 8: a reliable comparison."""
    session = _neutral_session()
    session, _ = _apply(session, _seen(session, face(yaw=8.0), frame_id="n"), _at(1))
    evaluation = _seen(session, face(yaw=33.0), similarity=31.5, frame_id="x")
    assert evaluation.comparable is True
    failed, record = _apply(session, evaluation, _at(2))
    assert record.reason is ReasonCode.FACE_MISMATCH and failed.failure_reason is FailureReason.FACE_MISMATCH


@pytest.mark.parametrize(
    ("yaw", "reason"), [(35.0, ReasonCode.STEP_ALREADY_COMPLETED), (25.0, ReasonCode.FACE_MISMATCH)]
)
def test_a_superseded_frame_fails_the_session_only_within_the_compare_range(yaw: float, reason: ReasonCode) -> None:
    session = _neutral_session()
    session, _ = _apply(session, _seen(session, face(), frame_id="n"), _at(1))
    late = _seen(session, face(yaw=yaw), similarity=31.5, frame_id="late")  # judged against TURN_LEFT, step 1
    advanced, _ = _apply(session, _seen(session, face(yaw=30.0), frame_id="won"), _at(2))
    assert advanced.current_step == 2
    after, record = _apply(advanced, late, _at(2.5))
    assert record.reason is reason and record.step_code is StepCode.TURN_LEFT
    if reason is ReasonCode.FACE_MISMATCH:
        assert after.failure_reason is FailureReason.FACE_MISMATCH and record.similarity == 31.5
    else:
        assert after.is_open and after.same_person_check is not SamePersonCheck.FAILED
        assert record.similarity == 31.5  # the swap attempt's score stays in the audit record


def test_each_step_has_its_own_frame_budget() -> None:
    """STEP_MAX_FRAMES: slots reserved while a step is current. Used up (and settled), the session fails even
    though the session's own budget has slots left; the next step starts with a fresh budget."""
    limits = replace(LIMITS, max_frames=20, step_max_frames=3)
    session = _neutral_session(limits)
    session, _ = _apply(session, _seen(session, face(), frame_id="n"), _at(1))
    assert session.steps[0].frames_received == 1 and session.step.frames_received == 0
    for index in range(2):
        session, _ = _apply(
            session, _seen(session, face(), frame_id=f"m{index}", reason=ReasonCode.POSE_NOT_MET), _at(2)
        )
    assert session.is_open and session.step.frames_received == 2
    reserved, ok = reserve_frame(session, _at(3))
    assert ok and reserved.step.frames_received == 3 and reserved.frames_received == 4
    refused, ok = reserve_frame(reserved, _at(3))  # the step's budget is taken, the session's is not
    assert not ok and refused is reserved and reserved.frames_received < limits.max_frames
    assert reserved.is_open and not reserved.settled  # the third frame is still being analysed
    last = _seen(reserved, face(), frame_id="m2", reason=ReasonCode.POSE_NOT_MET)
    failed, _ = settle_frame(reserved, last, _at(3), 90)
    assert failed.status is SessionStatus.FAILED and failed.failure_reason is FailureReason.ATTEMPT_LIMIT
    assert failed.frames_received == 4 and [step.frames_received for step in failed.steps] == [1, 3, 0, 0]


def test_the_last_frame_of_a_step_budget_may_still_pass_the_step() -> None:
    limits = replace(LIMITS, max_frames=20, step_max_frames=2)
    session = _neutral_session(limits)
    session, _ = _apply(session, _seen(session, face(), frame_id="n"), _at(1))
    session, _ = _apply(session, _seen(session, face(), frame_id="miss", reason=ReasonCode.POSE_NOT_MET), _at(2))
    session, record = _apply(session, _seen(session, face(yaw=30.0), frame_id="turn"), _at(3))
    assert record.verdict.value == "ACCEPTED" and session.is_open and session.current_step == 2
    assert session.step.frames_received == 0 and reserve_frame(session, _at(4))[1]  # a fresh budget for SMILE


def test_items_stored_before_the_neutral_start_still_load() -> None:
    """An item written before stepMaxFrames, baseline, the steps' framesReceived and the new thresholds existed."""
    session, _ = _apply(_session(), _frame(_session(), ReasonCode.LOW_QUALITY), _at(1))
    session = replace(session, thresholds=Thresholds(turn_yaw=31.5))
    raw = session_to_dict(session)
    del raw["limits"]["stepMaxFrames"], raw["baseline"]
    for step in raw["steps"]:
        del step["framesReceived"]
    for name in ("neutral_max_angle", "compare_max_angle", "flat_face_slope", "max_not_comparable", "link_max_angle"):
        del raw["thresholds"][name]
    loaded = session_from_dict(raw)
    assert loaded.limits.step_max_frames == loaded.limits.max_frames == 5  # the session cap alone bounds a step
    assert loaded.baseline is None and [step.frames_received for step in loaded.steps] == [0, 0, 0]
    # The stored numbers kept; the newer ones keep that session's old rules: every low score a mismatch, no
    # flat-face check, no limit on incomparable frames (LEGACY); the neutral tolerance never applies to it.
    assert loaded.thresholds == Thresholds(turn_yaw=31.5, **LEGACY)
    assert (loaded.thresholds.compare_max_angle, loaded.thresholds.flat_face_slope) == (180.0, 0.0)
    unknown = tuple(replace(step, frames_received=0) for step in session.steps)  # not counted before
    assert loaded == replace(
        session,
        limits=replace(session.limits, step_max_frames=5),
        steps=unknown,
        thresholds=Thresholds(turn_yaw=31.5, **LEGACY),
    )
    assert Thresholds.from_json({"min_similarity": 95}) == Thresholds(min_similarity=95.0, **LEGACY)
    assert reserve_frame(loaded, _at(2))[1]  # and it still takes frames


def test_the_plain_data_form_carries_the_new_fields() -> None:
    session = _neutral_session()
    session, _ = _apply(session, _seen(session, face(pitch=-12.0), frame_id="n"), _at(1))
    raw = session_to_dict(session)
    assert raw["limits"]["stepMaxFrames"] == LIMITS.step_max_frames
    assert raw["baseline"] == {"yaw": 0.0, "pitch": -12.0, "roll": 0.0, "faceAspect": None}
    assert [step["framesReceived"] for step in raw["steps"]] == [1, 0, 0, 0]
    assert session_from_dict(raw) == session


def test_the_baseline_is_the_same_in_memory_and_read_back() -> None:
    """The baseline is kept as it is stored, so the request that sets it and every later one judge alike."""
    session = _neutral_session()
    session, _ = _apply(session, _seen(session, face(yaw=3.14159, pitch=-11.987654), frame_id="n"), _at(1))
    assert session.baseline is not None and (session.baseline.yaw, session.baseline.pitch) == (3.14, -11.99)
    assert session_from_dict(session_to_dict(session)) == session


def _tilted(pitch: float, aspect: float) -> Measured:
    """A movement from the baseline: ``aspect`` is the face's height over width relative to the baseline's."""
    return Measured(yaw=0.0, pitch=pitch, roll=0.0, face_aspect=aspect)


@pytest.mark.parametrize(
    ("step", "pitch", "aspect", "reason"),
    [
        # Measured on the developers' webcam clip: a real head kept 0.84-0.93 of its height at 24-43 degrees ...
        (StepCode.LOOK_UP, 24.2, 0.914, None),
        (StepCode.LOOK_UP, 42.7, 0.845, None),
        (StepCode.LOOK_DOWN, -26.6, 0.930, None),
        (StepCode.LOOK_DOWN, -33.0, 0.889, None),
        # ... a photo of it tilted 45-60 degrees read 15-30 degrees of pitch and kept 0.74-0.81.
        (StepCode.LOOK_UP, 16.0, 0.809, ReasonCode.FLAT_FACE),
        (StepCode.LOOK_UP, 19.6, 0.780, ReasonCode.FLAT_FACE),
        (StepCode.LOOK_UP, 23.4, 0.804, ReasonCode.FLAT_FACE),
        (StepCode.LOOK_UP, 27.7, 0.742, ReasonCode.FLAT_FACE),
        (StepCode.LOOK_DOWN, -15.0, 0.797, ReasonCode.FLAT_FACE),
        (StepCode.LOOK_DOWN, -22.5, 0.761, ReasonCode.FLAT_FACE),
        (StepCode.LOOK_DOWN, -30.1, 0.739, ReasonCode.FLAT_FACE),
    ],
)
def test_a_pitch_that_flattens_the_face_like_a_tilted_photo_is_refused(step, pitch, aspect, reason) -> None:
    assert step_reason(step, _tilted(pitch, aspect), T) is reason


def test_the_flat_face_check_needs_the_baseline_aspect_and_can_be_switched_off() -> None:
    flat = _tilted(20.0, 0.75)
    assert step_reason(StepCode.LOOK_UP, flat, replace(T, flat_face_slope=0.0)) is None
    assert step_reason(StepCode.LOOK_UP, replace(flat, face_aspect=None), T) is None  # nothing to compare with
    assert step_reason(StepCode.TURN_LEFT, Measured(yaw=30.0, pitch=0.0, roll=0.0, face_aspect=0.5), T) is None
    baseline = Baseline(yaw=0.0, pitch=0.0, roll=0.0, face_aspect=1.2)
    moved = relative_to(Measured(yaw=0.0, pitch=20.0, roll=0.0, face_aspect=0.9), baseline)
    assert moved.face_aspect == pytest.approx(0.75) and step_reason(StepCode.LOOK_UP, moved, T) is ReasonCode.FLAT_FACE


def test_the_face_aspect_is_measured_in_pixels() -> None:
    """The box is in ratios of the image: a 640x480 frame and a 640x360 one give the same face different ratios."""
    detail = face(width=0.3)  # height 0.39 of the image
    assert measure(detail, False, (640, 480)).face_aspect == pytest.approx(0.39 * 480 / (0.3 * 640))
    assert measure(detail, False).face_aspect is None


# --- the light step ----------------------------------------------------------------------------------------


def test_the_light_step_follows_the_neutral_start_and_is_never_drawn() -> None:
    drawn = draw_steps(3)
    assert challenge(drawn, light=True) == (StepCode.LOOK_STRAIGHT, StepCode.FOLLOW_LIGHT, *drawn)
    assert challenge(drawn) == (StepCode.LOOK_STRAIGHT, *drawn)
    assert all(StepCode.FOLLOW_LIGHT not in draw_steps(4, exclude_expressions=flag) for flag in (True, False))


def test_the_light_step_is_no_frame_rule_and_no_earlier_step_a_frame_could_hold() -> None:
    with pytest.raises(ValueError, match="batch"):
        step_reason(StepCode.FOLLOW_LIGHT, Measured(yaw=0.0, pitch=0.0, roll=0.0), T)
    turned = measure(face_for(StepCode.TURN_LEFT), False)
    earlier = [StepCode.LOOK_STRAIGHT, StepCode.FOLLOW_LIGHT]
    assert step_reason_after(StepCode.TURN_LEFT, earlier, turned, T) is None
