"""Accuracy and speed of the embedded mesh analyzer on a labelled folder of face images.

    python -m bench.analyzer ../shared/faces/dev [--verbose] [--csv FILE]

The folder holds images and a ``labels.json`` ({"images": [{"file", "pose_rekognition", "smiling",
"mouth_open", "eyes_closed"}]}, Rekognition's sign convention, ``null`` = not scored). Prints faces found,
pose errors, turn-direction accuracy, expression accuracies and milliseconds per 640x480 frame on one core.
The images stay where they are: nothing from the folder is copied anywhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.faces import Frame

FRONTAL_BAND_DEG = 10.0  # |yaw| below this is "frontal"; otherwise the sign says which way the nose points
AMBIGUOUS_MARGIN_DEG = 5.0  # labels this close to the band edge are reported separately
BENCH_SIZE = (640, 480)
TIMING_REPEATS = 3


@dataclass
class ImageResult:
    file: str
    found: int
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    eyes_closed: bool | None = None
    mouth_open: bool | None = None
    smiling: bool | None = None
    measures: dict[str, float] = field(default_factory=dict)
    ms: float = 0.0


def frame_of(bgr: np.ndarray) -> Frame:
    return Frame(bgr=bgr, encoded=cv2.imencode(".jpg", bgr)[1].tobytes(), content_type="image/jpeg")


def fit_into(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The image scaled to fit ``size`` and padded with black, as a webcam frame of that size."""
    width, height = size
    scale = min(width / bgr.shape[1], height / bgr.shape[0])
    resized = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def analyse(analyzer: MeshAnalyzer, path: Path, timing: bool = True) -> ImageResult:
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    described = analyzer.describe_faces(frame_of(bgr))
    result = ImageResult(file=path.name, found=len(described))
    if described:
        face, expression = max(described, key=lambda item: item[0].bounding_box.width)
        assert face.pose and face.eyes_open and face.mouth_open and face.smile
        result.yaw, result.pitch, result.roll = face.pose.yaw, face.pose.pitch, face.pose.roll
        result.eyes_closed = not face.eyes_open.value
        result.mouth_open = face.mouth_open.value
        result.smiling = face.smile.value
        result.measures = {key: round(value, 4) for key, value in asdict(expression).items()}
    if timing:
        result.ms = time_frame(analyzer, fit_into(bgr, BENCH_SIZE))
    return result


def time_frame(analyzer: MeshAnalyzer, bgr: np.ndarray) -> float:
    frame = frame_of(bgr)
    timings = []
    for _ in range(TIMING_REPEATS):
        start = time.perf_counter()
        analyzer.detect_faces(frame)
        timings.append((time.perf_counter() - start) * 1000.0)
    return min(timings)


def direction(yaw: float) -> str:
    if abs(yaw) < FRONTAL_BAND_DEG:
        return "frontal"
    return "nose-right" if yaw > 0 else "nose-left"


NEAR_FRONTAL_YAW_DEG = 45.0  # "every frontal/near-frontal face found" counts faces within these angles
NEAR_FRONTAL_PITCH_DEG = 30.0
SCORED_LABELS = ("eyes_closed", "mouth_open", "smiling")


@dataclass
class Summary:
    images: int
    found: int
    frontal_total: int  # unposed images (frontal portraits) and posed ones within the near-frontal angles
    frontal_found: int
    yaw_mae: float
    pitch_mae: float
    roll_mae: float
    turn_accuracy: float
    clear_turn_accuracy: float
    accuracy: dict[str, float]
    counts: dict[str, tuple[int, int]]
    ms_median: float
    ms_p90: float


def near_frontal(item: dict) -> bool:
    pose = item.get("pose_rekognition")
    return not pose or (abs(pose["Yaw"]) <= NEAR_FRONTAL_YAW_DEG and abs(pose["Pitch"]) <= NEAR_FRONTAL_PITCH_DEG)


def summarise(labels: list[dict], results: dict[str, ImageResult]) -> Summary:
    posed = [(item["pose_rekognition"], results[item["file"]]) for item in labels if item.get("pose_rekognition")]
    posed = [(truth, r) for truth, r in posed if r.found]
    mae = {
        axis: statistics.mean(abs(truth[axis] - getattr(r, axis.lower())) for truth, r in posed) if posed else 0.0
        for axis in ("Yaw", "Pitch", "Roll")
    }
    turns = [(direction(truth["Yaw"]), direction(r.yaw)) for truth, r in posed]
    clear = [
        pair
        for pair, (truth, _r) in zip(turns, posed)
        if abs(abs(truth["Yaw"]) - FRONTAL_BAND_DEG) > AMBIGUOUS_MARGIN_DEG
    ]
    counts = {}
    for label in SCORED_LABELS:
        pairs = [
            (item[label], getattr(results[item["file"]], label))
            for item in labels
            if item.get(label) is not None and results[item["file"]].found
        ]
        counts[label] = (sum(1 for truth, guess in pairs if truth == guess), len(pairs))
    frontal = [results[item["file"]] for item in labels if near_frontal(item)]
    timings = sorted(r.ms for r in results.values())
    return Summary(
        images=len(results),
        found=sum(1 for r in results.values() if r.found),
        frontal_total=len(frontal),
        frontal_found=sum(1 for r in frontal if r.found),
        yaw_mae=mae["Yaw"],
        pitch_mae=mae["Pitch"],
        roll_mae=mae["Roll"],
        turn_accuracy=fraction(turns),
        clear_turn_accuracy=fraction(clear),
        accuracy={label: right / total if total else 0.0 for label, (right, total) in counts.items()},
        counts=counts,
        ms_median=statistics.median(timings) if timings else 0.0,
        ms_p90=timings[int(0.9 * (len(timings) - 1))] if timings else 0.0,
    )


