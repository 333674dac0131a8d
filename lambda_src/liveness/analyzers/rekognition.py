"""Amazon Rekognition behind the Analyzer interface.

botocore retries throttling and 5xx with its standard mode first; what still fails becomes a 503 with
``Retry-After``, so clients back off instead of seeing a 500.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ErrorCode, LivenessError, unavailable
from ..faces import FaceComparison, FaceDetail, Frame

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=8)

_RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailableException",
        "LimitExceededException",
    }
)
_IMAGE_PROBLEMS = {
    "ImageTooLargeException": (ErrorCode.PAYLOAD_TOO_LARGE, "The image is too large for face analysis."),
    "InvalidImageFormatException": (ErrorCode.INVALID_IMAGE, "The image format was not accepted for face analysis."),
    "InvalidParameterException": (ErrorCode.INVALID_IMAGE, "The image could not be analysed (too small or corrupt)."),
}


class RekognitionAnalyzer:
    name = "rekognition"
    pose_robust_comparison = True  # docs/sessions.md, "Identity through the movement": no chain, no range

    def __init__(self, client: Any) -> None:
        self._client = client

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        response = self._call("detect_faces", Image={"Bytes": frame.encoded}, Attributes=["ALL"])
        return [FaceDetail.from_rekognition(item) for item in response.get("FaceDetails", [])]

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        return self.describe_and_compare(reference, candidate)[1]

    def describe_and_compare(self, reference: Frame, candidate: Frame) -> tuple[list[FaceDetail], FaceComparison]:
        """One CompareFaces call for both: it describes every face of the target (box, confidence, pose, quality,
        landmarks, smile) along with its similarity, which is all a head movement's rules read."""
        method = "rekognition:CompareFaces"
        try:
            response = self._call(
                "compare_faces",
                SourceImage={"Bytes": reference.encoded},
                TargetImage={"Bytes": candidate.encoded},
                SimilarityThreshold=0,
            )
        except LivenessError as error:
            if error.code is ErrorCode.INVALID_IMAGE:  # no face found in one of the images
                return [], FaceComparison(similarity=0.0, method=method)
            raise
        matches = response.get("FaceMatches", [])
        faces = [FaceDetail.from_rekognition(match.get("Face", {})) for match in matches]
        faces += [FaceDetail.from_rekognition(face) for face in response.get("UnmatchedFaces", [])]
        similarities = [float(match.get("Similarity", 0.0)) for match in matches]
        return faces, FaceComparison(similarity=max(similarities, default=0.0), method=method)

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(**params)
        except ClientError as error:
            raise _translate(error) from None
        except BotoCoreError:
            raise unavailable(ErrorCode.ANALYZER_UNAVAILABLE, "Face analysis") from None


def _translate(error: ClientError) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code in _RETRYABLE:
        return unavailable(ErrorCode.ANALYZER_UNAVAILABLE, "Face analysis")
    if code in _IMAGE_PROBLEMS:
        error_code, message = _IMAGE_PROBLEMS[code]
        return LivenessError(error_code, message)
    return error  # AccessDenied and the like are deployment bugs: a 500 without details
