"""Sessions through the real resolver: routing, validation, error shapes, storage and the archive.

The analyzer is scripted (it sits across the network); frames are real JPEGs; storage is moto or files.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import cv2
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from liveness.challenges import StepCode, Thresholds
from liveness.faces import BoolAttribute
from liveness.limits import SessionLimits
from liveness.sessions.keys import audit_key, face_crop_key, reference_face_key
from liveness.settings import Settings
from moto import mock_aws

from testkit.aws import OTHER, OWNER
from testkit.faces import face, face_for
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    Rig,
    S3PutWatch,
    aws,
    aws_rig,
    data_url,
    drawn_codes,
    fake_aws_env,
    file_rig,
    look_straight,
    pass_light,
    rig,
    seeded_session,
    start_session,
    step_codes,
    wrong_face_for,
)


def _audit(rig: Rig, session_id: str) -> dict[str, Any]:
    raw = rig.stored(audit_key(session_id))
    assert raw is not None, "no audit record"
    return json.loads(raw)


_seeded = seeded_session  # the neutral start, then the chosen steps


def _pass_all(rig: Rig, created: dict[str, Any], *, mirrored: bool = False) -> list[Any]:
    """Answer every step in order, the neutral start included: frame ``index`` has seed ``index``."""
    replies = []
    for index, code in enumerate(step_codes(created)):
        rig.clock.advance(2)
        if code == "FOLLOW_LIGHT":  # as a person does it: the colours, then one batch
            replies.append(pass_light(rig, created["sessionId"]))
            continue
        rig.analyzer.script(face_for(code, mirrored=mirrored))
        replies.append(rig.client.frame(created["sessionId"], seed=index, **({"mirrored": True} if mirrored else {})))
    return replies


# --- create ------------------------------------------------------------------------------------------------


def test_create_returns_the_challenge(rig: Rig) -> None:
    reply = rig.client.create()
    assert reply.status == 201
    body = reply.body
    assert str(uuid.UUID(body["sessionId"])) == body["sessionId"]
    # The neutral start, the light step (LIGHT_CHALLENGE enforce, the default), then the 3 drawn steps (STEP_COUNT
    # counts the drawn ones).
    assert len(body["steps"]) == 1 + 1 + 3 and len({step["code"] for step in body["steps"]}) == 1 + 1 + 3
    assert body["steps"][0] == {"index": 0, "code": "LOOK_STRAIGHT", "instruction": "Look straight at the camera."}
    assert body["steps"][1]["code"] == "FOLLOW_LIGHT" and body["lightChallenge"] == "enforce"
    assert "LOOK_STRAIGHT" not in drawn_codes(body) and [step["index"] for step in body["steps"]] == [0, 1, 2, 3, 4]
    assert all(step["instruction"] for step in body["steps"])
    assert body["maxFrames"] == 60 and body["stepMaxFrames"] == 30
    assert body["currentStep"] == 0 and body["status"] == "IN_PROGRESS"
    assert body["expiresAt"] == "2026-11-03T09:02:00+00:00" and body["stepTimeLimitSeconds"] == 10
    assert body["frameConstraints"] == {
        "formats": ["image/jpeg", "image/png"],
        "maxBytes": 6 * 1024 * 1024,
        "recommendedWidth": 640,
        "recommendedHeight": 480,
    }
    stored = rig.store.get(body["sessionId"])
    assert stored.owner == OWNER and [step.code.value for step in stored.steps] == step_codes(body)


def test_create_honours_count_and_head_movements_only(aws: Rig) -> None:
    body = start_session(aws, steps=4, excludeExpressions=True)
    assert sorted(drawn_codes(body)) == ["LOOK_DOWN", "LOOK_UP", "TURN_LEFT", "TURN_RIGHT"]
    assert step_codes(body)[0] == "LOOK_STRAIGHT"  # the neutral start is not one of the 4 asked for
    assert len(drawn_codes(start_session(aws, steps=5))) == 5
    too_many = aws.client.create(steps=5, excludeExpressions=True)
    assert too_many.status == 400 and too_many.body["code"] == "INVALID_REQUEST"


def test_a_client_cannot_choose_steps(aws: Rig) -> None:
    for body in ({"steps": ["SMILE", "SMILE"]}, {"stepCodes": ["SMILE"]}, {"steps": 1}, {"steps": 6}):
        reply = aws.client.call("POST", "/sessions", body)
        assert reply.status == 400 and reply.body["code"] == "INVALID_REQUEST", body


def test_step_count_is_the_minimum_a_client_may_ask_for(fake_aws_env: None, tmp_path: Path) -> None:
    with mock_aws():
        rig = aws_rig(Settings(session_limits=SessionLimits(step_count=4)))
        assert len(drawn_codes(start_session(rig))) == 4  # the default is the minimum (after the neutral start)
        assert len(drawn_codes(start_session(rig, steps=5))) == 5  # more is fine
        fewer = rig.client.create(steps=3)
        assert (fewer.status, fewer.body["code"]) == (400, "INVALID_REQUEST")
        assert fewer.body["message"] == "Invalid request: steps must be at least 4 (this deployment's minimum)."
        assert len(drawn_codes(start_session(rig, excludeExpressions=True))) == 4

        strict = file_rig(tmp_path, Settings(session_limits=SessionLimits(step_count=5)))
        impossible = strict.client.create(excludeExpressions=True)  # only 4 head movements exist
        assert (impossible.status, impossible.body["code"]) == (400, "INVALID_REQUEST")
        assert "at least 5 steps, but only 4 are available without expressions" in impossible.body["message"]


def test_the_default_minimum_refuses_two_steps(aws: Rig) -> None:
    reply = aws.client.create(steps=2)
    assert (reply.status, reply.body["code"]) == (400, "INVALID_REQUEST")
    assert "at least 3" in reply.body["message"]


# --- a passing session -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_passing_session(rig: Rig, mirrored: bool) -> None:
    created = start_session(rig, mirrored=mirrored)
    session_id = created["sessionId"]
    replies = []
    for index, code in enumerate(step_codes(created)):
        rig.clock.advance(3)
        if code == "FOLLOW_LIGHT":  # the colours, then one batch of frames lit by them
            replies.append(pass_light(rig, session_id))
            continue
        rig.analyzer.script(face_for(code, mirrored=mirrored))  # the session default says how frames come
        replies.append(rig.client.frame(session_id, seed=index))
    # The neutral start, the light step, then the 3 drawn steps.
    assert [reply.status for reply in replies] == [200] * 5
    assert [reply.body["verdict"] for reply in replies] == ["ACCEPTED"] * 5
    assert [reply.body["stepIndex"] for reply in replies] == [0, 1, 2, 3, 4]
    assert [reply.body["stepCode"] for reply in replies] == ["LOOK_STRAIGHT", "FOLLOW_LIGHT", *drawn_codes(created)]
    assert [reply.body["status"] for reply in replies] == ["IN_PROGRESS"] * 4 + ["PASSED"]
    assert replies[0].body["similarity"] is None
    assert [reply.body["similarity"] for reply in replies[1:]] == [99.0] * 4
    assert replies[1].body["measured"]["light"]["outcome"] == "PASSED"
    # The neutral frame's pose is the baseline (a frontal face: 0/0/0), answered from then on.
    assert [reply.body["baseline"] for reply in replies] == [{"yaw": 0.0, "pitch": 0.0, "roll": 0.0}] * 5
    assert replies[4].body["sessionVerdict"] == {
        "status": "PASSED",
        "livenessPassed": True,
        "samePersonCheck": "passed",
        "samePersonVerified": True,
    }
    # CompareFaces for the light batch and each drawn step's frame, against the neutral one
    assert len(rig.analyzer.compare_calls) == 4

    got = rig.client.get(session_id)
    assert got.status == 200
    body = got.body
    assert body["status"] == "PASSED" and body["samePersonCheck"] == "passed" and body["analyzer"] == "scripted"
    assert [step["status"] for step in body["steps"]] == ["PASSED"] * 5
    assert [step["completedAt"] for step in body["steps"]] == [
        "2026-11-03T09:00:03+00:00",
        "2026-11-03T09:00:06+00:00",
        "2026-11-03T09:00:09+00:00",
        "2026-11-03T09:00:12+00:00",
        "2026-11-03T09:00:15+00:00",
    ]
    assert [step["framesReceived"] for step in body["steps"]] == [1] * 5  # the light batch takes one slot
    stored = rig.store.get(session_id)
    assert stored.baseline is not None and (stored.baseline.yaw, stored.baseline.pitch) == (0.0, 0.0)
    frame_ids = [reply.body["frameId"] for reply in replies]
    reference = base64.b64decode(body["referenceFace"]["base64"])
    # The reference face is the neutral frame's crop (the first accepted frame), written before the save that
    # named it.
    assert reference.startswith(b"\xff\xd8\xff")
    assert body["referenceFace"]["key"] == f"sessions/{session_id}/frames/{frame_ids[0]}-face.jpg"
    assert reference_face_key(session_id, frame_ids[0]) == face_crop_key(session_id, frame_ids[0])
    assert rig.stored(face_crop_key(session_id, frame_ids[0])) == reference

    challenge_id = rig.store.get(session_id).light_attempts[0].challenge_id
    light_keys = rig.keys(f"sessions/{session_id}/light/{challenge_id}/")
    assert len(light_keys) == 12  # every frame of the light batch
    assert rig.keys(f"sessions/{session_id}/") == sorted(
        [f"sessions/{session_id}/frames/{frame_id}.jpg" for i, frame_id in enumerate(frame_ids) if i != 1]
        + [face_crop_key(session_id, frame_ids[0])]
        + light_keys
    )
    # The audit record lives apart from the selfies, so it can be kept longer.
    assert audit_key(session_id) == f"audit/sessions/{session_id}.json"
    assert rig.keys("audit/") == [audit_key(session_id)]
    audit = _audit(rig, session_id)
    assert audit["verdict"]["livenessPassed"] is True and audit["samePersonCheck"] == "passed"
    assert [frame["frameId"] for frame in audit["frames"]] == frame_ids
    assert audit["referenceFaceKey"] == face_crop_key(session_id, frame_ids[0]) and audit["owner"] == OWNER
    # digests only, never image data (the light batch's frames are archived under its challenge instead)
    assert [len(frame["sha256"] or "") for frame in audit["frames"]] == [64, 0, 64, 64, 64]
    assert audit["frames"][1]["frameKey"] == f"sessions/{session_id}/light/{challenge_id}/"
    assert audit["light"]["mode"] == "enforce" and audit["light"]["attempts"][0]["outcome"] == "PASSED"
    assert audit["thresholds"]["min_similarity"] == 90.0 and audit["analyzer"] == "scripted"
    # The baseline every movement was judged from: the neutral frame's pose and face aspect.
    assert {key: audit["baseline"][key] for key in ("yaw", "pitch", "roll")} == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    assert audit["baseline"]["faceAspect"] > 0


def test_the_archived_frame_is_the_upload_itself(aws: Rig) -> None:
    created = start_session(aws)
    aws.analyzer.script(face_for(step_codes(created)[0]))
    reply = aws.client.frame(created["sessionId"], seed=7)
    stored = aws.stored(f"sessions/{created['sessionId']}/frames/{reply.body['frameId']}.jpg")
    assert stored == base64.b64decode(data_url(7).split(",", 1)[1])


# --- frames that miss -------------------------------------------------------------------------------------


GATE_FAILURES = {
    "NO_FACE": lambda good: [],
    "MULTIPLE_FACES": lambda good: [good, good],
    "LOW_CONFIDENCE": lambda good: [replace(good, confidence=50.0)],
    "FACE_TOO_SMALL": lambda good: [replace(good, bounding_box=replace(good.bounding_box, width=0.1))],
    "LOW_QUALITY": lambda good: [replace(good, quality=replace(good.quality, brightness=5.0))],
    "FACE_OCCLUDED": lambda good: [replace(good, face_occluded=BoolAttribute(True, 95.0))],
    "SUNGLASSES": lambda good: [replace(good, sunglasses=BoolAttribute(True, 95.0))],
}


@pytest.mark.parametrize("reason", sorted(GATE_FAILURES))
def test_each_gate_rejects_with_its_reason(aws: Rig, reason: str) -> None:
    created = start_session(aws)
    # The face performs the step perfectly; only the gate can reject it.
    aws.analyzer.script(GATE_FAILURES[reason](face_for(step_codes(created)[0])))
    reply = aws.client.frame(created["sessionId"])
    assert reply.status == 200
    assert reply.body["verdict"] == "REJECTED" and reply.body["reasonCode"] == reason and reply.body["message"]
    assert reply.body["status"] == "IN_PROGRESS" and reply.body["currentStep"] == 0
    stored = aws.store.get(created["sessionId"])
    assert stored.frames_received == 1 and stored.steps[0].reason == reason and stored.reference_frame_id is None
    assert aws.analyzer.compare_calls == []
    aws.analyzer.script(face_for(step_codes(created)[0]))  # the same face without the defect passes
    assert aws.client.frame(created["sessionId"], seed=1).body["verdict"] == "ACCEPTED"


OPPOSITE = {"TURN_LEFT": "TURN_RIGHT", "TURN_RIGHT": "TURN_LEFT", "LOOK_UP": "LOOK_DOWN", "LOOK_DOWN": "LOOK_UP"}
# What the helper faces of face_for() measure, in the user's view (unmirrored session): yaw > 0 = their left.
ANGLES = {"TURN_LEFT": (35.0, 0.0), "TURN_RIGHT": (-35.0, 0.0), "LOOK_UP": (0.0, 22.0), "LOOK_DOWN": (0.0, -22.0)}


def test_wrong_direction_reports_the_measured_angles(aws: Rig) -> None:
    created = start_session(aws, steps=4, excludeExpressions=True)
    session_id, codes = created["sessionId"], drawn_codes(created)
    look_straight(aws, session_id)  # a frontal baseline: the movement is the measured pose
    shown = OPPOSITE[codes[0]]
    aws.analyzer.script(face_for(shown))
    reply = aws.client.frame(session_id)
    assert reply.body["verdict"] == "REJECTED" and reply.body["reasonCode"] == "POSE_NOT_MET"
    yaw, pitch = ANGLES[shown]
    assert reply.body["measured"] == {
        "yaw": yaw,
        "pitch": pitch,
        "roll": 0.0,
        "smile": 5.0,  # Smile=false at 95% confidence: 5% that the user smiles
        "mouthOpen": 5.0,
        "eyesClosed": 5.0,
        "faceConfidence": 99.9,
        "faceWidth": 0.35,
        "brightness": 80.0,
        "sharpness": 60.0,
        "faceAspect": 0.97,  # the box's height over width in pixels: 0.455 x 480 / (0.35 x 640)
        "movement": {"yaw": yaw, "pitch": pitch, "roll": 0.0},  # what the rule judged: the pose minus the baseline
    }


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_frame_may_repeat_the_sessions_mirroring(aws: Rig, mirrored: bool) -> None:
    created = start_session(aws, mirrored=mirrored)
    replies = _pass_all(aws, created, mirrored=mirrored)  # every frame says mirrored=<the session's value>
    # the neutral start, the light step and 3 drawn steps
    assert [reply.body["verdict"] for reply in replies] == ["ACCEPTED"] * 5
    assert aws.store.get(created["sessionId"]).status.value == "PASSED"


@pytest.mark.parametrize("session_mirrored", [False, True])
def test_a_frame_cannot_change_the_mirroring(rig: Rig, session_mirrored: bool) -> None:
    created = start_session(rig, mirrored=session_mirrored)
    reply = rig.client.frame(created["sessionId"], mirrored=not session_mirrored)
    assert (reply.status, reply.body["code"]) == (400, "INVALID_REQUEST")
    assert "mirrored is fixed when the session is created" in reply.body["message"]
    stored = rig.store.get(created["sessionId"])
    assert stored.version == 1 and stored.frames_received == 0 and rig.analyzer.detect_calls == 0


def test_a_turn_cannot_be_reversed_by_declaring_the_frame_mirrored(aws: Rig) -> None:
    """The attack: see TURN_LEFT, turn RIGHT, and claim the frame is mirrored so the right turn reads as left."""
    session_id = _seeded(aws, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)
    neutral = look_straight(aws, session_id)
    right_turn = face_for("TURN_RIGHT")  # raw yaw -35: the user turned to their own right
    aws.analyzer.script(right_turn)
    attack = aws.client.frame(session_id, mirrored=True)
    assert (attack.status, attack.body["code"]) == (400, "INVALID_REQUEST")
    aws.analyzer.script(right_turn)
    honest = aws.client.frame(session_id, seed=1)
    assert honest.body["verdict"] == "REJECTED" and honest.body["reasonCode"] == "POSE_NOT_MET"
    assert honest.body["measured"]["yaw"] == -35.0 and honest.body["currentStep"] == 1
    stored = aws.store.get(session_id)
    assert stored.current_step == 1 and stored.frames_received == 2
    assert stored.reference_frame_id == neutral.body["frameId"]  # the refused frames changed nothing


# --- one image, one step -------------------------------------------------------------------------------------


def test_one_raised_smiling_image_cannot_pass_look_up_then_smile(aws: Rig) -> None:
    """A static photo, chin up 18 degrees and smiling: it may answer LOOK_UP, never also the SMILE after it."""
    session_id = _seeded(aws, StepCode.LOOK_UP, StepCode.SMILE, StepCode.TURN_LEFT)
    photo = face(pitch=18.0, smile=True)
    look_straight(aws, session_id)
    aws.analyzer.script(photo, photo)
    assert aws.client.frame(session_id).body["verdict"] == "ACCEPTED"
    aws.clock.advance(1)
    second = aws.client.frame(session_id, seed=1).body
    assert second["verdict"] == "REJECTED" and second["reasonCode"] == "EXPRESSION_NOT_MET"
    assert second["stepCode"] == "SMILE" and second["currentStep"] == 2 and "camera" in second["message"]


def test_a_frame_that_also_meets_the_previous_step_is_rejected(rig: Rig) -> None:
    session_id = _seeded(rig, StepCode.SMILE, StepCode.OPEN_MOUTH, StepCode.LOOK_UP)
    grin = face(smile=True, mouth_open=True)  # a wide grin is a smile AND an open mouth
    look_straight(rig, session_id)  # not an earlier step for this rule: every expression is made near it
    rig.analyzer.script(grin, grin, face(mouth_open=True))
    assert rig.client.frame(session_id).body["verdict"] == "ACCEPTED"
    held = rig.client.frame(session_id, seed=1).body
    assert held["verdict"] == "REJECTED" and held["reasonCode"] == "PREVIOUS_STEP_HELD"
    assert held["message"].startswith("Release the earlier movements") and held["currentStep"] == 2
    changed = rig.client.frame(session_id, seed=2).body  # the smile released, the mouth still open
    assert changed["verdict"] == "ACCEPTED" and changed["stepCode"] == "OPEN_MOUTH"
    # The SMILE and OPEN_MOUTH frames were compared with the neutral reference; the held frame never was: it did not
    # meet its step.
    assert len(rig.analyzer.compare_calls) == 2


def test_one_photo_cannot_pass_two_non_adjacent_steps(rig: Rig) -> None:
    """The reviewer's case: [SMILE, TURN_LEFT, OPEN_MOUTH], a grinning photo, another frame, the photo again."""
    session_id = _seeded(rig, StepCode.SMILE, StepCode.TURN_LEFT, StepCode.OPEN_MOUTH)
    grin = face(smile=True, mouth_open=True)
    photo = data_url(7)
    look_straight(rig, session_id)
    rig.analyzer.script(grin, face(yaw=35), grin)
    assert rig.client.frame(session_id, image=photo).body["verdict"] == "ACCEPTED"
    assert rig.client.frame(session_id, seed=8).body["verdict"] == "ACCEPTED"
    again = rig.client.frame(session_id, image=photo).body  # the very same bytes
    assert again["verdict"] == "REJECTED" and again["reasonCode"] == "REPEATED_FRAME" and again["currentStep"] == 3
    assert again["message"].startswith("This exact image was already sent")
    # A cropped copy: other bytes, but the analyzer sees the same grin, which still meets SMILE two steps back.
    rig.analyzer.script(grin)
    crop = rig.client.frame(session_id, seed=9).body
    assert crop["verdict"] == "REJECTED" and crop["reasonCode"] == "PREVIOUS_STEP_HELD", crop
    assert rig.client.get(session_id).body["status"] == "IN_PROGRESS"
    stored = rig.store.get(session_id)
    assert stored.current_step == 3 and stored.frames[3].sha256 == stored.frames[1].sha256
    assert len(rig.analyzer.compare_calls) == 2  # the two accepted steps; neither refused frame was compared
    rig.analyzer.script(face(mouth_open=True))
    assert rig.client.frame(session_id, seed=10).body["status"] == "PASSED"  # a real new frame still can


