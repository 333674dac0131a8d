"""Synthesize the real app the way the CLI does: with cdk.json's context (feature flags included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_json_context(**overrides: Any) -> dict[str, Any]:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context.update(overrides)
    return context


def synth_template(outdir: Path, *, bundle: bool = False, **context_overrides: Any) -> dict[str, Any]:
    """The KycLiveness template. Without ``bundle`` the layer is not built (its asset hash is still computed)."""
    from cdk_app.application import build_app

    context = cdk_json_context(**context_overrides)
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    app = build_app(cdk.App(context=context, outdir=str(outdir)))
    assembly = app.synth()
    return assembly.get_stack_by_name("KycLiveness").template
