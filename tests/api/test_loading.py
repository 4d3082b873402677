"""The resource models and the YAML loader: every validation rule, with the message a user sees.

Each message names the file, the document, the field path and the bad value, and says
what to write instead. Covered: money strings, time zones, enums, thresholds, webhook
URLs, endpoints, provider rules, prices, patterns, numeric bounds, Ollama quantities and
durations, unknown fields, unknown kinds, missing namespaces, duplicate and conflicting
documents, unreadable files and folders, and the round trip through dump_documents.
"""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml

from sluicegate import api

BUDGET: dict[str, Any] = {
    "apiVersion": "sluicegate.io/v1alpha1", "kind": "LLMBudget", "metadata": {"name": "monthly", "namespace": "team-a"},
    "spec": {"ceilingUSD": "20.00", "period": "Monthly", "timeZone": "UTC", "onExceeded": "Downgrade",
             "alerts": {"thresholdsPercent": [50, 80, 100], "webhookURL": ""}},
}
POLICY: dict[str, Any] = {
    "apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy", "metadata": {"name": "default", "namespace": "team-a"},
    "spec": {
        "local": {"model": "llama3.2:3b", "endpoint": "http://127.0.0.1:11434/v1"},
        "cloud": {"provider": "openai", "model": "gpt-4.1", "apiKeySecretRef": {"name": "openai", "key": "api-key"},
                  "priceUSDPerMillionTokens": {"input": "2.00", "output": "8.00"}},
    },
}


def with_change(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``document`` with the dotted ``path`` set to ``value`` (or removed for ...)."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return changed


def load_error(tmp_path: pathlib.Path, *documents: dict[str, Any]) -> str:
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump_all(list(documents)))
    with pytest.raises(api.ConfigError) as caught:
        api.load_path(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("document", "path", "value", "fragments"),
    [
        (BUDGET, "spec.ceilingUSD", "1.1234567", ["spec.ceilingUSD", "at most 6 decimal places", "'1.1234567'"]),
        (BUDGET, "spec.ceilingUSD", "-5", ["spec.ceilingUSD", "non-negative decimal string", "'-5'"]),
        (BUDGET, "spec.ceilingUSD", "1e3", ["spec.ceilingUSD", "'1e3'"]),
        (BUDGET, "spec.ceilingUSD", 20, ["spec.ceilingUSD", "expected a quoted string, got 20", "\"20\""]),
        (BUDGET, "spec.ceilingUSD", ..., ["spec.ceilingUSD", "required field is missing"]),
        (BUDGET, "spec.period", "Hourly", ["spec.period", "'Hourly'"]),
        (BUDGET, "spec.timeZone", "Mars/Olympus", ["spec.timeZone", "unknown time zone", "IANA", "'Mars/Olympus'"]),
        (BUDGET, "spec.onExceeded", "Ignore", ["spec.onExceeded", "'Ignore'"]),
        (BUDGET, "spec.alerts.thresholdsPercent", [50, 50], ["thresholdsPercent", "duplicate", "[50, 50]"]),
        (BUDGET, "spec.alerts.thresholdsPercent", [0], ["thresholdsPercent.0", "greater than or equal to 1"]),
        (BUDGET, "spec.alerts.webhookURL", "ftp://x", ["webhookURL", "http:// or https://", "'ftp://x'"]),
        (BUDGET, "spec.celingUSD", "1", ["spec.celingUSD", "unknown field", "spelling"]),
        (POLICY, "spec.local.endpoint", "127.0.0.1:11434", ["spec.local.endpoint", "http:// or https://", "'127.0.0.1:11434'"]),
        (POLICY, "spec.local.timeoutSeconds", 0, ["spec.local.timeoutSeconds", "greater than 0"]),
        (POLICY, "spec.local.maxOutputTokens", 0, ["spec.local.maxOutputTokens", "greater than or equal to 1"]),
        (POLICY, "spec.local.model", "", ["spec.local.model", "at least 1 character"]),
        (POLICY, "spec.local.ollama", {"storage": "20 gigs"}, ["spec.local.ollama.storage", "Kubernetes quantity", "'20 gigs'"]),
        (POLICY, "spec.local.ollama", {"keepAlive": "1 day"}, ["spec.local.ollama.keepAlive", "Go duration", "'1 day'"]),
        (POLICY, "spec.local.ollama", {"replicas": 0}, ["spec.local.ollama.replicas", "greater than or equal to 1"]),
        (POLICY, "spec.cloud.priceUSDPerMillionTokens", {"input": "1"}, ["priceUSDPerMillionTokens.output", "required field is missing"]),
        (POLICY, "spec.cloud.priceUSDPerMillionTokens", {"input": "1", "output": "$8"}, ["priceUSDPerMillionTokens.output", "'$8'"]),
        (POLICY, "spec.cloud.provider", "azure", ["spec.cloud.provider", "'azure'"]),
        (POLICY, "spec.cloud.apiKeySecretRef", ..., ["apiKeySecretRef is required when provider is openai"]),
        (POLICY, "spec.cloud.model", "llama3.2:3b", ["local.model and cloud.model are both 'llama3.2:3b'"]),
        (POLICY, "spec.cloud.model", "auto", ["may not be named auto, local or cloud"]),
        (POLICY, "spec.classifier", {"extraComplexPatterns": ["(unclosed"]}, ["extraComplexPatterns.0", "invalid regular expression", "'(unclosed'"]),
        (POLICY, "spec.classifier", {"complexAtSignals": 0}, ["spec.classifier.complexAtSignals", "greater than or equal to 1"]),
        (POLICY, "spec.loopGuard", {"maxRepeats": -1}, ["spec.loopGuard.maxRepeats", "greater than or equal to 0"]),
        (POLICY, "spec.cache", {"response": {"ttlSeconds": 0}}, ["spec.cache.response.ttlSeconds", "greater than or equal to 1"]),
        (POLICY, "spec.defaultMaxTokens", 0, ["spec.defaultMaxTokens", "greater than or equal to 1"]),
        (POLICY, "spec.local", ..., ["spec.local", "required field is missing"]),
    ],
)
def test_invalid_field_is_named_with_value(tmp_path: pathlib.Path, document: dict[str, Any], path: str, value: Any,
                                           fragments: list[str]) -> None:
    message = load_error(tmp_path, with_change(document, path, value))
    assert str(tmp_path / "budgets.yaml") in message
    assert "document 1" in message
    assert f"({document['kind']} {document['metadata']['name']})" in message
    for fragment in fragments:
        assert fragment in message