def test_a_frame_is_judged_with_the_thresholds_stored_at_creation_and_audited_with_them(rig: Rig) -> None:
    created = start_session(rig)
    session_id, codes = created["sessionId"], step_codes(created)
    created_with = rig.deps.settings.thresholds
    # The deployment changes its settings while the session runs (a new Lambda version, say).
    rig.deps.settings = replace(
        rig.deps.settings,
        thresholds=replace(created_with, turn_yaw=60.0, tilt_pitch=60.0, expression_confidence=99.9),
        session_limits=replace(rig.deps.settings.session_limits, max_frames=7),
    )
    replies = _pass_all(rig, created)  # face_for() meets the creation-time thresholds, not the new ones
    assert [reply.body["verdict"] for reply in replies] == ["ACCEPTED"] * 5
    audit = _audit(rig, session_id)
    assert audit["thresholds"] == created_with.to_json() and audit["thresholds"]["turn_yaw"] == 25.0
    assert audit["thresholds"]["neutral_max_angle"] == 20.0 and audit["thresholds"]["compare_max_angle"] == 25.0
    assert audit["limits"]["maxFrames"] == 60 and audit["limits"]["stepMaxFrames"] == 30
    assert rig.store.get(session_id).thresholds == created_with
    assert codes  # the steps were the drawn ones


