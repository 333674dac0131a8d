"""The identity chain's rules in the pure state machine (chain.py, transitions.py).

Similarities are measured values (make bench-same-person, docs/sessions.md): the clip's person looking up 42
degrees against the frontal reference 3, against the frame before it (38 degrees up) 92.4; two look-up frames
3 degrees apart 58.9; the closest different person within 10 degrees of pose 87.9.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from liveness.challenges import (
    Measured,
    ReasonCode,
    StepCode,
    Thresholds,
    challenge,
    comparison_reliable,
    measure,
    relative_to,
    step_reason_after,
    threshold_problems,
)
from liveness.faces import FaceComparison
from liveness.limits import SessionLimits
from liveness.sessions.chain import (
    MAX_AWAITING_KEPT,
    MAX_VERIFIED_KEPT,
    TRANSIT_MIN_DEGREES,
    awaiting_for,
    in_transit,
    link_for,
    with_verified,
)
from liveness.sessions.codec import session_from_dict, session_to_dict
from liveness.sessions.model import Confirmation, FailureReason, FrameEvaluation, SessionStatus, StepStatus
from liveness.sessions.transitions import apply_frame, new_session, reserve_frame
from liveness.settings import Settings

from testkit.faces import face
from tests.runtime.session_helpers import START

T = Thresholds()
LIMITS = SessionLimits(step_count=3, step_time_limit_seconds=10, session_ttl_seconds=120, max_frames=40)
STEPS = challenge((StepCode.LOOK_UP, StepCode.TURN_LEFT, StepCode.LOOK_DOWN))
SAME_PEAK_VS_REFERENCE = 3.0
SAME_PEAK_VS_PREVIOUS = 92.4
SAME_LOOKING_UP_3_DEGREES_APART = 58.9
OTHER_PERSON_CLOSEST = 87.9


def _at(seconds: float):
    return START + timedelta(seconds=seconds)


def _seen(
    session,
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    similarity: float | None,
    frame_id: str,
    now,
    confirming: float | None = None,
):
    """The evaluation the service makes: the step's rule, transit, and which face the frame is compared with;
    ``confirming`` is the score against the awaiting far frame a verified transit frame is compared with."""
    measured = measure(face(yaw=yaw, pitch=pitch), False)
    movement = relative_to(measured, session.baseline)
    earlier = [step.code for step in session.steps[: session.current_step]]
    reason = step_reason_after(session.step.code, earlier, movement, T) if session.baseline else None
    comparable = comparison_reliable(movement, T)
    transit = reason is ReasonCode.POSE_NOT_MET and in_transit(session.step.code, movement, T)
    compared = session.reference_frame_id is not None and (reason is None or transit)
    link = None if comparable or not compared else link_for(session, movement, now, T)
    matched = compared and similarity is not None and similarity >= T.min_similarity
    target = awaiting_for(session, movement, link.hops if link else 0, now, T) if transit and matched else None
    return FrameEvaluation(
        frame_id=frame_id,
        step_index=session.current_step,
        reason=reason,
        measured=measured,
        mirrored=False,
        frame_key=f"k/{frame_id}",
        comparison=FaceComparison(similarity, "measured") if compared else None,
        comparable=comparable,
        movement=movement if session.baseline is not None else None,
        link=link,
        chained=True,
        transit=transit,
        awaiting=reason is None and compared and not comparable and link is None and not matched,
        confirmation=(
            Confirmation(target.frame_id, target.hops, target.gap_degrees, confirming)
            if target is not None and confirming is not None
            else None
        ),
    )


def _show(session, seconds: float, **seen):
    now = _at(seconds)
    reserved, ok = reserve_frame(session, now)
    assert ok, "no slot"
    evaluation = _seen(reserved, now=now, **seen)
    return (*apply_frame(reserved, evaluation, now, T.min_similarity), evaluation)


def _started(seconds: float = 1.0):
    session = new_session("s-c", "owner", STEPS, mirrored=False, analyzer="local-mesh", now=START, limits=LIMITS)
    session, record, _ = _show(session, seconds, similarity=None, frame_id="n")
    assert record.verdict.value == "ACCEPTED" and session.current_step == 1  # LOOK_UP is current
    return session


def test_a_head_on_its_way_is_verified_directly_and_links_the_far_peak() -> None:
    session = _started()
    session, transit, _ = _show(session, 1.3, pitch=12.0, similarity=99.0, frame_id="up12")
    assert transit.reason is ReasonCode.POSE_NOT_MET and transit.similarity == 99.0 and transit.link is None
    assert [(frame.frame_id, frame.hops, frame.pitch) for frame in session.verified] == [("up12", 0, 12.0)]
    # 27 degrees up: beyond COMPARE_MAX_DEGREES, 15 from the verified frame: compared with it, and accepted.
    session, peak, evaluation = _show(session, 1.6, pitch=27.0, similarity=SAME_PEAK_VS_PREVIOUS, frame_id="up27")
    assert evaluation.link is not None and evaluation.link.frame_id == "up12" and evaluation.link.hops == 1
    assert peak.verdict.value == "ACCEPTED" and peak.link == evaluation.link and session.current_step == 2
    assert session.verified == ()  # the next step starts its own chain
    restored = session_from_dict(session_to_dict(session))
    assert restored == session and restored.frames[-1].link == evaluation.link  # the audit record shows the link


def test_only_frames_close_in_pose_link() -> None:
    session = _started()
    session, _, _ = _show(session, 1.3, pitch=12.0, similarity=99.0, frame_id="up12")
    session, far, evaluation = _show(session, 1.6, pitch=40.0, similarity=SAME_PEAK_VS_REFERENCE, frame_id="up40")
    assert evaluation.link is None  # 28 degrees from the nearest verified frame: compared with the reference
    assert far.reason is ReasonCode.FACE_NOT_COMPARABLE and session.is_open


def test_a_link_expires_after_link_max_seconds() -> None:
    session = _started()
    session, _, _ = _show(session, 1.3, pitch=12.0, similarity=99.0, frame_id="up12")
    late = _at(1.3 + T.link_max_seconds + 0.1)
    movement = Measured(yaw=0.0, pitch=27.0, roll=0.0)
    assert link_for(session, movement, late, T) is None
    assert link_for(session, movement, _at(1.3 + T.link_max_seconds), T) is not None


def test_a_far_frame_before_any_link_is_confirmed_on_the_way_back() -> None:
    """The head went straight to 30 degrees up between two frames: nothing to link to yet, so the far frame waits;
    the frame on the way back, verified against the reference, matches it, and the step is done with it."""
    session = _started()
    session, far, _ = _show(session, 1.3, pitch=30.0, similarity=SAME_PEAK_VS_REFERENCE, frame_id="up30")
    assert far.reason is ReasonCode.FACE_NOT_COMPARABLE and far.confirms is None
    assert [(frame.frame_id, frame.pitch) for frame in session.awaiting] == [("up30", 30.0)]
    session, back, evaluation = _show(
        session, 1.6, pitch=12.0, similarity=99.0, frame_id="back12", confirming=SAME_PEAK_VS_PREVIOUS
    )
    assert evaluation.confirmation == Confirmation("up30", 1, 18.0, SAME_PEAK_VS_PREVIOUS)
    assert back.verdict.value == "ACCEPTED" and back.reason is None and back.confirms == evaluation.confirmation
    done = session.steps[1]
    assert done.status is StepStatus.PASSED and done.frame_id == "up30"  # the far frame showed the step
    assert session.current_step == 2 and session.awaiting == () and session.verified == ()
    assert session.comparisons == 2  # the way back against the reference, and against the far frame
    restored = session_from_dict(session_to_dict(session))
    assert restored == session and restored.frames[-1].confirms == evaluation.confirmation  # in the audit record


def test_a_confirmation_keeps_the_links_bounds() -> None:
    session = _started()
    session, _, _ = _show(session, 1.3, pitch=30.0, similarity=SAME_PEAK_VS_REFERENCE, frame_id="up30")
    back = Measured(yaw=0.0, pitch=12.0, roll=0.0)
    assert awaiting_for(session, back, 0, _at(1.3 + T.link_max_seconds), T) is not None
    assert awaiting_for(session, back, 0, _at(1.3 + T.link_max_seconds + 0.1), T) is None  # too late
    assert awaiting_for(session, Measured(yaw=0.0, pitch=4.0, roll=0.0), 0, _at(1.5), T) is None  # 26 degrees away
    assert awaiting_for(session, back, int(T.max_link_hops), _at(1.5), T) is None  # the chain would be too long


def test_another_person_far_is_not_confirmed_by_the_person_coming_back() -> None:
    """A far frame of someone else (scoring 87.9 against the real person's frame on the way back) stays unconfirmed:
    the step is not done, the way-back frame is only a link, and the far frame still counted as not comparable."""
    session = _started()
    session, _, _ = _show(session, 1.3, pitch=30.0, similarity=SAME_PEAK_VS_REFERENCE, frame_id="b30")
    session, back, evaluation = _show(
        session, 1.6, pitch=12.0, similarity=99.0, frame_id="a12", confirming=OTHER_PERSON_CLOSEST
    )
    assert evaluation.confirmation is not None and back.reason is ReasonCode.POSE_NOT_MET and back.confirms is None
    assert session.current_step == 1 and session.is_open and session.steps[1].status is StepStatus.PENDING
    assert [frame.frame_id for frame in session.verified] == ["a12"]


def test_a_far_frame_with_a_link_does_not_wait() -> None:
    """Compared through a link and scoring low: judged already (not comparable), never confirmed later."""
    session = _started()
    session, _, _ = _show(session, 1.3, pitch=12.0, similarity=99.0, frame_id="up12")
    session, record, evaluation = _show(
        session, 1.6, pitch=26.0, similarity=SAME_LOOKING_UP_3_DEGREES_APART, frame_id="up26"
    )
    assert evaluation.link is not None and not evaluation.awaiting
    assert record.reason is ReasonCode.FACE_NOT_COMPARABLE and session.awaiting == ()


def test_the_item_keeps_a_bounded_number_of_awaiting_frames() -> None:
    session = _started()
    session = replace(session, thresholds=replace(T, max_not_comparable=100.0))  # more far frames than it keeps
    for index in range(MAX_AWAITING_KEPT + 3):
        session, _, _ = _show(
            session, 1.2 + index * 0.1, pitch=30.0, similarity=SAME_PEAK_VS_REFERENCE, frame_id=f"w{index}"
        )
    assert session.is_open and len(session.awaiting) == MAX_AWAITING_KEPT
    assert session.awaiting[-1].frame_id == f"w{MAX_AWAITING_KEPT + 2}"


def test_a_chain_is_at_most_max_link_hops_long() -> None:
    """With a range that lets linked frames be transit frames too (COMPARE_MAX 15, turns from 40 degrees)."""
    t = replace(T, compare_max_angle=15.0, turn_yaw=40.0, link_max_angle=10.0)
    session = _started()
    session = replace(session, current_step=2, thresholds=t)  # TURN_LEFT
    session = replace(session, steps=tuple(replace(step, started_at=_at(1)) for step in session.steps))
    hops = []
    for index, yaw in enumerate((12.0, 20.0, 28.0, 36.0)):
        movement = Measured(yaw=yaw, pitch=0.0, roll=0.0)
        link = None if comparison_reliable(movement, t) else link_for(session, movement, _at(2 + index * 0.3), t)
        hops.append(link.hops if link else 0)
        if yaw <= 28.0:
            session = with_verified(session, f"y{yaw:g}", movement, link, _at(2 + index * 0.3))
    assert hops == [0, 1, 2, 3]
    assert link_for(session, Measured(yaw=36.0, pitch=0.0, roll=0.0), _at(3.0), replace(t, max_link_hops=2.0)) is None


def test_a_low_score_through_a_link_is_not_a_mismatch() -> None:
    """Two look-up frames of the same person 3 degrees apart scored 58.9: a link is not a reliable comparison."""
    session = _started()
    session, _, _ = _show(session, 1.3, pitch=12.0, similarity=99.0, frame_id="up12")
    session, record, evaluation = _show(
        session, 1.6, pitch=26.0, similarity=SAME_LOOKING_UP_3_DEGREES_APART, frame_id="up26"
    )
    assert evaluation.link is not None
    assert record.reason is ReasonCode.FACE_NOT_COMPARABLE and session.is_open
    assert session.same_person_check.value == "pending"


def test_another_person_seen_on_the_way_fails_at_once() -> None:
    """The swap: a transit frame is compared directly with the reference, so a low score is FACE_MISMATCH."""
    session = _started()
    session, record, _ = _show(session, 1.3, pitch=12.0, similarity=OTHER_PERSON_CLOSEST, frame_id="b12")
    assert record.reason is ReasonCode.FACE_MISMATCH and record.similarity == OTHER_PERSON_CLOSEST
    assert session.status is SessionStatus.FAILED and session.failure_reason is FailureReason.FACE_MISMATCH


def test_a_transit_frame_that_does_not_match_is_no_link() -> None:
    session = _started()
    movement = Measured(yaw=0.0, pitch=25.0, roll=0.0)
    # A transit frame beyond the range (custom thresholds) linked and scoring low stays POSE_NOT_MET, unverified.
    t = replace(T, compare_max_angle=12.0, tilt_pitch=30.0)
    session = replace(session, thresholds=t)
    session, _, _ = _show(session, 1.2, pitch=11.0, similarity=99.0, frame_id="up11")
    now = _at(1.5)
    reserved, _ = reserve_frame(session, now)
    evaluation = FrameEvaluation(
        frame_id="up20",
        step_index=1,
        reason=ReasonCode.POSE_NOT_MET,
        measured=Measured(yaw=0.0, pitch=20.0, roll=0.0),
        mirrored=False,
        frame_key="k/up20",
        comparison=FaceComparison(OTHER_PERSON_CLOSEST, "measured"),
        comparable=False,
        movement=Measured(yaw=0.0, pitch=20.0, roll=0.0),
        link=link_for(reserved, Measured(yaw=0.0, pitch=20.0, roll=0.0), now, t),
        chained=True,
        transit=True,
    )
    assert evaluation.link is not None
    after, record = apply_frame(reserved, evaluation, now, t.min_similarity)
    assert record.reason is ReasonCode.POSE_NOT_MET and after.is_open
    assert [frame.frame_id for frame in after.verified] == ["up11"]
    assert link_for(after, movement, now, t) is not None and link_for(after, movement, now, t).frame_id == "up11"


def test_the_item_keeps_a_bounded_number_of_verified_frames() -> None:
    session = _started()
    for index in range(MAX_VERIFIED_KEPT + 4):
        session, _, _ = _show(
            session, 1.2 + index * 0.1, pitch=11.0 + index * 0.1, similarity=99.0, frame_id=f"v{index}"
        )
    assert len(session.verified) == MAX_VERIFIED_KEPT and session.verified[-1].frame_id == f"v{MAX_VERIFIED_KEPT + 3}"


def test_a_pose_robust_analyzer_has_no_chain() -> None:
    """Rekognition (pose_robust_comparison): the service compares every frame with the reference, any low
    score is FACE_MISMATCH (comparable at any pose), and nothing joins a chain."""
    session = _started()
    now = _at(1.5)
    reserved, _ = reserve_frame(session, now)
    far = FrameEvaluation(
        frame_id="far",
        step_index=1,
        reason=None,
        measured=Measured(yaw=0.0, pitch=40.0, roll=0.0),
        mirrored=False,
        frame_key="k/far",
        comparison=FaceComparison(40.0, "rekognition"),
        comparable=True,
        movement=Measured(yaw=0.0, pitch=40.0, roll=0.0),
    )
    after, record = apply_frame(reserved, far, now, T.min_similarity)
    assert record.reason is ReasonCode.FACE_MISMATCH and after.failure_reason is FailureReason.FACE_MISMATCH
    assert after.verified == ()


def test_transit_is_toward_the_steps_direction_only() -> None:
    def pose(yaw: float, pitch: float) -> Measured:
        return Measured(yaw=yaw, pitch=pitch, roll=0.0)

    least = TRANSIT_MIN_DEGREES
    assert in_transit(StepCode.LOOK_UP, pose(0.0, least), T) and not in_transit(
        StepCode.LOOK_UP, pose(0.0, least - 0.1), T
    )
    assert not in_transit(StepCode.LOOK_UP, pose(0.0, -12.0), T)  # the other way
    assert in_transit(StepCode.TURN_RIGHT, pose(-14.0, 0.0), T) and not in_transit(StepCode.TURN_LEFT, pose(-14, 0), T)
    assert not in_transit(StepCode.LOOK_UP, pose(25.0, 12.0), T)  # off axis
    assert not in_transit(StepCode.SMILE, pose(0.0, 12.0), T)  # expressions have no direction


def test_the_chain_bounds_are_settings_and_checked() -> None:
    tuned = Settings.from_env({"LINK_MAX_DEGREES": "10", "LINK_MAX_SECONDS": "1.5", "MAX_LINK_HOPS": "2"}).thresholds
    assert (tuned.link_max_angle, tuned.link_max_seconds, tuned.max_link_hops) == (10.0, 1.5, 2.0)
    assert threshold_problems(replace(T, link_max_angle=0.0)) == []  # 0: no chain
    for broken in (replace(T, link_max_angle=-1.0), replace(T, link_max_seconds=0.0), replace(T, max_link_hops=0.5)):
        assert any("LINK_MAX_DEGREES" in problem for problem in threshold_problems(broken))
    # A session stored before the chain existed keeps its rules: no links.
    assert Thresholds.from_json({"turn_yaw": 25.0}).link_max_angle == 0.0
