"""What the CRD schemas and CEL rules accept and reject, as a user would see it.

Covers: every example in examples/ passes the schema, the CEL rules and the operator's own
validation; every fixture in tests/crds/rejected/ is rejected with exactly the message its
`# expect-error:` line states, and by the operator's validation too (except CRD-only
bounds); every schema constraint and every CEL rule has a fixture that trips it.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from sluicegate import api
from sluicegate.api import _crds

import crd_validation

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPOSITORY / "examples").glob("*.yaml"))
REJECTED = sorted((pathlib.Path(__file__).parent / "rejected").glob("*.yaml"))
CRD_BY_KIND = {crd["spec"]["names"]["kind"]: crd for crd in _crds.custom_resource_definitions().values()}

# Bounds that exist only in the CRD, to keep CEL costs bounded; the models accept longer lists.
CRD_ONLY_KEYWORDS = {"maxItems", "maxLength"}


def _expected_error(path: pathlib.Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect-error: "):
            return line.removeprefix("# expect-error: ")
    raise AssertionError(f"{path.name} has no '# expect-error:' line")


def _load(path: pathlib.Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def test_examples_exist() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"minimal.yaml", "multi-budget-namespace.yaml", "anthropic-policy.yaml", "default-policy.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_passes_crd_validation(path: pathlib.Path) -> None:
    for document in _load(path):
        assert crd_validation.validate(CRD_BY_KIND[document["kind"]], document) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_passes_operator_validation(path: pathlib.Path) -> None:
    config = api.load_path(path)
    assert len(config.budgets) + len(config.policies) == len(_load(path))


@pytest.mark.parametrize("path", REJECTED, ids=lambda path: path.name)
def test_fixture_is_rejected_with_message(path: pathlib.Path) -> None:
    (document,) = _load(path)
    rejections = crd_validation.validate(CRD_BY_KIND[document["kind"]], document)
    assert [rejection.message for rejection in rejections] == [_expected_error(path)]


@pytest.mark.parametrize("path", REJECTED, ids=lambda path: path.name)
def test_fixture_is_rejected_by_operator_too(path: pathlib.Path) -> None:
    (document,) = _load(path)
    (rejection,) = crd_validation.validate(CRD_BY_KIND[document["kind"]], document)
    if rejection.keyword in CRD_ONLY_KEYWORDS:
        api.parse_document(document, label=path.name)
        return
    with pytest.raises(api.ConfigError):
        api.parse_document(document, label=path.name)


@pytest.mark.parametrize("kind", sorted(CRD_BY_KIND))
def test_every_schema_constraint_has_fixture(kind: str) -> None:
    schema = crd_validation.openapi_schema(CRD_BY_KIND[kind])
    required = {("spec", "required")} | set(crd_validation.constraints(schema["properties"]["spec"], path="spec"))
    tripped = set()
    for path in REJECTED:
        (document,) = _load(path)
        if document["kind"] == kind:
            tripped.update((rejection.path, rejection.keyword) for rejection in crd_validation.validate(CRD_BY_KIND[kind], document))
    assert sorted(required - tripped) == []


@pytest.mark.parametrize("kind", sorted(CRD_BY_KIND))
def test_every_cel_rule_has_fixture(kind: str) -> None:
    schema = crd_validation.openapi_schema(CRD_BY_KIND[kind])
    expected = {_expected_error(path) for path in REJECTED}
    for rule in crd_validation.cel_rules(schema):
        assert any(message.endswith(rule["message"]) for message in expected), f"no fixture trips: {rule['rule']}"


def test_cel_rule_error_counts_as_rejection() -> None:
    # A rule that cannot be evaluated (here: a missing field) rejects, as on the API server.
    assert crd_validation.evaluate_rule("self.missing == 1", {}) is False


def test_openai_compatible_route_needs_no_secret() -> None:
    policy = yaml.safe_load(
        """
        apiVersion: sluicegate.io/v1alpha1
        kind: RoutePolicy
        metadata: {name: vllm, namespace: team-c}
        spec:
          local: {model: llama3.2:3b}
          cloud:
            provider: openai-compatible
            model: qwen2.5-72b
            endpoint: http://vllm.inference.svc:8000/v1
            priceUSDPerMillionTokens: {input: "0.90", output: "0.90"}
        """
    )
    assert crd_validation.validate(CRD_BY_KIND["RoutePolicy"], policy) == []
    api.parse_document(policy, label="inline")