def test_a_get_of_a_passed_session_reads_only_keys_that_exist(aws: Rig) -> None:
    """Real S3 answers GetObject on a missing key with 403 AccessDenied when the role lacks s3:ListBucket (moto
    answers 404). GET must never ask for a key that may be missing."""
    s3 = aws.deps.archive.client
    asked: list[str] = []

    def missing_is_access_denied(params: dict[str, Any], **_: Any) -> Any:
        path = unquote(params["url_path"].split("?", 1)[0]).lstrip("/")  # virtual-host or path style
        key = path.removeprefix("liveness-archive/")
        asked.append(key)
        try:
            s3.head_object(Bucket="liveness-archive", Key=key)
            return None
        except ClientError:
            error = {"Code": "AccessDenied", "Message": "Access Denied"}
            return AWSResponse(None, 403, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}

    s3.meta.events.register("before-call.s3.GetObject", missing_is_access_denied)
    created = start_session(aws)
    replies = _pass_all(aws, created)
    assert [reply.status for reply in replies] == [200] * 5
    got = aws.client.get(created["sessionId"])
    assert got.status == 200 and got.body["status"] == "PASSED" and got.body["referenceFace"]["base64"]
    assert asked and all(key.endswith(f"{replies[0].body['frameId']}-face.jpg") for key in asked)


