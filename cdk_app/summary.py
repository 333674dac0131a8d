"""Synthesize the app with the real layer (built locally, no Docker) and print what it would deploy.

``python -m cdk_app.summary`` (``make summary``) writes cdk.out/ like ``cdk synth`` and prints:
the resources by type, the layer's unzipped size against its budget, and the API routes.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from .application import build_app
from .bundling import unzipped_size_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(outdir: Path = REPO_ROOT / "cdk.out") -> int:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assembly = build_app(cdk.App(context=context, outdir=str(outdir))).synth()
    template = assembly.get_stack_by_name("KycLiveness").template
    print(f"Synthesized {outdir / 'KycLiveness.template.json'} (cdk-nag AwsSolutions: no unacknowledged findings)\n")
    print_resources(template)
    layer_dir = staged_layer_dir(outdir, template)
    if layer_dir is not None:
        size = unzipped_size_bytes(layer_dir)
        print(f"\nLayer: {size / 1e6:.1f} MB unzipped ({layer_dir.name})")
    print("\nAPI routes:")
    for method, path, auth in api_routes(template):
        print(f"  {method:7} {path:30} {auth}")
    return 0


def print_resources(template: dict[str, Any]) -> None:
    counts = Counter(resource["Type"] for resource in template["Resources"].values())
    print("Resources:")
    for resource_type, count in sorted(counts.items()):
        print(f"  {count:3} x {resource_type}")


def staged_layer_dir(outdir: Path, template: dict[str, Any]) -> Path | None:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::LayerVersion":
            asset_hash = resource["Properties"]["Content"]["S3Key"].removesuffix(".zip")
            candidate = outdir / f"asset.{asset_hash}"
            return candidate if candidate.is_dir() else None
    return None


def api_routes(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    resources = template["Resources"]

    def path_of(ref: Any) -> str:
        if not isinstance(ref, dict) or "Ref" not in ref:
            return ""  # the root resource
        part = resources[ref["Ref"]]["Properties"]
        return f"{path_of(part['ParentId'])}/{part['PathPart']}"

    routes = []
    for resource in resources.values():
        if resource["Type"] == "AWS::ApiGateway::Method":
            props = resource["Properties"]
            routes.append((props["HttpMethod"], path_of(props["ResourceId"]) or "/", props["AuthorizationType"]))
    return sorted(routes, key=lambda route: (route[1], route[0]))


if __name__ == "__main__":
    sys.exit(main())
