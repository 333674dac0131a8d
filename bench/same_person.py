"""What the embedded same-person check scores, by how far the face has moved from a frontal reference, by the
pose gap between any two compared frames, and what the identity chain verifies on the clip.

    python -m bench.same_person [SHARED_DIR]        (make bench-same-person; default ../shared)

Same person: every frame of the webcam clip ``video/headturn.gif`` against the face crop of a straight frame, as a
session compares each step's frame with its neutral start. Different people: the clip's frames against the crop of
every face in ``faces/dev`` (other people), and the Yale subjects against each other. Prints the lowest same-person
and the highest different-person similarity (and dlib distance) per movement band, which is what
``SAME_PERSON_DISTANCE`` and ``COMPARE_MAX_DEGREES`` are chosen from; then the same by the pose gap between the
two frames (every pair of clip frames; clip frames against the other people), which ``LINK_MAX_DEGREES`` is
chosen from; then the chain walked through each movement of the clip (docs/sessions.md, "Identity through the
movement"). Nothing from SHARED_DIR is copied anywhere.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from liveness.analyzers import face_embedding
from liveness.analyzers.mesh import MeshAnalyzer, largest_face_points
from liveness.challenges import Thresholds
from liveness.faces import Frame
from liveness.images.crop import face_crop_jpeg

from testkit.headturn import CLIP_FPS, MOVES, STRAIGHT, read_frames

BANDS = (15.0, 25.0, 30.0, 38.0, 45.0)  # degrees of movement (the larger of |yaw| and |pitch|) from the reference
GAPS = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 90.0)  # degrees between the two compared frames' poses
Described = tuple[tuple[float, float], np.ndarray]


@dataclass(frozen=True)
class Pair:
    movement: float  # max(|yaw|, |pitch|) of the candidate relative to the reference
    axis: str  # "yaw" or "pitch": which one moved more
    distance: float
    same_person: bool

    @property
    def similarity(self) -> float:
        return face_embedding.similarity_from_distance(self.distance)


class Embedder:
    """Pose and descriptor of the largest face, through the analyzer's own models (as compare_faces does)."""

    def __init__(self) -> None:
        self.analyzer = MeshAnalyzer()
        self.analyzer.warm_up()
        self.embedder = face_embedding.shared_embedder()

    def describe(self, bgr: np.ndarray, *, as_reference: bool = False) -> tuple[tuple[float, float], np.ndarray] | None:
        """The face's (yaw, pitch) and descriptor; ``as_reference``: of the face crop a session archives as its
        reference, decoded again, as the service compares with it."""
        ok, encoded = cv2.imencode(".jpg", bgr)
        frame = Frame(bgr=bgr, encoded=encoded.tobytes(), content_type="image/jpeg")
        faces = self.analyzer.detect_faces(frame)
        if not faces or faces[0].pose is None:
            return None
        if as_reference:
            bgr = cv2.imdecode(np.frombuffer(face_crop_jpeg(frame, faces[0]), np.uint8), cv2.IMREAD_COLOR)
        return (faces[0].pose.yaw, faces[0].pose.pitch), self.embed(bgr)

    def embed(self, bgr: np.ndarray) -> np.ndarray:
        with self.analyzer._lock:  # the networks keep per-call state
            points = largest_face_points(self.analyzer._loaded(), bgr)
        if points is None:
            raise RuntimeError("no face to embed")
        return self.embedder.embed(bgr, points)