def test_a_committed_verdict_is_answered_even_if_the_audit_write_then_fails(aws: Rig) -> None:
    watch = S3PutWatch(aws.deps.archive.client, "audit/")
    created = start_session(aws)
    watch.failing = True
    replies = _pass_all(aws, created)
    assert [reply.status for reply in replies] == [200] * 5 and replies[-1].body["status"] == "PASSED"
    assert watch.puts == 1 and aws.store.get(created["sessionId"]).audit_written is False


# --- same person -------------------------------------------------------------------------------------------


def test_a_person_swap_fails_the_session(rig: Rig) -> None:
    # A swap at an expression, near the baseline, where the comparison is reliable (see COMPARE_MAX_DEGREES).
    session_id = _seeded(rig, StepCode.SMILE, StepCode.TURN_LEFT, StepCode.LOOK_UP)
    look_straight(rig, session_id)
    rig.analyzer.similarity = 31.5
    rig.analyzer.script(face_for(StepCode.SMILE))
    swap = rig.client.frame(session_id, seed=1)
    assert swap.status == 200
    assert (
        swap.body["verdict"] == "REJECTED"
        and swap.body["reasonCode"] == "FACE_MISMATCH"
        and swap.body["similarity"] == 31.5
    )
    assert swap.body["status"] == "FAILED" and swap.body["failureReason"] == "FACE_MISMATCH"
    assert swap.body["samePersonCheck"] == "failed"
    audit = _audit(rig, session_id)
    assert audit["status"] == "FAILED" and audit["failureReason"] == "FACE_MISMATCH"
    assert audit["frames"][-1]["similarity"] == 31.5
    assert rig.client.get(session_id).body["referenceFace"] is None  # only a PASSED session shows it


