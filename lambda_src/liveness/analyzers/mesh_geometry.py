"""Geometry for the embedded mesh analyzer: MediaPipe's canonical face, landmark indices, head pose, expressions.
Pure numpy/OpenCV over the 468 face-mesh landmarks; the canonical face is ``data/canonical_face.obj`` (Apache-2.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files

import cv2
import numpy as np


def _canonical_face_vertices() -> np.ndarray:
    """The ``v x y z`` lines of the packaged canonical face (see its licence header), in landmark-index order."""
    text = files(__package__).joinpath("data", "canonical_face.obj").read_text(encoding="utf-8")
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


# The canonical face in OpenCV camera axes (x right, y down, z away from the camera), so a face looking
# straight at the camera has the identity rotation.
CANONICAL_FACE = _canonical_face_vertices() * (1.0, -1.0, -1.0)
NUM_LANDMARKS = 468

# Mesh indices. "Image-left"/"image-right" mean where the point appears in an unmirrored frame of a subject
# facing the camera, which is also how Rekognition names landmarks (its eyeLeft is the eye on the image's left).
NOSE_TIP = 1
FOREHEAD_TOP = 10
CHIN_BOTTOM = 152
MOUTH_CORNER_LEFT, MOUTH_CORNER_RIGHT = 61, 291
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 0, 17
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14

# Eye contours in the iris model's order: 9 lower-lid points from corner to corner, then the 7 upper-lid
# points above lower points 1..7. The iris model returns refined positions for exactly these 16 vertices.
LEFT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
# Corners that define each eye's crop for the iris model, ordered left-to-right in the image.
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (362, 263)

# Rekognition landmark name -> mesh index (pupils and eye centres come from the iris model instead).
REKOGNITION_LANDMARKS: dict[str, int] = {
    "nose": NOSE_TIP,
    "noseLeft": 98,
    "noseRight": 327,
    "mouthLeft": MOUTH_CORNER_LEFT,
    "mouthRight": MOUTH_CORNER_RIGHT,
    "mouthUp": UPPER_LIP_TOP,
    "mouthDown": LOWER_LIP_BOTTOM,
    "leftEyeLeft": 33,
    "leftEyeRight": 133,
    "leftEyeUp": 159,
    "leftEyeDown": 145,
    "rightEyeLeft": 362,
    "rightEyeRight": 263,
    "rightEyeUp": 386,
    "rightEyeDown": 374,
    "leftEyeBrowLeft": 70,
    "leftEyeBrowRight": 107,
    "leftEyeBrowUp": 105,
    "rightEyeBrowLeft": 336,
    "rightEyeBrowRight": 300,
    "rightEyeBrowUp": 334,
    "upperJawlineLeft": 127,
    "midJawlineLeft": 58,
    "chinBottom": CHIN_BOTTOM,
    "midJawlineRight": 288,
    "upperJawlineRight": 356,
}


# The outer and inner lip contours (MediaPipe's FACEMESH_LIPS).
LIP_CONTOURS = (
    61,
    146,
    91,
    181,
    84,
    17,
    314,
    405,
    321,
    375,
    291,
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    78,
    95,
    88,
    178,
    87,
    14,
    317,
    402,
    318,
    324,
    308,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
)


def _rigid_indices() -> np.ndarray:
    """The vertices the pose is fitted to: all but the lips and the eyelids, which move with expressions.

    Keeping the rest of the lower face (chin, jaw) matters: fitted to the upper face only, the pitch came out
    about 5 degrees too high on ../shared/faces/dev, because a small pitch and a vertical shift then look alike.
    """
    moving = np.zeros(NUM_LANDMARKS, dtype=bool)
    moving[list(LIP_CONTOURS + LEFT_EYE_CONTOUR + RIGHT_EYE_CONTOUR)] = True
    return np.flatnonzero(~moving)


RIGID_INDICES = _rigid_indices()


@dataclass(frozen=True)
class HeadPose:
    """Degrees in Rekognition's convention, plus the rotation (face axes -> camera axes) it came from."""

    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray


