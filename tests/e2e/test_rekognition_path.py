"""The Rekognition path in real time, through the stand-in for Rekognition: genuine people pass as often with the
pre-screen as without it, a frame the pre-screen refuses never reaches Rekognition, and a still photo still passes
nothing.

The local server runs the real handler with the real RekognitionAnalyzer on the stand-in client
(testkit/rekognition_standin.py: the real image measured by the embedded analyzer, with the measured
disagreement, behind DetectFaces' and CompareFaces' latencies of ``make bench MODE=latency``), and the embedded
analyzer as the pre-screen when it is on. A sample of the head-movement orders runs, plain and mirrored, with the
ordinary manner (tests/e2e/test_genuine_users.py runs every order and manner on the embedded path).
Needs ``../shared/video/headturn.gif``: skips with that reason in a fresh clone.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.challenges import HEAD_MOVEMENTS
from liveness.wiring import build_dependencies

from bench.latency import Latencies, Latent
from local.server import LocalServer, local_settings
from testkit import headturn
from testkit.rekognition_standin import RekognitionStandIn
from tests.e2e.conftest import NEEDS_CLIP
from tests.e2e.person import SessionRun, run_planned, run_session
from tests.local.support import ALLOWED_ORIGINS

pytestmark = [pytest.mark.slow, NEEDS_CLIP]

# 6 of the 24 orders, each movement twice in every position, plain and mirrored: 12 sessions per mode.
ORDERS = list(itertools.permutations(HEAD_MOVEMENTS, 3))[::4]
CONCURRENT_PEOPLE = 4
PRESCREEN_JUDGE = "local-mesh"
PASS_RATE_POINTS = 0.01  # the pre-screen may cost at most one point of the genuine pass rate

Serve = Callable[[bool], tuple[LocalServer, RekognitionStandIn]]


@pytest.fixture
def serve(data_dir: Path, mesh_analyzer: MeshAnalyzer) -> Iterator[Serve]:
    """A local server on the Rekognition path (the stand-in behind AWS-like latencies), pre-screen on or off."""
    servers: list[LocalServer] = []
    latencies = Latencies.from_env({})

    def start(prescreen: bool) -> tuple[LocalServer, RekognitionStandIn]:
        mode = "on" if prescreen else "off"
        env = {"ALLOWED_ORIGINS": ALLOWED_ORIGINS, "ANALYZER": "rekognition", "PRESCREEN": mode}
        settings = local_settings(data_dir=data_dir / mode, port=0, env=env)
        stand_in = RekognitionStandIn(MeshAnalyzer())
        client = Latent(stand_in, {"detect_faces": latencies.detect_faces, "compare_faces": latencies.compare_faces})
        deps = build_dependencies(
            settings, analyzer=RekognitionAnalyzer(client), prescreen=mesh_analyzer if prescreen else None
        )
        assert (deps.prescreen is not None) == prescreen
        server = LocalServer(deps=deps, port=0).start()
        servers.append(server)
        return server, stand_in

    yield start
    for server in servers:
        server.stop()


def run_people(server: LocalServer, clip: list[np.ndarray], ordered_draws: collections.deque) -> list[SessionRun]:
    plans = [(order, mirrored) for order in ORDERS for mirrored in (False, True)]
    return run_planned(server.url, clip, plans, ordered_draws, people=CONCURRENT_PEOPLE)


def sha256_of(data_url: str) -> bytes:
    return hashlib.sha256(base64.b64decode(data_url.partition(",")[2])).digest()


def test_the_prescreen_costs_no_genuine_pass_and_refuses_without_calling_rekognition(
    serve: Serve, clip, ordered_draws
) -> None:
    outcomes = {}
    for prescreen in (False, True):
        server, stand_in = serve(prescreen)
        runs = run_people(server, clip, ordered_draws)
        outcomes[prescreen] = (runs, stand_in)
    rates = {mode: sum(run.status == "PASSED" for run in runs) / len(runs) for mode, (runs, _s) in outcomes.items()}
    failures = {
        mode: [(run.final.get("failureReason"), run.reasons) for run in runs if run.status != "PASSED"]
        for mode, (runs, _s) in outcomes.items()
    }
    on_runs, on_stand_in = outcomes[True]
    judged = [
        (answer.get("judgedBy"), upload)
        for run in on_runs
        for answer, upload in zip(run.answers, run.uploads, strict=True)
        if upload is not None
    ]
    refused = [upload for judge, upload in judged if judge == PRESCREEN_JUDGE]
    sent_on = [upload for judge, upload in judged if judge == "rekognition"]
    print(  # the docs' figures (pytest -s)
        f"Rekognition path, {len(on_runs)} sessions per mode: passed off {rates[False]:.0%}, on {rates[True]:.0%}; "
        f"image calls off {outcomes[False][1].image_calls}, on {on_stand_in.image_calls}; "
        f"frames refused by the pre-screen {len(refused)}/{len(judged)}; failures off "
        f"{collections.Counter(reason for reason, _r in failures[False])}, on "
        f"{collections.Counter(reason for reason, _r in failures[True])}"
    )
    mismatches = [  # the stand-in's same-person comparison is an approximation of CompareFaces: shown, not judged
        (mode, answer["stepCode"], answer["similarity"], answer["measured"].get("yaw"), answer["measured"].get("pitch"))
        for mode, (runs, _s) in outcomes.items()
        for run in runs
        for answer in run.answers
        if answer.get("reasonCode") == "FACE_MISMATCH"
    ]
    if mismatches:
        print(f"FACE_MISMATCH answers (pre-screen, step, similarity, yaw, pitch): {mismatches}")
    assert rates[True] >= rates[False] - PASS_RATE_POINTS, failures
    assert refused, "the pre-screen refused no frame: every frame cost a Rekognition call"
    assert sent_on and all(sha256_of(upload) in on_stand_in.seen for upload in sent_on)  # what reached it is seen
    assert not [upload for upload in refused if sha256_of(upload) in on_stand_in.seen], "a refusal called Rekognition"
    assert on_stand_in.image_calls < outcomes[False][1].image_calls


def test_one_still_photo_passes_nothing_on_the_rekognition_path(serve: Serve, clip) -> None:
    """tests/e2e/test_genuine_users.py's still photo, lit evenly at the light step, with the pre-screen on."""
    server, _stand_in = serve(True)
    photo = clip[headturn.STRAIGHT[2]]
    run = run_session(server.url, clip, user="photo", mirrored=False, show=lambda now: photo, light="print")
    assert run.status == "FAILED"
    assert "ACCEPTED" not in [answer["verdict"] for answer in run.answers[1:]], run.reasons
    assert run.final["currentStep"] <= 1, run.reasons