def test_an_unavailable_comparison_is_flagged_in_verdict_and_audit(aws: Rig) -> None:
    aws.analyzer.similarity = None
    created = start_session(aws)
    replies = _pass_all(aws, created)
    assert replies[-1].body["status"] == "PASSED"
    assert replies[-1].body["samePersonCheck"] == "not_performed"
    assert replies[-1].body["sessionVerdict"]["samePersonVerified"] is False
    got = aws.client.get(created["sessionId"]).body
    assert got["samePersonCheck"] == "not_performed" and got["verdict"]["samePersonVerified"] is False
    assert _audit(aws, created["sessionId"])["samePersonCheck"] == "not_performed"


# --- time and attempts -------------------------------------------------------------------------------------


def test_step_timeout_fails_the_session(rig: Rig) -> None:
    created = start_session(rig)
    session_id, codes = created["sessionId"], step_codes(created)
    rig.analyzer.script(face_for(codes[0]))
    rig.client.frame(session_id)  # step 1 starts now
    rig.clock.advance(10.5)
    detect_calls = rig.analyzer.detect_calls
    late = rig.client.frame(session_id, seed=1)
    assert late.status == 409 and late.body["code"] == "SESSION_CLOSED" and "STEP_TIMEOUT" in late.body["message"]
    assert rig.analyzer.detect_calls == detect_calls  # a closed session costs no analysis
    stored = rig.store.get(session_id)
    assert stored.status.value == "FAILED" and stored.failure_reason.value == "STEP_TIMEOUT"
    assert stored.steps[1].status.value == "FAILED" and stored.frames_received == 1
    assert _audit(rig, session_id)["failureReason"] == "STEP_TIMEOUT"


def test_expiry_is_persisted_and_answered_with_session_closed(rig: Rig) -> None:
    created = start_session(rig)
    session_id = created["sessionId"]
    rig.clock.advance(120)
    late = rig.client.frame(session_id)
    assert late.status == 409 and late.body["code"] == "SESSION_CLOSED" and "EXPIRED" in late.body["message"]
    assert rig.store.get(session_id).status.value == "EXPIRED"
    assert _audit(rig, session_id)["status"] == "EXPIRED"
    assert rig.keys(f"sessions/{session_id}/frames/") == []  # never analysed, never archived


def test_get_reports_and_persists_expiry(aws: Rig) -> None:
    created = start_session(aws)
    assert aws.client.get(created["sessionId"]).body["status"] == "IN_PROGRESS"
    aws.clock.advance(121)
    body = aws.client.get(created["sessionId"]).body
    assert body["status"] == "EXPIRED" and body["failureReason"] == "SESSION_EXPIRED"
    assert aws.store.get(created["sessionId"]).status.value == "EXPIRED"
    assert _audit(aws, created["sessionId"])["status"] == "EXPIRED"


def test_attempt_cap_fails_the_session(aws: Rig) -> None:
    """The session's budget (SESSION_MAX_FRAMES, 60) spread over its steps, none of which uses up its own (30):
    the neutral start at once, 19 misses and a hit on each of two drawn steps, then 19 misses on the last."""
    # The frame budgets are what this is about: no light step (its batch takes one slot like a frame).
    aws.deps.settings = replace(aws.deps.settings, light_challenge="off")
    created = start_session(aws)
    session_id, codes = created["sessionId"], drawn_codes(created)
    # Half-turned and half-raised: too little for a turn or a tilt, too much off-axis for the other; neutral face.
    aws.analyzer.default_faces = [wrong_face_for("any")]
    plan = [StepCode.LOOK_STRAIGHT] + ([None] * 19 + [codes[0]]) + ([None] * 19 + [codes[1]]) + [None] * 19
    assert len(plan) == 60
    replies = []
    for index, code in enumerate(plan):
        if code is not None:
            aws.analyzer.script(face_for(code))
        aws.clock.advance(0.1)
        replies.append(aws.client.frame(session_id, seed=index))
    assert [reply.body["verdict"] for reply in replies] == ["ACCEPTED" if code else "REJECTED" for code in plan]
    statuses = [reply.body["status"] for reply in replies]
    assert statuses[:59] == ["IN_PROGRESS"] * 59 and statuses[59] == "FAILED"
    stored = aws.store.get(session_id)
    assert stored.failure_reason.value == "ATTEMPT_LIMIT" and stored.frames_received == 60 and len(stored.frames) == 60
    assert stored.current_step == 3 and stored.steps[3].frames_received == 19  # not the step's budget: the session's
    assert [step.frames_received for step in stored.steps] == [1, 20, 20, 19]
    # Every frame archived, plus the neutral frame's face crop (the reference).
    assert len(aws.keys(f"sessions/{session_id}/frames/")) == 60 + 1
    late = aws.client.frame(session_id, seed=99)
    assert late.status == 409 and late.body["code"] == "SESSION_CLOSED" and "ATTEMPT_LIMIT" in late.body["message"]


def test_a_closed_session_answers_409_whatever_the_mirroring(rig: Rig) -> None:
    created = start_session(rig, mirrored=False)
    rig.clock.advance(500)
    reply = rig.client.frame(created["sessionId"], mirrored=True)
    assert (reply.status, reply.body["code"]) == (409, "SESSION_CLOSED")  # not 400: closed is checked first
    assert rig.store.get(created["sessionId"]).status.value == "EXPIRED" and rig.analyzer.detect_calls == 0


def test_replay_into_a_closed_session_changes_nothing(rig: Rig) -> None:
    created = start_session(rig)
    session_id = created["sessionId"]
    _pass_all(rig, created)
    before = rig.store.get(session_id)
    keys = rig.keys(f"sessions/{session_id}/")
    audit = rig.stored(audit_key(session_id))
    rig.analyzer.script(face_for(step_codes(created)[-1]))
    replay = rig.client.frame(session_id, seed=len(step_codes(created)) - 1)  # the very frame that passed the last step
    assert replay.status == 409 and replay.body["code"] == "SESSION_CLOSED" and replay.body["requestId"]
    assert rig.store.get(session_id) == before
    assert rig.keys(f"sessions/{session_id}/") == keys and rig.stored(audit_key(session_id)) == audit


# --- ownership and malformed input -------------------------------------------------------------------------


