"""Docker-free bundling of a Python Lambda layer with the local pip.

pip can install wheels for another platform (``--platform``/``--python-version``/``--abi``
with ``--only-binary=:all:``), so a layer for arm64 / CPython 3.14 builds on any machine
with Python and pip, without Docker.  The same pip flags and the same strip code also make
up the Docker fallback command, so both paths produce the same layer.

Caching: CDK leaves the local-bundling object out of the asset hash.  Everything that
changes the output therefore goes into ``BundlingOptions.environment`` (and the Docker
command), which CDK does hash.  With ``AssetHashType.SOURCE`` the hash is known before
bundling, so an existing ``cdk.out/asset.<hash>`` is reused and pip does not run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import shlex
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import aws_cdk as cdk
import jsii

MIB = 1024 * 1024

# Bump when the bundler changes its output in a way the other settings do not capture.
BUNDLER_VERSION = "1"

# Newest first.  Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34).
# pip given only manylinux2014 silently resolves to old numpy releases, so list all three.
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")

# Glob patterns (relative to the layer's python/ dir) for files that are never imported
# at run time.  Anything under a *.dist-info dir is kept: it holds the licences and lets
# importlib.metadata report versions.
STRIP_RULES: tuple[str, ...] = (
    "**/tests",  # test suites (numpy's are ~8 MB)
    "**/__pycache__",  # bytecode for the wrong interpreter; none with --no-compile
    "**/*.pyi",  # type stubs
    "**/*.pxd",  # Cython declarations
    "**/*.h",  # C headers
    "**/*.a",  # static libraries, only for building C extensions
    "numpy/_core/include",  # numpy C API headers
    "numpy/_core/lib/pkgconfig",
    "numpy/f2py",  # Fortran wrapper generator; numpy imports it lazily
    "cv2/data/*.xml",  # Haar cascades; the analyser uses DNN models instead
    # Swagger UI's bundled JS/CSS (1.6 MB) serve only Powertools' enable_swagger(), which we never call.
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.*",
)


def strip_tree(root: str, rules: Sequence[str]) -> None:
    """Delete everything under ``root`` matching ``rules``, except inside *.dist-info.

    Self-contained on purpose: its source is also run by the Docker fallback.
    """
    import shutil
    from pathlib import Path

    root_path = Path(root)
    for rule in rules:
        # Deepest paths first, so a parent removal never hides a later match.
        for path in sorted(root_path.glob(rule), reverse=True):
            if any(part.endswith(".dist-info") for part in path.relative_to(root_path).parts):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.is_symlink() or path.exists():
                path.unlink()


def strip_fingerprint(rules: Sequence[str] = STRIP_RULES) -> str:
    """Short hash of the strip rules and the strip code, for the asset hash."""
    digest = hashlib.sha256(inspect.getsource(strip_tree).encode())
    digest.update(repr(tuple(rules)).encode())
    return digest.hexdigest()[:16]


def unzipped_size_bytes(path: str | os.PathLike[str]) -> int:
    """Total size of the regular files under ``path``: what Lambda counts as unzipped size."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            file_path = os.path.join(dirpath, name)
            if not os.path.islink(file_path):
                total += os.path.getsize(file_path)
    return total


def manylinux_platforms(machine: str) -> tuple[str, ...]:
    """pip ``--platform`` tags for a machine ("aarch64" or "x86_64"), newest glibc first."""
    return tuple(f"{tag}_{machine}" for tag in GLIBC_TAGS)


