"""A stand-in for the light routes, answered inside the browser (Playwright's page.route), judged for real.

Until the server has the routes, and for the page's own paths through the light step: a two-step session
(LOOK_STRAIGHT accepted on its first frame, then FOLLOW_LIGHT), and each light batch decoded through the images
intake and judged by ``judge_light`` on the embedded analyzer's face, exactly as the protocol says the server
does. Two attempts that do not pass fail the session (LIGHT_NOT_FOLLOWED, or LIGHT_UNVERIFIED).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from liveness.images.intake import load_frame
from liveness.light.decision import LightFrame, LightOutcome, analysed_frame_index, judge_light
from liveness.light.sequence import LightColour, LightSequence, draw_sequence

STEPS = ("LOOK_STRAIGHT", "FOLLOW_LIGHT")
MAX_ATTEMPTS = 2


def decode(data_url: str) -> bytes:
    return base64.b64decode(data_url.split(",", 1)[1])


class LightApi:
    """The session and light routes for one page; ``outcomes`` lists every light verdict it gave."""

    def __init__(self, analyzer: Any, colours: tuple[str, ...] = ()) -> None:
        self.analyzer = analyzer
        self.colours = colours  # fixed colours (750 ms each) instead of a drawn sequence: for screenshots
        self.current = 0
        self.status = "IN_PROGRESS"
        self.failure: str | None = None
        self.sequence: LightSequence | None = None
        self.outcomes: list[str] = []

    def handle(self, route: Any) -> None:
        request = route.request
        path = re.sub(r"^https?://[^/]+", "", request.url).split("?")[0]
        body = json.loads(request.post_data or "{}") if request.method == "POST" else {}
        if request.method == "POST" and path == "/sessions":
            status, answer = 201, self.created()
        elif request.method == "POST" and path.endswith("/light/frames"):
            status, answer = self.judged(body)
        elif request.method == "POST" and path.endswith("/light"):
            status, answer = self.revealed()
        elif request.method == "POST" and path.endswith("/frames"):
            status, answer = 200, self.frame()
        else:
            status, answer = (
                200,
                {
                    "sessionId": "s-light",
                    "status": self.status,
                    "failureReason": self.failure,
                    "currentStep": self.current,
                    "referenceFace": None,
                },
            )
        route.fulfill(status=status, content_type="application/json", body=json.dumps(answer))

    def created(self) -> dict[str, Any]:
        return {
            "sessionId": "s-light",
            "status": "IN_PROGRESS",
            "currentStep": 0,
            "mirrored": False,
            "steps": [{"index": i, "code": code, "instruction": code} for i, code in enumerate(STEPS)],
            "expiresAt": (datetime.now(UTC) + timedelta(minutes=3)).isoformat(),
            "stepTimeLimitSeconds": 20,
            "maxFrames": 40,
            "frameConstraints": {"recommendedWidth": 640, "recommendedHeight": 480},
        }

    def answer(self, verdict: str, reason: str | None, index: int, measured: dict[str, Any]) -> dict[str, Any]:
        return {
            "verdict": verdict,
            "reasonCode": reason,
            "message": reason,
            "stepIndex": index,
            "stepCode": STEPS[index],
            "currentStep": self.current,
            "status": self.status,
            "failureReason": self.failure,
            "measured": measured,
            "sessionVerdict": None,
        }

    def frame(self) -> dict[str, Any]:
        if self.current == 0:
            self.current = 1
            return self.answer("ACCEPTED", None, 0, {})
        return self.answer("REJECTED", "STEP_ALREADY_COMPLETED", self.current, {})

    def revealed(self) -> tuple[int, dict[str, Any]]:
        if self.current != 1 or self.sequence is not None:
            return 409, {"code": "CONFLICT", "message": "no light challenge can start now"}
        self.sequence = (
            LightSequence(secrets.token_hex(8), tuple(LightColour(hex, 750) for hex in self.colours))
            if self.colours
            else draw_sequence()
        )
        total = self.sequence.total_ms
        return 201, {
            **self.sequence.to_json(),
            "sessionId": "s-light",
            "frameWidth": 320,
            "frameHeight": 240,
            "submitBy": (datetime.now(UTC) + timedelta(milliseconds=total + 5000)).isoformat(),
            "attempt": len(self.outcomes) + 1,
            "maxAttempts": MAX_ATTEMPTS,
        }

    def judged(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        sequence, self.sequence = self.sequence, None
        if sequence is None or body.get("challengeId") != sequence.challenge_id:
            return 400, {"code": "INVALID_REQUEST", "message": "not the open challenge"}
        frames = [
            LightFrame(load_frame(decode(f["image"])).bgr, f["colorIndex"], f["offsetMs"]) for f in body["frames"]
        ]
        analysed = analysed_frame_index(frames, sequence)
        faces = self.analyzer.detect_faces(load_frame(decode(body["frames"][analysed]["image"])))
        outcome = (
            judge_light(frames, sequence, faces[0], analysed=analysed).outcome
            if faces
            else LightOutcome.LIGHT_FACE_MOVED
        )
        self.outcomes.append(outcome.value)
        if outcome is LightOutcome.PASSED:
            self.status = "PASSED"
            return 200, self.answer("ACCEPTED", None, 1, {"light": {"outcome": outcome.value}})
        if len(self.outcomes) >= MAX_ATTEMPTS:
            self.status = "FAILED"
            followed = "LIGHT_NOT_FOLLOWED" in self.outcomes
            self.failure = "LIGHT_NOT_FOLLOWED" if followed else "LIGHT_UNVERIFIED"
        return 200, self.answer("REJECTED", outcome.value, 1, {"light": {"outcome": outcome.value}})
