"""Turn the runtime's draft-04 JSON schema files into API Gateway models, so both validate the same rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import aws_apigateway as apigw

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "lambda_src" / "liveness" / "schemas"

_SIMPLE_KEYS = {
    "title": "title",
    "description": "description",
    "required": "required",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "minItems": "min_items",
    "maxItems": "max_items",
    "pattern": "pattern",
    "enum": "enum",
    "format": "format",
}


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def to_api_gateway(schema: dict[str, Any]) -> apigw.JsonSchema:
    props: dict[str, Any] = {key: schema[raw] for raw, key in _SIMPLE_KEYS.items() if raw in schema}
    if "$schema" in schema:
        props["schema"] = apigw.JsonSchemaVersion.DRAFT4
    if "type" in schema:
        props["type"] = _type(schema["type"])
    if "properties" in schema:
        props["properties"] = {name: to_api_gateway(sub) for name, sub in schema["properties"].items()}
    if "items" in schema:
        props["items"] = to_api_gateway(schema["items"])
    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        props["additional_properties"] = extra if isinstance(extra, bool) else to_api_gateway(extra)
    unknown = set(schema) - set(_SIMPLE_KEYS) - {"$schema", "type", "properties", "items", "additionalProperties"}
    if unknown:
        raise ValueError(f"schema keywords not mapped to API Gateway: {sorted(unknown)}")
    return apigw.JsonSchema(**props)


def _type(raw: str | list[str]) -> apigw.JsonSchemaType | list[apigw.JsonSchemaType]:
    # jsii enums are keyed by member name ("OBJECT"), not by the JSON value ("object").
    if isinstance(raw, list):
        return [apigw.JsonSchemaType[item.upper()] for item in raw]
    return apigw.JsonSchemaType[raw.upper()]
