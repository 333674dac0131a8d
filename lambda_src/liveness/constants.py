"""Names more than one module must spell the same way: the metrics namespace and the archive's file extensions."""

from __future__ import annotations

METRICS_NAMESPACE = "KycLiveness"  # the CDK stack sets POWERTOOLS_METRICS_NAMESPACE to the same value
# The archive keeps every upload as received, so its key carries the upload's real type.
IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
