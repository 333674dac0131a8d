"""SnapStart's runtime hooks, driven as Lambda drives them, in a fresh interpreter (the handler's module-level
start-up runs once per process): import the handler with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``, run
the before-snapshot hooks (in reverse order of registration, as the runtime does), then the after-restore hooks,
then answer a request. S3 is moto; the analyzer is the embedded one, with its real models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testkit.aws import FAKE_AWS_ENV

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import base64, json, os, sys

import boto3
import cv2
from moto import mock_aws
from skimage import data

out = sys.argv[1]
counts = {"models_loaded": 0, "analyzers_built": 0}

with mock_aws():
    boto3.client("s3").create_bucket(Bucket="archive")

    import liveness.analyzers.mesh as mesh
    import liveness.wiring as wiring

    class CountingModels(mesh._Models):
        def __init__(self, *args, **kwargs):
            counts["models_loaded"] += 1
            super().__init__(*args, **kwargs)

    mesh._Models = CountingModels
    build_analyzer = wiring.build_analyzer

    def counting_build_analyzer(*args, **kwargs):
        counts["analyzers_built"] += 1
        return build_analyzer(*args, **kwargs)

    wiring.build_analyzer = counting_build_analyzer

    import snapshot_restore_py as hooks
    from liveness import handler

    report = {"at_import": {**counts, "app": handler.is_prepared()}}
    before = hooks.get_before_snapshot()
    report["hooks"] = [len(before), len(hooks.get_after_restore())]
    while before:  # the runtime pops them: last registered first
        func, args, kwargs = before.pop()
        func(*args, **kwargs)
    report["after_snapshot_hooks"] = {**counts, "app": handler.is_prepared()}
    deps = handler.current_dependencies()
    for func, args, kwargs in hooks.get_after_restore():
        func(*args, **kwargs)
    report["after_restore"] = {
        **counts,
        "same_analyzer": handler.current_dependencies().analyzer is deps.analyzer,
        "same_prescreen": handler.current_dependencies().prescreen is deps.prescreen,
        "new_s3_client": handler.current_dependencies().archive.client is not deps.archive.client,
        "new_dynamodb_client": handler.current_dependencies().session_store.client is not deps.session_store.client,
    }
    if os.environ["ANALYZER"] != "local":  # Rekognition is across the network: the hooks are what is tested here
        with open(out, "w") as handle:
            json.dump(report, handle)
        sys.exit(0)
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    image = "data:image/jpeg;base64," + base64.b64encode(cv2.imencode(".jpg", bgr)[1].tobytes()).decode()
    from testkit.events import LambdaContext, api_event

    response = handler.lambda_handler(api_event("POST", "/detect", {"image_bytes": image}), LambdaContext())
    report["first_request"] = {**counts, "status": response["statusCode"]}
    keys = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket="archive").get("Contents", [])]
    report["archived"] = len(keys)

with open(out, "w") as handle:
    json.dump(report, handle)
"""


def _run_hooks(tmp_path: Path, **extra: str) -> dict:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
        **FAKE_AWS_ENV,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lambda_src"), str(ROOT)]),
        "AWS_LAMBDA_FUNCTION_NAME": "liveness",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "ANALYZER": "local",
        "STORAGE": "aws",
        "ARCHIVE_BUCKET": "archive",
        "SESSIONS_TABLE": "sessions",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **extra,
    }
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_before_snapshot_hook_does_the_expensive_start_and_the_handler_does_not_repeat_it(tmp_path: Path) -> None:
    report = _run_hooks(tmp_path)
    # Importing the handler only registers the hooks: one before the snapshot, one after each restore.
    assert report["hooks"] == [1, 1]
    assert report["at_import"] == {"models_loaded": 0, "analyzers_built": 0, "app": False}
    # The before-snapshot hook builds the clients and the analyzer, and loads the models.
    assert report["after_snapshot_hooks"] == {"models_loaded": 1, "analyzers_built": 1, "app": True}
    # After a restore: fresh AWS clients (new credentials and connections), the same analyzer and models.
    assert report["after_restore"] == {
        "models_loaded": 1,
        "analyzers_built": 1,
        "same_analyzer": True,
        "same_prescreen": True,  # none in local mode
        "new_s3_client": True,
        "new_dynamodb_client": True,
    }
    # The first request answers without loading or building anything again.
    assert report["first_request"] == {"models_loaded": 1, "analyzers_built": 1, "status": 200}
    assert report["archived"] == 2


def test_the_prescreens_models_load_before_the_snapshot_on_the_rekognition_path(tmp_path: Path) -> None:
    """ANALYZER=rekognition with PRESCREEN=on: the embedded models are loaded in the before-snapshot hook and
    kept after a restore, while the Rekognition client is built afresh."""
    report = _run_hooks(tmp_path, ANALYZER="rekognition", PRESCREEN="on")
    assert report["after_snapshot_hooks"] == {"models_loaded": 1, "analyzers_built": 1, "app": True}
    restored = report["after_restore"]
    assert restored["models_loaded"] == 1 and restored["same_prescreen"] and not restored["same_analyzer"]