def test_another_users_session_is_not_found(rig: Rig) -> None:
    created = start_session(rig)
    session_id = created["sessionId"]
    intruder = rig.as_user(OTHER)
    rig.analyzer.script(face_for(step_codes(created)[0]))
    for reply in (intruder.get(session_id), intruder.frame(session_id)):
        assert reply.status == 404 and reply.body["code"] == "SESSION_NOT_FOUND"
    unknown = rig.client.get(str(uuid.uuid4()))
    assert unknown.status == 404 and unknown.body == {**unknown.body, "code": "SESSION_NOT_FOUND"}
    assert rig.store.get(session_id).frames_received == 0 and rig.analyzer.detect_calls == 0


@pytest.mark.parametrize(
    "method,path", [("POST", "/sessions"), ("GET", "/sessions/{id}"), ("POST", "/sessions/{id}/frames")]
)
def test_no_caller_identity_is_unauthorized(aws: Rig, method: str, path: str) -> None:
    created = start_session(aws)
    reply = aws.client.call(method, path.format(id=created["sessionId"]), {"image": data_url()}, sub=None)
    assert reply.status == 401 and reply.body["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "path,raw,code",
    [
        ("/sessions", "{not json", "INVALID_JSON"),
        ("/sessions", "", "INVALID_JSON"),
        ("/sessions", "[]", "INVALID_REQUEST"),
        ("/sessions", '{"steps": "three"}', "INVALID_REQUEST"),
        ("/sessions", '{"mirrored": "yes"}', "INVALID_REQUEST"),
        ("/sessions", '{"excludeExpressions": 1}', "INVALID_REQUEST"),
        ("/sessions/{id}/frames", "{not json", "INVALID_JSON"),
        ("/sessions/{id}/frames", "{}", "INVALID_REQUEST"),
        ("/sessions/{id}/frames", '{"image": 42}', "INVALID_REQUEST"),
        ("/sessions/{id}/frames", '{"image": ""}', "INVALID_REQUEST"),
        ("/sessions/{id}/frames", '{"image": "%%%not-base64%%%"}', "INVALID_IMAGE"),
        ("/sessions/{id}/frames", '{"image": "aGVsbG8gd29ybGQ="}', "UNSUPPORTED_MEDIA_TYPE"),
        ("/sessions/{id}/frames", '{"image": "data:image/gif;base64,R0lGOD"}', "UNSUPPORTED_MEDIA_TYPE"),
        ("/sessions/{id}/frames", '{"image": "x", "mirrored": "no"}', "INVALID_REQUEST"),
    ],
)
def test_malformed_bodies(aws: Rig, path: str, raw: str, code: str) -> None:
    created = start_session(aws)
    reply = aws.client.call("POST", path.format(id=created["sessionId"]), raw_body=raw)
    assert reply.status in (400, 415) and reply.body["code"] == code, reply.body
    assert set(reply.body) == {"code", "message", "requestId"}
    stored = aws.store.get(created["sessionId"])
    assert stored.frames_received == 0 and stored.version == 1 and aws.analyzer.detect_calls == 0


@pytest.mark.parametrize("method,path", [("GET", "/sessions/{bad}"), ("POST", "/sessions/{bad}/frames")])
@pytest.mark.parametrize(
    "bad,status,code",
    [
        ("not-a-uuid", 400, "INVALID_REQUEST"),
        ("..", 400, "INVALID_REQUEST"),  # no path tricks reach a store
        ("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 400, "INVALID_REQUEST"),  # only the canonical lowercase form
        ("'; DROP TABLE", 400, "INVALID_REQUEST"),
    ],
)
def test_bad_session_ids(aws: Rig, method: str, path: str, bad: str, status: int, code: str) -> None:
    reply = aws.client.call(method, path.format(bad=bad), {"image": data_url()})
    assert (reply.status, reply.body["code"]) == (status, code), reply.body
    assert reply.body["message"] == "The session id must be a UUID."
    assert aws.analyzer.detect_calls == 0


def test_a_truncated_image_is_rejected_before_analysis(aws: Rig) -> None:
    created = start_session(aws)
    truncated = data_url()[: len(data_url()) // 2]
    truncated = truncated[: len(truncated) - len(truncated) % 4]
    reply = aws.client.call("POST", f"/sessions/{created['sessionId']}/frames", {"image": truncated})
    assert reply.status == 400 and reply.body["code"] == "INVALID_IMAGE"
    assert aws.analyzer.detect_calls == 0 and aws.keys(f"sessions/{created['sessionId']}/") == []


# --- the neutral start, the baseline, the comparison range and the step budget (issue 7) ----------------------


@pytest.mark.parametrize("first", ["TURN_LEFT", "TURN_RIGHT", "LOOK_UP", "LOOK_DOWN"])
def test_a_session_cannot_skip_the_neutral_start(rig: Rig, first: str) -> None:
    """Every created session starts with LOOK_STRAIGHT; a frame performing a drawn movement first is refused."""
    created = start_session(rig, steps=4, excludeExpressions=True)
    session_id = created["sessionId"]
    assert step_codes(created)[0] == "LOOK_STRAIGHT" and created["currentStep"] == 0
    rig.analyzer.script(face_for(first))
    reply = rig.client.frame(session_id)
    assert reply.status == 200 and reply.body["verdict"] == "REJECTED"
    assert reply.body["reasonCode"] == "NOT_LOOKING_STRAIGHT" and reply.body["stepCode"] == "LOOK_STRAIGHT"
    assert reply.body["message"] == "Look straight at the camera with your head level and a neutral face."
    assert reply.body["currentStep"] == 0 and reply.body["status"] == "IN_PROGRESS" and reply.body["baseline"] is None
    stored = rig.store.get(session_id)
    assert stored.current_step == 0 and stored.reference_frame_id is None and stored.baseline is None
    assert stored.steps[0].reason == "NOT_LOOKING_STRAIGHT" and rig.analyzer.compare_calls == []
    neutral = look_straight(rig, session_id)
    assert neutral.body["currentStep"] == 1 and neutral.body["baseline"] == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}


def test_every_created_session_starts_with_the_neutral_step(aws: Rig) -> None:
    for index, body in enumerate(({}, {"steps": 5}, {"excludeExpressions": True}, {"mirrored": True})):
        reply = aws.as_user(f"user-{index}").create(**body)  # one user may hold 3 sessions open (MAX_OPEN_SESSIONS)
        assert reply.status == 201, reply.body
        created = reply.body
        assert step_codes(created)[0] == "LOOK_STRAIGHT", body
        assert "LOOK_STRAIGHT" not in drawn_codes(created), body
        assert [step.code for step in aws.store.get(created["sessionId"]).steps][0] is StepCode.LOOK_STRAIGHT


def test_the_reference_face_is_the_neutral_frames_crop(rig: Rig) -> None:
    """Not the first frame sent (rejected), nor the first drawn step's frame: the accepted neutral frame."""
    session_id = _seeded(rig, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)
    rig.analyzer.script(face(yaw=30.0, width=0.6))  # refused: a wide, turned face
    assert rig.client.frame(session_id, seed=1).body["reasonCode"] == "NOT_LOOKING_STRAIGHT"
    rig.analyzer.script(face(width=0.5))  # the neutral frame: a crop of its own width
    neutral = rig.client.frame(session_id, seed=2).body
    assert neutral["verdict"] == "ACCEPTED" and neutral["stepCode"] == "LOOK_STRAIGHT"
    crop = rig.stored(face_crop_key(session_id, neutral["frameId"]))
    assert crop is not None and crop.startswith(b"\xff\xd8\xff")
    for index, code in enumerate(("TURN_LEFT", "SMILE", "LOOK_UP"), start=3):
        rig.analyzer.script(face_for(code))
        assert rig.client.frame(session_id, seed=index).body["verdict"] == "ACCEPTED"
    stored = rig.store.get(session_id)
    assert stored.status.value == "PASSED" and stored.reference_frame_id == neutral["frameId"]
    # Every drawn step's frame was compared with the neutral crop: its width (a face 0.5 of the frame wide), not the
    # refused frame's (0.6) nor a drawn step's (0.35).
    crop_width = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR).shape[1]
    assert 0.5 * 640 < crop_width < 0.6 * 640 * 1.3
    assert [reference for reference, _ in rig.analyzer.compare_calls] == [crop_width] * 3
    got = rig.client.get(session_id).body
    assert got["referenceFace"]["key"] == face_crop_key(session_id, neutral["frameId"])
    assert base64.b64decode(got["referenceFace"]["base64"]) == crop
    crops = [key for key in rig.keys(f"sessions/{session_id}/frames/") if key.endswith("-face.jpg")]
    assert crops == [face_crop_key(session_id, neutral["frameId"])]  # no other frame's crop is kept