def pairs(shared: Path, embedder: Embedder) -> list[Pair]:
    frames = read_frames(shared / "video" / "headturn.gif")
    clip = [embedder.describe(bgr) for bgr in frames]
    references = {index: embedder.describe(frames[index], as_reference=True) for index in STRAIGHT}
    found = []
    for index in STRAIGHT:  # every straight frame serves as the neutral reference once
        reference = references[index]
        if reference is None:
            continue
        for described in clip:
            if described is not None:
                found.append(_pair(reference, described, same_person=True))
    others = []
    for path in sorted((shared / "faces" / "dev").glob("*")):
        if path.suffix.lower() in (".jpg", ".png"):
            described = embedder.describe(cv2.imread(str(path)), as_reference=True)
            if described is not None:
                others.append((path.name, described))
    for (_name, reference), described in itertools.product(others, clip):
        if described is not None:
            found.append(_pair(reference, described, same_person=False))
    yale = [(name, described) for name, described in others if name.startswith("yale_")]
    for (first, a), (second, b) in itertools.combinations(yale, 2):
        if first.split("_")[1] != second.split("_")[1]:
            found.append(_pair(a, b, same_person=False))
    return found


def _pair(reference: tuple, candidate: tuple, *, same_person: bool) -> Pair:
    (ref_yaw, ref_pitch), ref_vector = reference
    (yaw, pitch), vector = candidate
    d_yaw, d_pitch = abs(yaw - ref_yaw), abs(pitch - ref_pitch)
    return Pair(
        movement=max(d_yaw, d_pitch),
        axis="yaw" if d_yaw >= d_pitch else "pitch",
        distance=face_embedding.FaceEmbedder.distance(ref_vector, vector),
        same_person=same_person,
    )


def report(found: list[Pair]) -> list[str]:
    lines = [
        f"similarity 90 at dlib distance {face_embedding.SAME_PERSON_DISTANCE}",
        f"{'movement from reference':26s} {'same person: lowest':>24s} {'different people: highest':>27s}",
    ]
    low = 0.0
    for high in BANDS:
        for axis in ("yaw", "pitch"):
            band = (
                [p for p in found if low < p.movement <= high and p.axis == axis]
                if low
                else [p for p in found if p.movement <= high and p.axis == axis]
            )
            lines.append(
                f"{f'{low:g}-{high:g} deg ({axis})':26s} {_extreme(band, True):>24s} {_extreme(band, False):>27s}"
            )
        low = high
    lines.append(f"{'all':26s} {_extreme(found, True):>24s} {_extreme(found, False):>27s}")
    return lines


def _extreme(band: list[Pair], same_person: bool) -> str:
    chosen = [p for p in band if p.same_person is same_person]
    if not chosen:
        return "-"
    pick = max(chosen, key=lambda p: p.distance) if same_person else min(chosen, key=lambda p: p.distance)
    return f"{pick.similarity:5.1f} (d {pick.distance:.3f}, n {len(chosen)})"


def gap_pairs(shared: Path, embedder: Embedder) -> tuple[list[Pair], list[Described | None]]:
    """Every pair of clip frames (the same person), and every clip frame against every other person's face, with
    the pose gap between the two as ``movement``; also the clip's frames as described."""
    clip = [embedder.describe(bgr) for bgr in read_frames(shared / "video" / "headturn.gif")]
    found = [_pair(a, b, same_person=True) for a, b in itertools.combinations([d for d in clip if d is not None], 2)]
    for path in sorted((shared / "faces" / "dev").glob("*")):
        if path.suffix.lower() in (".jpg", ".png"):
            other = embedder.describe(cv2.imread(str(path)), as_reference=True)
            if other is not None:
                found.extend(_pair(other, d, same_person=False) for d in clip if d is not None)
    return found, clip


def gap_report(found: list[Pair]) -> list[str]:
    lines = [
        "",
        "by the pose gap between the two compared frames (any two frames, not only against frontal)",
        f"{'pose gap':12s} {'same: n':>8s} {'lowest':>7s} {'5th pct':>8s} {'< 90':>5s} "
        f"{'different: n':>13s} {'highest':>8s} {'>= 90':>6s}",
    ]
    low = 0.0
    for high in GAPS:
        band = [p for p in found if low <= p.movement < high]
        same = sorted(p.similarity for p in band if p.same_person)
        other = [p.similarity for p in band if not p.same_person]
        lines.append(
            f"{f'{low:g}-{high:g}':12s} {len(same):8d} {min(same, default=float('nan')):7.1f} "
            f"{(same[len(same) // 20] if same else float('nan')):8.1f} {sum(s < 90 for s in same):5d} "
            f"{len(other):13d} {max(other, default=float('nan')):8.1f} {sum(s >= 90 for s in other):6d}"
        )
        low = high
    return lines


