"""The generated CRDs: up to date in crds/, structural, described, and well-formed for kubectl.

Covers: crds/ matches `sluicegate crds` output; every property has a description for
`kubectl explain`; the schema is structural (no $ref, anyOf or untyped nodes); names,
short names, status subresource and printer columns; every CEL rule compiles in a real
CEL implementation; the `sluicegate crds` command writes one file per kind.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import pytest
import yaml

from sluicegate import cli
from sluicegate.api import _crds, _reference

import crd_validation

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
CRD_FOLDER = REPOSITORY / "crds"


def _nodes(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from _nodes(extra, f"{path}{{}}")


@pytest.mark.parametrize("filename", ["llmbudgets.sluicegate.io.yaml", "routepolicies.sluicegate.io.yaml"])
def test_committed_crd_matches_generator(filename: str) -> None:
    generated = _crds.dump_crd(_crds.custom_resource_definitions()[filename])
    committed = (CRD_FOLDER / filename).read_text(encoding="utf-8")
    assert committed == generated, f"crds/{filename} is stale: run `sluicegate crds` from the repository root (it also updates charts/sluicegate/crds) and commit the result"


def test_crd_folder_has_one_file_per_kind() -> None:
    assert sorted(path.name for path in CRD_FOLDER.glob("*.yaml")) == sorted(_crds.custom_resource_definitions())


@pytest.mark.parametrize("filename", sorted(_crds.custom_resource_definitions()))
def test_every_field_has_description(filename: str) -> None:
    schema = crd_validation.openapi_schema(_crds.custom_resource_definitions()[filename])
    undocumented = [
        path
        for path, node in _nodes(schema, "")
        if path.count(".") >= 1 and not path.endswith(("[]", "{}")) and path != ".metadata" and not node.get("description")
    ]
    assert undocumented == []


@pytest.mark.parametrize("filename", sorted(_crds.custom_resource_definitions()))
def test_schema_is_structural(filename: str) -> None:
    schema = crd_validation.openapi_schema(_crds.custom_resource_definitions()[filename])
    for path, node in _nodes(schema, ""):
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        assert "oneOf" not in node, path
        assert "type" in node, f"{path or '<root>'} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        assert node.get("additionalProperties") is not False, path


def test_tolerations_keep_unknown_fields() -> None:
    schema = crd_validation.openapi_schema(_crds.routepolicy_crd())
    toleration = schema["properties"]["spec"]["properties"]["local"]["properties"]["ollama"]["properties"]["tolerations"]["items"]
    assert toleration["x-kubernetes-preserve-unknown-fields"] is True
    assert toleration["type"] == "object"


def test_exclusive_minimum_uses_openapi_v3_0_form() -> None:
    schema = crd_validation.openapi_schema(_crds.routepolicy_crd())
    timeout = schema["properties"]["spec"]["properties"]["local"]["properties"]["timeoutSeconds"]
    assert timeout["minimum"] == 0
    assert timeout["exclusiveMinimum"] is True


def test_llmbudget_names_and_subresource() -> None:
    crd = _crds.llmbudget_crd()
    assert crd["metadata"]["name"] == "llmbudgets.sluicegate.io"
    assert crd["spec"]["names"]["plural"] == "llmbudgets"
    assert crd["spec"]["names"]["shortNames"] == ["llmb"]
    assert crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}


def test_routepolicy_names_and_subresource() -> None:
    crd = _crds.routepolicy_crd()
    assert crd["metadata"]["name"] == "routepolicies.sluicegate.io"
    assert crd["spec"]["names"]["plural"] == "routepolicies"
    assert crd["spec"]["names"]["shortNames"] == ["rp"]
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}


def test_llmbudget_columns_show_money_and_readiness() -> None:
    (version,) = _crds.llmbudget_crd()["spec"]["versions"]
    default_columns = [column["name"].upper() for column in version["additionalPrinterColumns"] if not column.get("priority")]
    assert default_columns == ["CEILING", "SPENT", "REMAINING", "PERIOD", "READY", "AGE"]


def test_printer_columns_point_at_schema_fields() -> None:
    for crd in _crds.custom_resource_definitions().values():
        schema = crd_validation.openapi_schema(crd)
        (version,) = crd["spec"]["versions"]
        for column in version["additionalPrinterColumns"]:
            path = column["jsonPath"].split("[")[0].strip(".").split(".")
            node: Mapping[str, Any] = schema
            for part in path:
                if part == "metadata":
                    break
                assert part in node.get("properties", {}), f"{column['name']}: {column['jsonPath']} is not in the schema"
                node = node["properties"][part]


def test_conditions_are_a_map_keyed_by_type() -> None:
    for crd in _crds.custom_resource_definitions().values():
        conditions = crd_validation.openapi_schema(crd)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


@pytest.mark.parametrize("filename", sorted(_crds.custom_resource_definitions()))
def test_cel_rules_compile(filename: str) -> None:
    rules = list(crd_validation.cel_rules(crd_validation.openapi_schema(_crds.custom_resource_definitions()[filename])))
    assert rules, "each CRD has at least one CEL rule"
    environment = celpy.Environment()
    for rule in rules:
        environment.compile(rule["rule"])
        assert rule["message"].strip()


def test_crds_command_writes_one_file_per_kind(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crds", "--output", str(tmp_path)]) == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["llmbudgets.sluicegate.io.yaml", "routepolicies.sluicegate.io.yaml"]
    document = yaml.safe_load((tmp_path / "llmbudgets.sluicegate.io.yaml").read_text())
    assert document["kind"] == "CustomResourceDefinition"
    assert str(tmp_path / "llmbudgets.sluicegate.io.yaml") in capsys.readouterr().out


def test_crds_command_reports_unwritable_folder(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["crds", "--output", str(blocker / "crds")]) == 1
    error = capsys.readouterr().err
    assert str(blocker / "crds") in error
    assert "--output" in error


def test_field_reference_is_current() -> None:
    committed = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "resources.md").read_text(encoding="utf-8")
    assert committed == _reference.field_reference(), (
        "docs/resources.md is stale: run `sluicegate crds --reference docs/resources.md` and commit the result"
    )
