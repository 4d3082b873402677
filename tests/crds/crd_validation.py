"""Validate objects against a generated CRD the way the API server does, without a server.

Two real validators do the work: ``jsonschema`` (Draft 4, whose boolean ``exclusiveMinimum``
is what Kubernetes' OpenAPI v3.0 schemas use) for the structural schema, and ``cel-python``
for the ``x-kubernetes-validations`` rules. Errors are reported in the API server's words
(kube-openapi's validation messages and ``field: Invalid value: "object": message`` for CEL),
so tests can assert what a user would read from ``kubectl apply``.

NOTE: the wording of schema errors is modelled on kube-openapi as of Kubernetes 1.30; it is
not compared against a live API server here, while CEL messages are our own and exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import jsonschema


@dataclasses.dataclass(frozen=True)
class Rejection:
    """One validation error: where, which constraint, and the message a user would see."""

    path: str  # e.g. "spec.cloud.model" with list items as "spec.alerts.thresholdsPercent[]"
    keyword: str  # a JSON-schema keyword such as "pattern", or "x-kubernetes-validations"
    message: str


def openapi_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    """Return the openAPIV3Schema of the CRD's only version."""
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate(crd: Mapping[str, Any], document: Mapping[str, Any]) -> list[Rejection]:
    """Return every schema and CEL error for ``document``; empty when the API server would accept it."""
    schema = openapi_schema(crd)
    return [*schema_rejections(schema, document), *cel_rejections(schema, document, path="")]


def schema_rejections(schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[Rejection]:
    """Validate with jsonschema and translate each error into the API server's wording."""
    validator = jsonschema.Draft4Validator(schema)
    rejections = []
    for error in validator.iter_errors(document):
        rejections.append(_translate(error))
    return sorted(rejections, key=lambda rejection: rejection.path)


def _field_path(parts: Any) -> tuple[str, str]:
    # Returns the path for messages (with indexes) and the path for coverage (with []).
    display_path, generic = "", ""
    for part in parts:
        if isinstance(part, int):
            display_path += f"[{part}]"
            generic += "[]"
        else:
            display_path += f".{part}" if display_path else str(part)
            generic += f".{part}" if generic else str(part)
    return display_path, generic


def _translate(error: jsonschema.ValidationError) -> Rejection:
    display_path, generic = _field_path(error.absolute_path)
    keyword = str(error.validator)
    value = error.instance
    limit = error.validator_value
    if keyword == "required":
        missing = error.message.split("'")[1]
        child = f"{display_path}.{missing}" if display_path else missing
        return Rejection(f"{generic}.{missing}" if generic else missing, "required", f"{child}: Required value")
    if keyword == "pattern":
        message = f"{display_path} in body should match '{limit}'"
    elif keyword == "enum":
        supported = ", ".join(f'"{option}"' for option in limit)
        message = f'{display_path}: Unsupported value: "{value}": supported values: {supported}'
    elif keyword == "minimum":
        exclusive = error.schema.get("exclusiveMinimum") is True
        message = f"{display_path} in body should be greater than {'' if exclusive else 'or equal to '}{limit}"
    elif keyword == "maximum":
        exclusive = error.schema.get("exclusiveMaximum") is True
        message = f"{display_path} in body should be less than {'' if exclusive else 'or equal to '}{limit}"
    elif keyword == "minLength":
        message = f"{display_path} in body should be at least {limit} chars long"
    elif keyword == "maxLength":
        message = f"{display_path}: Too long: may not be more than {limit} bytes"
    elif keyword == "maxItems":
        message = f"{display_path}: Too many: {len(value)}: must have at most {limit} items"
    elif keyword == "type":
        message = f'{display_path}: Invalid value: "{type(value).__name__}": {display_path} in body must be of type {limit}'
    else:
        message = f"{display_path}: {error.message}"
    # Required errors name the missing child; the others name the node that failed.
    return Rejection(generic, keyword, message)


def cel_rejections(schema: Mapping[str, Any], value: Any, *, path: str) -> list[Rejection]:
    """Evaluate every ``x-kubernetes-validations`` rule on the values it applies to."""
    rejections = []
    for rule in schema.get("x-kubernetes-validations", []):
        if not evaluate_rule(rule["rule"], value):
            display_path = path or "<root>"
            rejections.append(
                Rejection(_generic(path), "x-kubernetes-validations", f'{display_path}: Invalid value: "object": {rule["message"]}')
            )
    for child_path, child_schema, child_value in _children(schema, value, path):
        rejections.extend(cel_rejections(child_schema, child_value, path=child_path))
    return rejections


def evaluate_rule(rule: str, value: Any) -> bool:
    """Evaluate one CEL rule with ``self`` bound to ``value``; an evaluation error counts as failed."""
    environment = celpy.Environment()
    program = environment.program(environment.compile(rule))
    try:
        result = program.evaluate({"self": celpy.json_to_cel(value)})
    except celpy.CELEvalError:
        return False
    if isinstance(result, celpy.CELEvalError):
        return False
    return bool(result)


def _children(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any], Any]]:
    if isinstance(value, Mapping):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield (f"{path}.{name}" if path else name), child, value[name]
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name, child_value in value.items():
                yield f"{path}.{name}", extra, child_value
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield f"{path}[{index}]", schema["items"], item


def _generic(path: str) -> str:
    generic = ""
    index = 0
    while index < len(path):
        if path[index] == "[":
            close = path.index("]", index)
            generic += "[]"
            index = close + 1
        else:
            generic += path[index]
            index += 1
    return generic


def constraints(schema: Mapping[str, Any], *, path: str) -> Iterator[tuple[str, str]]:
    """List every (path, keyword) constraint below ``schema``; required fields as their own path."""
    for keyword in ("pattern", "enum", "minimum", "maximum", "maxItems", "minLength", "maxLength"):
        if keyword in schema:
            yield path, keyword
    for name in schema.get("required", []):
        yield f"{path}.{name}", "required"
    for name, child in schema.get("properties", {}).items():
        yield from constraints(child, path=f"{path}.{name}")
    if "items" in schema:
        yield from constraints(schema["items"], path=f"{path}[]")
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from constraints(extra, path=f"{path}{{}}")


def cel_rules(schema: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """List every CEL rule in the schema."""
    yield from schema.get("x-kubernetes-validations", [])
    for child in schema.get("properties", {}).values():
        yield from cel_rules(child)
    if "items" in schema:
        yield from cel_rules(schema["items"])
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from cel_rules(extra)