# The face's width as a share of the focal length: about 17 degrees of view, a selfie at arm's length.
FACE_WIDTH_PER_FOCAL = 1.0 / 3.4


def face_camera(image_points: np.ndarray) -> np.ndarray:
    """A pinhole camera looking straight at the face: principal point at the face's centre, focal length
    proportional to the face's size.

    Anchoring the camera to the face, not to the frame, makes the pose the face's own rotation: the same face
    measures the same yaw and pitch wherever it sits in the frame, and whatever the frame's size. With the
    frame's centre as principal point, a client could turn a still photograph's pose by cropping it off-centre
    (the line of sight to an off-centre face is oblique), and pass a head-movement step without moving."""
    centre = (image_points.min(axis=0) + image_points.max(axis=0)) / 2.0
    face_width = float(np.ptp(image_points[:, 0])) or 1.0
    focal = face_width / FACE_WIDTH_PER_FOCAL
    return np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])


def head_pose(landmarks: np.ndarray) -> HeadPose:
    """Pose of the canonical face that best explains the 2D landmarks (SQPnP on the rigid vertices); the camera
    is anchored to the face, not the frame (see ``face_camera``)."""
    object_points = CANONICAL_FACE[RIGID_INDICES]
    image_points = landmarks[RIGID_INDICES, :2].astype(np.float64)
    ok, rvec, _tvec = cv2.solvePnP(
        object_points, image_points, face_camera(image_points), None, flags=cv2.SOLVEPNP_SQPNP
    )
    if not ok:
        raise ValueError("solvePnP found no pose")
    rotation, _ = cv2.Rodrigues(rvec)
    return HeadPose(*rekognition_angles(rotation), rotation=rotation)


