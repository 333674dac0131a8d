"""The OpenCV layer is reusable: published for other apps (output + SSM parameter), and shared inside this app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from cdk_app.config import DEFAULT_LAYER_ARN_PARAMETER
from tests.infra.layer_consumers import OPENCV_LAYER_ARN_PARAMETER, IdDocumentStack, add_id_document_reader
from tests.infra.synth import cdk_json_context, synth_template
from tests.infra.test_nag import violations


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def the_layer(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one OpenCV layer (the web client's deployment brings the AWS CLI layer of CDK's BucketDeployment too)."""
    layers = resources_of(template, "AWS::Lambda::LayerVersion").items()
    ((layer_id, layer),) = [(key, value) for key, value in layers if key.startswith("OpenCvLayer")]
    return layer_id, layer["Properties"]


def functions_by_id(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: value["Properties"] for key, value in resources_of(template, "AWS::Lambda::Function").items()}


@pytest.fixture(scope="module")
def liveness_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth_template(tmp_path_factory.mktemp("cdk.out"))


def test_stack_outputs_the_layer_arn_with_its_runtime_and_architecture(liveness_template: dict[str, Any]) -> None:
    layer_id, _ = the_layer(liveness_template)
    output = liveness_template["Outputs"]["OpenCvLayerArn"]
    assert output["Value"] == {"Ref": layer_id}  # Ref of a LayerVersion is its versioned ARN
    assert "Export" not in output  # consumers use the parameter; an export would pin this stack
    for named in ("python3.14", "arm64", DEFAULT_LAYER_ARN_PARAMETER):
        assert named in output["Description"]


def test_stack_publishes_the_layer_arn_in_an_ssm_parameter(liveness_template: dict[str, Any]) -> None:
    layer_id, _ = the_layer(liveness_template)
    (parameter,) = [p["Properties"] for p in resources_of(liveness_template, "AWS::SSM::Parameter").values()]
    assert parameter["Name"] == DEFAULT_LAYER_ARN_PARAMETER == "/kyc-liveness/opencv-layer/arn"
    assert parameter["Type"] == "String"
    assert parameter["Value"] == {"Ref": layer_id}
    assert "python3.14" in parameter["Description"] and "arm64" in parameter["Description"]


def test_parameter_name_comes_from_context(tmp_path: Path) -> None:
    template = synth_template(tmp_path, **{"liveness:layerArnParameter": "/kyc-staging/opencv-layer/arn"})
    (parameter,) = resources_of(template, "AWS::SSM::Parameter").values()
    assert parameter["Properties"]["Name"] == "/kyc-staging/opencv-layer/arn"
    assert "/kyc-staging/opencv-layer/arn" in template["Outputs"]["OpenCvLayerArn"]["Description"]


def test_another_app_resolves_the_layer_from_the_parameter(tmp_path: Path, liveness_template: dict[str, Any]) -> None:
    """The example consumer synthesizes in an app of its own, with the layer's ARN left to deploy time."""
    app = cdk.App(outdir=str(tmp_path))
    IdDocumentStack(app, "KycIdDocument")
    consumer = app.synth().get_stack_by_name("KycIdDocument").template

    assert not resources_of(consumer, "AWS::Lambda::LayerVersion")  # nothing rebuilt
    ((parameter_id, parameter),) = [(key, p) for key, p in consumer["Parameters"].items() if key != "BootstrapVersion"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    # The name the consumer asks for is the one KycLiveness publishes.
    (published,) = resources_of(liveness_template, "AWS::SSM::Parameter").values()
    assert parameter["Default"] == OPENCV_LAYER_ARN_PARAMETER == published["Properties"]["Name"]

    (function,) = functions_by_id(consumer).values()
    assert function["Layers"] == [{"Ref": parameter_id}]
    _, layer = the_layer(liveness_template)
    assert [function["Runtime"]] == layer["CompatibleRuntimes"]
    assert function["Architectures"] == layer["CompatibleArchitectures"]


def test_functions_of_this_app_share_the_one_layer(tmp_path: Path) -> None:
    """A function added to KycLiveness, and one in a second stack of the app, use the stack's layer as is.

    The app is built as app.py builds it, cdk-nag included, so synth also proves the reuse adds no finding.
    """
    from cdk_app.application import build_app

    context = cdk_json_context(**{"aws:cdk:bundling-stacks": []})
    app = build_app(cdk.App(context=context, outdir=str(tmp_path)))
    liveness = app.node.find_child("KycLiveness")
    in_stack = add_id_document_reader(liveness, liveness)
    sibling = cdk.Stack(app, "KycIdDocument")
    add_id_document_reader(sibling, liveness)
    assembly = app.synth()

    template = assembly.get_stack_by_name("KycLiveness").template
    layer_id, layer = the_layer(template)  # still exactly one layer
    added = functions_by_id(template)[liveness.get_logical_id(in_stack.node.default_child)]
    assert added["Layers"] == [{"Ref": layer_id}]
    assert [added["Runtime"]] == layer["CompatibleRuntimes"] == ["python3.14"]
    assert added["Architectures"] == layer["CompatibleArchitectures"] == ["arm64"]

    other = assembly.get_stack_by_name("KycIdDocument").template
    assert not resources_of(other, "AWS::Lambda::LayerVersion")
    (function,) = functions_by_id(other).values()
    assert function["Architectures"] == ["arm64"] and function["Runtime"] == "python3.14"
    # cdk.json makes cross-stack references weak: the layer comes through Fn::GetStackOutput, with no export
    # binding the two stacks.
    (layer_ref,) = function["Layers"]
    reference = layer_ref["Fn::GetStackOutput"]
    assert reference["StackName"] == "KycLiveness"
    assert template["Outputs"][reference["OutputName"]]["Value"] == {"Ref": layer_id}
    assert not [name for name, output in template["Outputs"].items() if "Export" in output]

    if (tmp_path / "validation-report.json").exists():
        assert violations(tmp_path) == []  # cdk-nag ran on both stacks: warnings count too