@dataclasses.dataclass(frozen=True)
class PipLayerSpec:
    """Everything that determines the layer's content."""

    source_dir: Path  # holds the requirements files
    requirements: tuple[str, ...]  # files installed with their dependencies
    no_deps_requirements: tuple[str, ...]  # files installed with --no-deps
    python_version: str  # "3.14"
    machine: str  # "aarch64" or "x86_64"
    strip_rules: tuple[str, ...] = STRIP_RULES
    max_unzipped_bytes: Optional[int] = None  # fail the build above this size

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def platforms(self) -> tuple[str, ...]:
        return manylinux_platforms(self.machine)

    def pip_install_args(self, target: str, requirements_file: str, *, no_deps: bool) -> list[str]:
        """Arguments after ``python -m pip``: wheels only, for the Lambda platform."""
        args = [
            "install",
            "--target",
            target,
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--abi",
            self.abi,
        ]
        for platform in self.platforms:
            args += ["--platform", platform]
        # No bytecode: the host interpreter would compile for its own version, not the runtime's.
        args += ["--no-compile", "--disable-pip-version-check", "--progress-bar", "off"]
        if no_deps:
            args.append("--no-deps")
        return args + ["-r", requirements_file]

    def pip_invocations(self, target: str, source_dir: str) -> list[list[str]]:
        """One ``pip install`` argument list per requirements file, in install order."""
        runs = [(name, False) for name in self.requirements]
        runs += [(name, True) for name in self.no_deps_requirements]
        return [
            self.pip_install_args(target, os.path.join(source_dir, name), no_deps=no_deps) for name, no_deps in runs
        ]

    def environment(self) -> dict[str, str]:
        """Build settings for BundlingOptions.environment, which CDK includes in the asset hash."""
        return {
            "LAYER_BUNDLER_VERSION": BUNDLER_VERSION,
            "LAYER_MACHINE": self.machine,
            "LAYER_PYTHON_VERSION": self.python_version,
            "LAYER_ABI": self.abi,
            "LAYER_PLATFORMS": " ".join(self.platforms),
            "LAYER_REQUIREMENTS": " ".join(self.requirements),
            "LAYER_NO_DEPS_REQUIREMENTS": " ".join(self.no_deps_requirements),
            "LAYER_STRIP": strip_fingerprint(self.strip_rules),
            "LAYER_MAX_UNZIPPED_BYTES": str(self.max_unzipped_bytes or ""),
        }

    def docker_command(self) -> list[str]:
        """Fallback for cdk's Docker bundling: same pip flags, same strip code."""
        output = f"{cdk.AssetStaging.BUNDLING_OUTPUT_DIR}/python"
        steps = [
            shlex.join(["python", "-m", "pip", *args, "--cache-dir", "/tmp/pip-cache"])
            for args in self.pip_invocations(output, cdk.AssetStaging.BUNDLING_INPUT_DIR)
        ]
        strip_script = (
            "from __future__ import annotations\n"  # leaves strip_tree's type hints unevaluated
            + textwrap.dedent(inspect.getsource(strip_tree))
            + f"\nstrip_tree({output!r}, {tuple(self.strip_rules)!r})\n"
        )
        steps.append(shlex.join(["python", "-c", strip_script]))
        return ["bash", "-c", " && ".join(steps)]

    def bundling_options(self, image: cdk.DockerImage) -> cdk.BundlingOptions:
        return cdk.BundlingOptions(
            image=image,
            command=self.docker_command(),
            environment=self.environment(),
            local=LocalPipBundling(self),
        )


def _pip_is_usable() -> bool:
    if not sys.executable:
        return False
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "pip", "--version"],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return probe.returncode == 0


def _run_pip(args: list[str]) -> None:
    # pip's output is echoed to stderr, never stdout: `cdk synth` output may be parsed.
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    sys.stderr.write(result.stdout)
    if result.returncode != 0:
        raise RuntimeError(f"pip install failed (exit {result.returncode}): {shlex.join(args)}")


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundling:
    """Builds the layer with this interpreter's pip; CDK falls back to Docker only without pip."""

    # Counts real builds in this process; tests use it to prove cache hits.
    build_count = 0

    def __init__(self, spec: PipLayerSpec) -> None:
        self.spec = spec

    # The signature mirrors cdk.ILocalBundling.try_bundle: jsii passes the BundlingOptions
    # struct as these keyword-only arguments.
    def try_bundle(
        self,
        output_dir: str,
        *,
        image: cdk.DockerImage,
        bundling_file_access: Optional[cdk.BundlingFileAccess] = None,
        command: Optional[Sequence[str]] = None,
        entrypoint: Optional[Sequence[str]] = None,
        environment: Optional[Mapping[str, str]] = None,
        local: Optional[cdk.ILocalBundling] = None,
        network: Optional[str] = None,
        output_type: Optional[cdk.BundlingOutput] = None,
        platform: Optional[str] = None,
        security_opt: Optional[str] = None,
        user: Optional[str] = None,
        volumes: Optional[Sequence[Any]] = None,
        volumes_from: Optional[Sequence[str]] = None,
        working_directory: Optional[str] = None,
    ) -> bool:
        if not _pip_is_usable():
            print("Local pip is unusable; falling back to Docker bundling.", file=sys.stderr)
            return False
        started = time.monotonic()
        self.build(output_dir)
        LocalPipBundling.build_count += 1
        size = unzipped_size_bytes(output_dir)
        print(
            f"Layer built in {time.monotonic() - started:.1f} s: "
            f"{size / MIB:.1f} MiB unzipped ({self.spec.machine}, {self.spec.abi})",
            file=sys.stderr,
        )
        return True

    def build(self, output_dir: str) -> None:
        """pip install every requirements file into <output_dir>/python, strip, check size."""
        target = os.path.join(output_dir, "python")
        for args in self.spec.pip_invocations(target, str(self.spec.source_dir)):
            _run_pip(args)
        strip_tree(target, self.spec.strip_rules)
        limit = self.spec.max_unzipped_bytes
        size = unzipped_size_bytes(output_dir)
        if limit is not None and size > limit:
            raise RuntimeError(
                f"Layer is {size / MIB:.1f} MiB unzipped, over its {limit / MIB:.0f} MiB budget; "
                "trim the requirements or STRIP_RULES."
            )