def rekognition_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a face->camera rotation, in Rekognition's signs.

    The nose direction gives yaw (toward the image's right is positive) and pitch (up is positive);
    roll is what is left once yaw and pitch are undone, positive clockwise in the image (y points down).
    """
    nose_direction = -rotation[:, 2]  # the face looks along its -z axis
    dx, dy, dz = nose_direction
    yaw = math.atan2(dx, -dz)
    pitch = math.atan2(-dy, math.hypot(dx, dz))
    without_roll = _yaw_matrix(yaw) @ _pitch_matrix(pitch)
    residual = without_roll.T @ rotation
    roll = math.atan2(residual[1, 0], residual[0, 0])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def _yaw_matrix(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def _pitch_matrix(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def frontalize(landmarks: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """The 3D landmarks turned back to face the camera, centred, in units of the inter-ocular distance.

    The mesh's z is in the same pixel scale as x and y, so undoing the head rotation makes widths and
    heights comparable whatever the pose (a turned head no longer looks like a narrow mouth).
    """
    centred = landmarks - landmarks.mean(axis=0)
    upright = centred @ rotation  # row-vector form of rotation.T @ point
    return upright / inter_ocular(upright)


def inter_ocular(points: np.ndarray) -> float:
    left = points[list(LEFT_EYE_CORNERS)].mean(axis=0)
    right = points[list(RIGHT_EYE_CORNERS)].mean(axis=0)
    return float(np.linalg.norm(right - left)) or 1.0


@dataclass(frozen=True)
class Expression:
    """Scale-free measurements on the frontalized face (``eye_detail`` on the image); the analyzer thresholds them."""

    eye_openness: float  # eyelid gap over eye width, mean of both eyes
    eye_detail: float  # grey-level spread between the eye corners over the skin around them (see eye_detail)
    mouth_gap: float  # inner-lip gap over mouth width
    # Lip corners above the inner-lip centre (between both inner lips), over mouth width: a smile lifts the corners
    # whatever the person's mouth width; a dropped jaw lowers the lower lip and so the centre, not the corners.
    corner_lift: float


def measure_expression(upright: np.ndarray, eye_detail: float) -> Expression:
    mouth_width = max(float(np.linalg.norm(upright[MOUTH_CORNER_RIGHT] - upright[MOUTH_CORNER_LEFT])), 1e-6)
    lip_gap = float(np.linalg.norm(upright[LOWER_LIP_INNER] - upright[UPPER_LIP_INNER]))
    corners_y = (upright[MOUTH_CORNER_LEFT, 1] + upright[MOUTH_CORNER_RIGHT, 1]) / 2.0
    lip_centre_y = (upright[UPPER_LIP_INNER, 1] + upright[LOWER_LIP_INNER, 1]) / 2.0
    eyes = (eye_openness(upright, LEFT_EYE_CONTOUR), eye_openness(upright, RIGHT_EYE_CONTOUR))
    return Expression(
        eye_openness=float(np.mean(eyes)),
        eye_detail=eye_detail,
        mouth_gap=lip_gap / mouth_width,
        corner_lift=float(lip_centre_y - corners_y) / mouth_width,  # y points down: positive = corners higher
    )


def eye_openness(points: np.ndarray, contour: tuple[int, ...]) -> float:
    """Eye aspect ratio: mean gap between the upper lid and the lower lid below it, over the corner distance."""
    lower = points[list(contour[2:7])]  # the five lower points under the eye's middle
    upper = points[list(contour[10:15])]  # the five upper points above them
    width = float(np.linalg.norm(points[contour[8]] - points[contour[0]]))
    gaps = np.linalg.norm(upper[:, :2] - lower[:, :2], axis=1)
    return float(gaps.mean()) / max(width, 1e-6)


# The eye patch, in corner distances from the eye's centre along and across the corner line: the part between
# the corners where an open eye shows iris and sclera, and the skin around the eye to compare it with.
EYE_PATCH_SAMPLES = (48, 28)  # across x in [-1, 1], y in [-0.6, 0.6]
EYE_INNER_HALF = (0.35, 0.15)
EYE_SKIN_BEYOND = (0.7, 0.35)  # |x| beyond the first, or |y| beyond the second with |x| <= 0.9
EYE_SKIN_MAX_X = 0.9


def eye_detail(gray: np.ndarray, landmarks: np.ndarray, contour: tuple[int, ...]) -> float:
    """Standard deviation of the grey levels between the eye's corners over the median grey of the skin around.

    An open eye shows a dark iris against sclera and a highlight; a closed lid is flat skin. The patch is sampled in
    corner distances (scale-free) and aligned with the corner line (roll-free); dividing by the skin's grey makes
    it independent of exposure.
    """
    first, second = landmarks[contour[0], :2], landmarks[contour[8], :2]
    width = max(float(np.linalg.norm(second - first)), 1e-6)
    along = (second - first) / width
    across = np.array([-along[1], along[0]])
    centre = (first + second) / 2.0
    xs, ys = np.meshgrid(np.linspace(-1.0, 1.0, EYE_PATCH_SAMPLES[0]), np.linspace(-0.6, 0.6, EYE_PATCH_SAMPLES[1]))
    map_x = (centre[0] + width * (xs * along[0] + ys * across[0])).astype(np.float32)
    map_y = (centre[1] + width * (xs * along[1] + ys * across[1])).astype(np.float32)
    patch = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    inner = (np.abs(xs) <= EYE_INNER_HALF[0]) & (np.abs(ys) <= EYE_INNER_HALF[1])
    skin = (np.abs(xs) > EYE_SKIN_BEYOND[0]) | ((np.abs(xs) <= EYE_SKIN_MAX_X) & (np.abs(ys) > EYE_SKIN_BEYOND[1]))
    return float(patch[inner].std()) / (float(np.median(patch[skin])) + 1e-6)


def eyes_detail(gray: np.ndarray, landmarks: np.ndarray) -> float:
    """``eye_detail`` of both eyes, averaged (image landmarks, after the iris model refined the eye contours)."""
    return float(np.mean([eye_detail(gray, landmarks, c) for c in (LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR)]))