def chain_report(clip: list[Described | None], t: Thresholds) -> list[str]:
    """Each movement of the clip, frame by frame at its own 10 frames a second: a frame within COMPARE_MAX of the
    baseline is compared with the reference (a straight frame), a farther one with the nearest-pose verified frame
    within LINK_MAX_DEGREES, LINK_MAX_SECONDS and MAX_LINK_HOPS (else with the reference, as the service does).
    A far frame that passes completes the step in a session, so it is counted and links nothing further."""
    reference = clip[STRAIGHT[2]]
    assert reference is not None
    base_yaw = float(np.mean([clip[i][0][0] for i in STRAIGHT if clip[i] is not None]))
    base_pitch = float(np.mean([clip[i][0][1] for i in STRAIGHT if clip[i] is not None]))
    lines = [
        "",
        f"the chain on the clip (COMPARE_MAX {t.compare_max_angle:g}, LINK_MAX {t.link_max_angle:g} deg, "
        f"{t.link_max_seconds:g} s, {t.max_link_hops:g} hops; {CLIP_FPS:g} frames a second)",
        f"{'movement':11s} {'far frames':>10s} {'by a link':>10s} {'by the reference':>17s} {'lowest link':>12s}",
    ]
    for name, move in MOVES.items():
        verified: list[tuple[float, float, float, int, np.ndarray]] = []  # yaw, pitch, time, hops, descriptor
        far = by_link = by_reference = 0
        lowest = 100.0
        for order, index in enumerate([*move.out, *move.peak, *move.back]):
            described = clip[index]
            if described is None:
                continue
            (yaw, pitch), vector = described
            yaw, pitch, now = yaw - base_yaw, pitch - base_pitch, order / CLIP_FPS
            if max(abs(yaw), abs(pitch)) <= t.compare_max_angle:
                if _similarity(reference[1], vector) >= t.min_similarity:
                    verified.append((yaw, pitch, now, 0, vector))
                continue
            far += 1
            near = [
                v
                for v in verified
                if max(abs(yaw - v[0]), abs(pitch - v[1])) <= t.link_max_angle
                and now - v[2] <= t.link_max_seconds
                and v[3] + 1 <= t.max_link_hops
            ]
            if near:
                anchor = min(near, key=lambda v: (max(abs(yaw - v[0]), abs(pitch - v[1])), -v[2]))
                score = _similarity(anchor[4], vector)
                lowest = min(lowest, score)
                by_link += score >= t.min_similarity  # it would complete the step: it links nothing further
            elif _similarity(reference[1], vector) >= t.min_similarity:
                by_reference += 1
        lines.append(f"{name:11s} {far:10d} {by_link:10d} {by_reference:17d} {lowest:12.1f}")
    return lines


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    return face_embedding.similarity_from_distance(face_embedding.FaceEmbedder.distance(a, b))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    shared = Path(args[0]) if args else Path(__file__).resolve().parents[1].parent / "shared"
    if not (shared / "video" / "headturn.gif").is_file():
        print(f"{shared}/video/headturn.gif not found: this bench needs the developers' shared material")
        return 2
    if not face_embedding.available():
        print("dlib or its face model is not installed (requirements-embedding.txt)")
        return 2
    embedder = Embedder()
    print("\n".join(report(pairs(shared, embedder))))
    by_gap, clip = gap_pairs(shared, embedder)
    print("\n".join(gap_report(by_gap)))
    print("\n".join(chain_report(clip, Thresholds())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
