"""POST /detect: describe the single face in one frame, archive the evidence, answer in the workshop's shape."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from .archive import ArchiveRef, new_detection_prefix
from .constants import IMAGE_EXTENSIONS
from .dependencies import Dependencies
from .errors import ErrorCode, LivenessError
from .faces import FaceDetail, Frame
from .images.crop import crop_face, encode_jpeg
from .images.intake import receive_upload
from .parallel import start, wait


@dataclass(frozen=True)
class Detection:
    frame: Frame
    upload: bytes
    upload_type: str
    face: FaceDetail
    face_count: int
    face_jpeg: bytes
    face_size: tuple[int, int]
    archive: ArchiveRef


def the_only_face(faces: list[FaceDetail]) -> FaceDetail:
    """KYC needs exactly one person in the frame."""
    if not faces:
        raise LivenessError(ErrorCode.NO_FACE, "No face was found in the image.")
    if len(faces) > 1:
        raise LivenessError(
            ErrorCode.MULTIPLE_FACES, f"{len(faces)} faces were found; exactly one person must be in view."
        )
    return faces[0]


def detect(body: dict[str, Any], deps: Dependencies, request_id: str) -> Detection:
    upload = receive_upload(body.get("image_bytes"), limits=deps.image_limits)
    frame = upload.frame
    faces = deps.analyzer.detect_faces(frame)
    face = the_only_face(faces)
    crop = crop_face(frame, face.bounding_box)
    face_jpeg = encode_jpeg(crop)
    # The frame may have been re-encoded; archive the original.
    archive = _archive(deps, request_id, upload.raw, upload.content_type, face_jpeg)
    return Detection(
        frame=frame,
        upload=upload.raw,
        upload_type=upload.content_type,
        face=face,
        face_count=len(faces),
        face_jpeg=face_jpeg,
        face_size=(int(crop.shape[1]), int(crop.shape[0])),
        archive=archive,
    )


def _archive(deps: Dependencies, request_id: str, upload: bytes, upload_type: str, face_jpeg: bytes) -> ArchiveRef:
    """The original upload and the face crop, each written once under a fresh random prefix.

    /detect decides nothing, so the measurements go back to the client rather than into an audit record;
    the objects carry the request id (which the logs and the access log also carry) and the analyzer.

    The two writes run at once, and the answer waits for both: the crop's write needs the analysis (its
    bounding box), so it is on the critical path whatever we do; the upload's runs beside it. The upload is
    not written before the analysis, so a frame refused for its faces (none, or several) is not archived."""
    prefix = new_detection_prefix(deps.clock())
    ref = ArchiveRef(
        id=prefix.rsplit("/", 1)[-1],
        frame_key=f"{prefix}/frame.{IMAGE_EXTENSIONS[upload_type]}",
        face_key=f"{prefix}/face.jpg",
    )
    provenance = {"request-id": request_id, "analyzer": deps.analyzer.name}
    upload_written = start(deps.archive.put_new, ref.frame_key, upload, upload_type, provenance)
    try:
        deps.archive.put_new(ref.face_key, face_jpeg, "image/jpeg", provenance)
    finally:
        wait(upload_written)  # never answer (even an error) with a write still in flight
    upload_written.result()  # its error, if it failed: a 503 like the crop's
    return ref


def _shaped(value: Any) -> Any:
    return value.to_rekognition() if value is not None else None


def _lower_keys(value: Any) -> dict[str, Any] | None:
    """The seed's handler answers ``agerange`` and ``pose`` with lower-case keys ({"low", "high"}, {"roll", "yaw",
    "pitch"}), unlike its other fields; a frontend written for it reads those keys."""
    shaped = _shaped(value)
    return {key.lower(): item for key, item in shaped.items()} if shaped is not None else None


def detection_response(detection: Detection, request_id: str) -> dict[str, Any]:
    """The workshop frontend's fields, spelled as the seed spells them, plus what a real client needs."""
    face = detection.face
    return {
        # The livedetector contract: Rekognition's own shapes.
        "gender": _shaped(face.gender),
        "smile": _shaped(face.smile),
        "eyesOpen": _shaped(face.eyes_open),
        "agerange": _lower_keys(face.age_range),
        "pose": _lower_keys(face.pose),
        "mouthOpen": _shaped(face.mouth_open),
        "encoded_face_image": base64.b64encode(detection.face_jpeg).decode("ascii"),
        # Additions.
        "boundingBox": face.bounding_box.to_rekognition(),
        "confidence": face.confidence,
        "quality": _shaped(face.quality),
        "faceCount": detection.face_count,
        "faceImage": {"width": detection.face_size[0], "height": detection.face_size[1]},
        "image": {"width": detection.frame.width, "height": detection.frame.height},
        "archive": detection.archive.to_json(),
        "requestId": request_id,
    }