def fraction(pairs: list[tuple[str, str]]) -> float:
    return sum(1 for truth, guess in pairs if truth == guess) / len(pairs) if pairs else 0.0


def report(summary: Summary, timing: bool = True) -> list[str]:
    lines = [
        f"faces found / images                 {summary.found}/{summary.images}",
        f"near-frontal faces found             {summary.frontal_found}/{summary.frontal_total}"
        f"  (unposed, or |yaw| <= {NEAR_FRONTAL_YAW_DEG:g} and |pitch| <= {NEAR_FRONTAL_PITCH_DEG:g})",
        f"pose MAE yaw / pitch / roll (deg)    "
        f"{summary.yaw_mae:.1f} / {summary.pitch_mae:.1f} / {summary.roll_mae:.1f}",
        f"turn direction (nose-left / frontal |yaw| < {FRONTAL_BAND_DEG:g} / nose-right)"
        f"  {100 * summary.turn_accuracy:.1f}%; excluding |yaw| within {AMBIGUOUS_MARGIN_DEG:g} of"
        f" {FRONTAL_BAND_DEG:g}: {100 * summary.clear_turn_accuracy:.1f}%",
    ]
    for label in SCORED_LABELS:
        right, total = summary.counts[label]
        lines.append(f"{label:36s} {100 * summary.accuracy[label]:.1f}% ({right}/{total})")
    if timing:
        lines.append(
            f"ms per {BENCH_SIZE[0]}x{BENCH_SIZE[1]} frame, 1 core         "
            f"median {summary.ms_median:.1f}, p90 {summary.ms_p90:.1f}"
        )
    return lines


def analyse_folder(folder: Path, timing: bool = True, analyzer: MeshAnalyzer | None = None) -> Summary:
    labels = load_labels(folder)
    analyzer = analyzer or MeshAnalyzer()
    results = {item["file"]: analyse(analyzer, folder / item["file"], timing) for item in labels}
    return summarise(labels, results)


def load_labels(folder: Path) -> list[dict]:
    return json.loads((folder / "labels.json").read_text())["images"]


def misses(labels: list[dict], results: dict[str, ImageResult]) -> list[str]:
    """One line per wrong answer, to see what a threshold change would fix or break."""
    lines = []
    for item in labels:
        r = results[item["file"]]
        if not r.found:
            lines.append(f"{item['file']}: no face")
            continue
        pose = item.get("pose_rekognition")
        if pose and direction(pose["Yaw"]) != direction(r.yaw):
            lines.append(f"{item['file']}: yaw {r.yaw:.1f} vs {pose['Yaw']:.1f}")
        for label in ("eyes_closed", "mouth_open", "smiling"):
            if item.get(label) is not None and item[label] != getattr(r, label):
                lines.append(f"{item['file']}: {label} {getattr(r, label)} vs {item[label]}  {r.measures}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder with images and labels.json")
    parser.add_argument("--verbose", action="store_true", help="list every wrong answer")
    parser.add_argument("--csv", type=Path, help="write per-image predictions and raw measures here")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)  # the budget is per core: a Lambda frame gets about one
    labels = load_labels(args.folder)
    analyzer = MeshAnalyzer()
    analyzer.warm_up()
    results = {item["file"]: analyse(analyzer, args.folder / item["file"]) for item in labels}
    print("\n".join(report(summarise(labels, results))))
    if args.verbose:
        print("\n".join(misses(labels, results)))
    if args.csv:
        write_csv(args.csv, labels, results)
    return 0


def write_csv(path: Path, labels: list[dict], results: dict[str, ImageResult]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        keys = ["eye_openness", "mouth_gap", "mouth_width", "mouth_aspect", "corner_rise"]
        writer.writerow(
            ["file", "found", "yaw", "pitch", "roll", "true_yaw", "true_pitch", "true_roll"]
            + ["eyes_closed", "mouth_open", "smiling"]
            + keys
        )
        for item in labels:
            r = results[item["file"]]
            pose = item.get("pose_rekognition") or {}
            writer.writerow(
                [r.file, r.found, r.yaw, r.pitch, r.roll, pose.get("Yaw"), pose.get("Pitch"), pose.get("Roll")]
                + [item.get("eyes_closed"), item.get("mouth_open"), item.get("smiling")]
                + [r.measures.get(key) for key in keys]
            )


if __name__ == "__main__":
    raise SystemExit(main())