@pytest.mark.parametrize(
    ("baseline_pitch", "verdict"), [(-12.0, "ACCEPTED"), (0.0, "REJECTED")], ids=["camera-below", "camera-level"]
)
def test_look_up_is_judged_from_the_baseline(rig: Rig, baseline_pitch: float, verdict: str) -> None:
    """The camera below eye level: a straight look reads pitch -12, so chin up to +5 is a 17 degree movement
    (LOOK_UP needs 15). From a camera-level straight look the same +5 is too little."""
    session_id = _seeded(rig, StepCode.LOOK_UP, StepCode.SMILE, StepCode.TURN_LEFT)
    rig.analyzer.script(face(pitch=baseline_pitch))
    neutral = rig.client.frame(session_id, seed=1).body
    assert neutral["verdict"] == "ACCEPTED" and neutral["baseline"]["pitch"] == baseline_pitch
    rig.analyzer.script(face(pitch=5.0))
    reply = rig.client.frame(session_id, seed=2).body
    assert reply["verdict"] == verdict and reply["stepCode"] == "LOOK_UP", reply
    assert reply["measured"]["pitch"] == 5.0 and reply["measured"]["movement"]["pitch"] == 5.0 - baseline_pitch
    assert reply["baseline"] == {"yaw": 0.0, "pitch": baseline_pitch, "roll": 0.0}
    if verdict == "REJECTED":
        assert reply["reasonCode"] == "POSE_NOT_MET" and reply["currentStep"] == 1


@pytest.mark.parametrize(("baseline_yaw", "verdict"), [(-12.0, "ACCEPTED"), (0.0, "REJECTED")])
def test_a_turn_is_judged_from_the_baseline_in_a_mirrored_session(rig: Rig, baseline_yaw: float, verdict: str) -> None:
    """The same in yaw, from the user's point of view in a mirrored session (raw yaw has the opposite sign)."""
    session_id = _seeded(rig, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP, mirrored=True)
    rig.analyzer.script(face(yaw=-baseline_yaw))  # raw, mirrored: the user's own baseline_yaw
    assert rig.client.frame(session_id, seed=1).body["baseline"]["yaw"] == baseline_yaw
    rig.analyzer.script(face(yaw=-14.0))  # the user's +14: a 26 degree turn to their left from -12
    reply = rig.client.frame(session_id, seed=2).body
    assert reply["verdict"] == verdict and reply["measured"]["movement"]["yaw"] == 14.0 - baseline_yaw, reply


def test_an_expression_is_judged_near_the_baseline(rig: Rig) -> None:
    """A smile made toward the person's own straight look (pitch -14 with a baseline of -12) counts, although it is
    beyond EXPRESSION_MAX_ANGLE_DEGREES from the camera; a smile at the camera, 12 degrees from it, does not."""
    session_id = _seeded(rig, StepCode.SMILE, StepCode.TURN_LEFT, StepCode.LOOK_UP)
    rig.analyzer.script(face(pitch=-12.0))
    assert rig.client.frame(session_id, seed=1).body["verdict"] == "ACCEPTED"
    rig.analyzer.script(face(pitch=0.0, smile=True))
    at_camera = rig.client.frame(session_id, seed=2).body
    assert at_camera["verdict"] == "REJECTED" and at_camera["reasonCode"] == "EXPRESSION_NOT_MET"
    rig.analyzer.script(face(pitch=-14.0, smile=True))
    near = rig.client.frame(session_id, seed=3).body
    assert (
        near["verdict"] == "ACCEPTED" and near["stepCode"] == "SMILE" and near["measured"]["movement"]["pitch"] == -2.0
    )


