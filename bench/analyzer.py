"""Accuracy and speed of the embedded mesh analyzer on a labelled folder of face images.

    python -m bench.analyzer ../shared/faces/dev [--verbose] [--csv FILE]

The folder holds images and a ``labels.json`` ({"images": [{"file", "pose_rekognition", "smiling",
"mouth_open", "eyes_closed"}]}, Rekognition's sign convention, ``null`` = not scored). Prints faces found,
pose errors, turn-direction accuracy, expression accuracies (overall, and on the tuning and the held-out part of
the labelled images: ``testkit.labelled_faces.HELD_OUT``) and milliseconds per 640x480 frame on one core.
The images stay where they are: nothing from the folder is copied anywhere.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
from liveness.analyzers.mesh import MeshAnalyzer

from testkit.labelled_faces import (
    AMBIGUOUS_MARGIN_DEG,
    BENCH_SIZE,
    FRONTAL_BAND_DEG,
    HELD_OUT,
    NEAR_FRONTAL_PITCH_DEG,
    NEAR_FRONTAL_YAW_DEG,
    SCORED_LABELS,
    STEP_CONFIDENCE,
    ImageResult,
    Summary,
    analyse,
    direction,
    load_labels,
    pose_errors,
    summarise,
)


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
    closed, closed_total = summary.closed_at_step
    false, open_total = summary.false_closes
    lines.append(f"closed eyes at confidence >= {STEP_CONFIDENCE:g}       {closed}/{closed_total}")
    lines.append(f"open eyes called closed              {false}/{open_total}")
    lines.append("tuning part / held-out part (balanced accuracy, right/total):")
    for label in SCORED_LABELS:
        tuning, held = summary.parts["tuning"][label], summary.parts["held-out"][label]
        lines.append(
            f"  {label:34s} {100 * tuning.balanced:.1f}% ({tuning.right}/{tuning.total})"
            f" / {100 * held.balanced:.1f}% ({held.right}/{held.total})"
        )
    lines.append(f"  held out: {', '.join(HELD_OUT)}")
    if timing:
        lines.append(
            f"ms per {BENCH_SIZE[0]}x{BENCH_SIZE[1]} frame, 1 core         "
            f"median {summary.ms_median:.1f}, p90 {summary.ms_p90:.1f}"
        )
    return lines


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
    errors = pose_errors(labels, results)
    print(
        "pose error, analyzer - label (deg)    "
        + ", ".join(f"{axis.lower()} bias {e.bias:+.1f} spread {e.spread:.1f}" for axis, e in errors.items())
        + "  (testkit/rekognition_standin.py's disagreement)"
    )
    if args.verbose:
        print("\n".join(misses(labels, results)))
    if args.csv:
        write_csv(args.csv, labels, results)
    return 0


def write_csv(path: Path, labels: list[dict], results: dict[str, ImageResult]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        keys = ["eye_openness", "eye_detail", "mouth_gap", "corner_lift"]
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