def test_openai_compatible_needs_endpoint(tmp_path: pathlib.Path) -> None:
    cloud = {"provider": "openai-compatible", "model": "vllm-x", "priceUSDPerMillionTokens": {"input": "1", "output": "2"}}
    message = load_error(tmp_path, with_change(POLICY, "spec.cloud", cloud))
    assert "endpoint is required when provider is openai-compatible" in message


def test_document_without_namespace_is_rejected(tmp_path: pathlib.Path) -> None:
    message = load_error(tmp_path, with_change(BUDGET, "metadata.namespace", ...))
    assert "metadata.namespace is missing" in message
    assert "LLMBudget monthly" in message


def test_two_policies_for_one_namespace(tmp_path: pathlib.Path) -> None:
    second = with_change(POLICY, "metadata.name", "other")
    message = load_error(tmp_path, POLICY, second)
    assert "namespace 'team-a' has two RoutePolicies, 'default' and 'other'" in message


def test_duplicate_budget_name(tmp_path: pathlib.Path) -> None:
    message = load_error(tmp_path, BUDGET, BUDGET)
    assert "LLMBudget team-a/monthly is defined twice" in message


def test_unknown_kind_and_non_mapping(tmp_path: pathlib.Path) -> None:
    assert "unsupported kind 'Deployment'" in load_error(tmp_path, {"kind": "Deployment", "metadata": {"name": "x"}})
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(api.ConfigError, match="expected a mapping with apiVersion, kind, metadata and spec, got list"):
        api.load_path(path)


def test_invalid_yaml_names_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: LLMBudget\nspec: [unclosed\n")
    with pytest.raises(api.ConfigError, match="broken.yaml: invalid YAML"):
        api.load_path(path)


def test_missing_path_and_empty_folder(tmp_path: pathlib.Path) -> None:
    with pytest.raises(api.ConfigError, match="no such file or folder"):
        api.load_path(tmp_path / "nowhere.yaml")
    with pytest.raises(api.ConfigError, match="the folder has no .yaml, .yml or .json files"):
        api.load_path(tmp_path)


def test_folder_of_files_and_list_documents(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a-budget.yaml").write_text(yaml.safe_dump(BUDGET))
    (tmp_path / "b-policy.yml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [POLICY]}))
    (tmp_path / "notes.txt").write_text("not read")
    config = api.load_path(tmp_path)
    assert [budget.metadata.name for budget in config.budgets] == ["monthly"]
    assert config.policy_for("team-a") is not None
    assert config.namespaces == ("team-a",)


def test_defaults_and_money(tmp_path: pathlib.Path) -> None:
    minimal = {"apiVersion": "sluicegate.io/v1alpha1", "kind": "LLMBudget",
               "metadata": {"name": "b", "namespace": "team-a"}, "spec": {"ceilingUSD": "0.000001"}}
    budget = api.load_text(yaml.safe_dump(minimal)).budgets[0]
    assert budget.spec.ceiling_nano == 1000
    assert budget.spec.period is api.Period.MONTHLY
    assert budget.spec.on_exceeded is api.OnExceeded.DOWNGRADE
    assert budget.spec.alerts.thresholds_percent == [50, 80, 100]
    assert api.format_usd(8_603_760) == "0.00860376"
    assert api.format_usd(1_000_000_000) == "1"


def test_dump_round_trip(tmp_path: pathlib.Path) -> None:
    config = api.load_text(yaml.safe_dump_all([BUDGET, POLICY]))
    again = api.load_text(api.dump_documents([*config.budgets, *config.policies]))
    assert again.budgets == config.budgets
    assert again.policies == config.policies