def test_a_low_similarity_beyond_the_compare_range_is_rejected_without_failing(rig: Rig) -> None:
    """A turn 35 degrees from the baseline (COMPARE_MAX_DEGREES is 25): the comparison cannot tell, so a low
    similarity only refuses the frame. The same similarity on a 25 degree turn is another person."""
    session_id = _seeded(rig, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)
    look_straight(rig, session_id)
    rig.analyzer.similarity = 31.5
    rig.analyzer.script(face(yaw=35.0))
    far = rig.client.frame(session_id, seed=1)
    assert far.status == 200 and far.body["verdict"] == "REJECTED"
    # The score is withheld from the client (it proves nothing there, and would help an impostor tune) ...
    assert far.body["reasonCode"] == "FACE_NOT_COMPARABLE" and far.body["similarity"] is None
    assert far.body["message"] == "Good, now do the same movement a little less far."
    assert far.body["status"] == "IN_PROGRESS" and far.body["currentStep"] == 1 and far.body["failureReason"] is None
    assert far.body["samePersonCheck"] != "failed"
    stored = rig.store.get(session_id)
    assert stored.is_open and stored.steps[1].reason == "FACE_NOT_COMPARABLE" and stored.steps[1].attempts == 1
    rig.analyzer.script(face(yaw=25.0))
    near = rig.client.frame(session_id, seed=2).body
    assert near["verdict"] == "REJECTED" and near["reasonCode"] == "FACE_MISMATCH" and near["similarity"] == 31.5
    assert near["status"] == "FAILED" and near["failureReason"] == "FACE_MISMATCH"
    assert near["samePersonCheck"] == "failed"
    audited = _audit(rig, session_id)["frames"]
    assert [frame["reasonCode"] for frame in audited] == [None, "FACE_NOT_COMPARABLE", "FACE_MISMATCH"]
    assert audited[1]["similarity"] == 31.5  # ... but kept in the audit record


def test_too_many_incomparable_frames_fail_the_session(rig: Rig) -> None:
    """MAX_NOT_COMPARABLE (12): a person swapped in beyond the comparison range does not get the step's whole
    budget to score high once; the twelfth incomparable frame fails the session."""
    limit = int(Thresholds().max_not_comparable)
    session_id = _seeded(rig, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)
    look_straight(rig, session_id)
    rig.analyzer.similarity = 60.0
    answers = []
    for seed in range(1, limit + 1):
        rig.analyzer.script(face(yaw=38.0))
        answers.append(rig.client.frame(session_id, seed=seed).body)
    assert [answer["reasonCode"] for answer in answers] == ["FACE_NOT_COMPARABLE"] * limit
    assert [answer["status"] for answer in answers] == ["IN_PROGRESS"] * (limit - 1) + ["FAILED"]
    assert answers[-1]["failureReason"] == "SAME_PERSON_UNVERIFIED" and answers[-1]["samePersonCheck"] == "failed"
    assert rig.client.frame(session_id, seed=limit + 1).status == 409


def test_a_far_turn_of_the_same_person_is_accepted(aws: Rig) -> None:
    """The range only matters for a low similarity: the same person turning 35 degrees passes the step."""
    session_id = _seeded(aws, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)
    look_straight(aws, session_id)
    aws.analyzer.script(face(yaw=35.0))
    reply = aws.client.frame(session_id, seed=1).body
    assert reply["verdict"] == "ACCEPTED" and reply["similarity"] == 99.0 and reply["currentStep"] == 2


def test_a_step_that_uses_its_frame_budget_fails_the_session(aws: Rig) -> None:
    """STEP_MAX_FRAMES (30) frames on the neutral start: the session fails ATTEMPT_LIMIT with 30 of its 60 frames
    left. A frame sent while the 30th is still analysed is refused, naming the step's budget."""
    created = start_session(aws)
    session_id = created["sessionId"]
    assert (created["maxFrames"], created["stepMaxFrames"]) == (60, 30)
    aws.analyzer.default_faces = [wrong_face_for("LOOK_STRAIGHT")]
    statuses = []
    for index in range(29):
        aws.clock.advance(0.1)
        reply = aws.client.frame(session_id, seed=index)
        assert reply.body["reasonCode"] == "NOT_LOOKING_STRAIGHT"
        statuses.append(reply.body["status"])
    assert statuses == ["IN_PROGRESS"] * 29
    refused: list[Any] = []
    aws.analyzer.during_next_detect = lambda: refused.append(aws.new_client().frame(session_id, seed=98))
    last = aws.client.frame(session_id, seed=29)
    assert (refused[0].status, refused[0].body["code"]) == (409, "SESSION_CLOSED")
    assert refused[0].body["message"] == "This step has used all its 30 frames (ATTEMPT_LIMIT); start a new session."
    assert last.status == 200 and last.body["status"] == "FAILED" and last.body["failureReason"] == "ATTEMPT_LIMIT"
    stored = aws.store.get(session_id)
    assert stored.failure_reason.value == "ATTEMPT_LIMIT" and stored.frames_received == 30 < stored.limits.max_frames
    assert stored.steps[0].frames_received == 30 and len(stored.frames) == 30
    assert aws.analyzer.detect_calls == 30  # the refused frame was never analysed
    late = aws.client.frame(session_id, seed=99)
    assert late.status == 409 and late.body["code"] == "SESSION_CLOSED" and "ATTEMPT_LIMIT" in late.body["message"]
    assert _audit(aws, session_id)["limits"]["stepMaxFrames"] == 30


def test_the_step_budget_is_configurable_and_per_step(fake_aws_env: None) -> None:
    """STEP_MAX_FRAMES=3: three misses on one drawn step fail the session; the neutral start's frames and the
    earlier steps' frames do not count toward it."""
    with mock_aws():
        rig = aws_rig(Settings.from_env({"STEP_MAX_FRAMES": "3"}))
        session_id = _seeded(rig, StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_UP)
        rig.analyzer.script(wrong_face_for("x"), wrong_face_for("x"), face())  # two misses, then the neutral start
        rig.analyzer.script(wrong_face_for("x"), wrong_face_for("x"), face_for("TURN_LEFT"))
        rig.analyzer.script(*[wrong_face_for("x")] * 3)
        replies = [rig.client.frame(session_id, seed=index).body for index in range(9)]
        assert [reply["verdict"] for reply in replies] == ["REJECTED", "REJECTED", "ACCEPTED"] * 2 + ["REJECTED"] * 3
        assert [reply["status"] for reply in replies] == ["IN_PROGRESS"] * 8 + ["FAILED"]
        assert replies[-1]["failureReason"] == "ATTEMPT_LIMIT" and replies[-1]["currentStep"] == 2
        assert _limits_of(rig, session_id) == (60, 3)


def _limits_of(rig: Rig, session_id: str) -> tuple[int, int]:
    limits = rig.store.get(session_id).limits
    return limits.max_frames, limits.step_max_frames
