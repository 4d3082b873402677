"""The config snapshot, resolved from raw resources without a cluster.

Covers: the snapshot reads back through the gateway's loader unchanged; one policy per
namespace (oldest wins, then name; the others Conflict); the default policy copied into
namespaces that have budgets but no policy; a missing provider Secret or key keeps a
policy out; invalid resources get a verdict naming field and value; local routes without
an endpoint get the Ollama Service URL; shared models resolve to the largest request and
the other policies say so; provider Secrets are mounted once per reading namespace.
"""

from __future__ import annotations

from sluicegate import api
from sluicegate.operator import _names, _snapshot, _status
from sluicegate.operator._settings import OperatorSettings

from operator_resources import OPENAI_CLOUD, budget, policy

SETTINGS = OperatorSettings(namespace="sluicegate-system", default_policy_namespace="sluicegate-system")
ALL_SECRETS_PRESENT = None


def _build(*documents: dict, secrets: _snapshot.SecretKeys | None = ALL_SECRETS_PRESENT) -> _snapshot.Snapshot:
    return _snapshot.build(_snapshot.Resources.from_documents(documents), settings=SETTINGS, secrets=secrets)


def _verdict(snapshot: _snapshot.Snapshot, kind: str, namespace: str, name: str) -> _snapshot.Verdict:
    return snapshot.verdicts[_snapshot.ObjectRef(kind, namespace, name)]


def _ready(verdict: _snapshot.Verdict) -> dict:
    condition = _status.find(verdict.conditions, _status.READY)
    assert condition is not None
    return dict(condition)


def test_snapshot_round_trips_through_loader() -> None:
    snapshot = _build(budget("team-a"), policy("team-a", cloud=OPENAI_CLOUD), budget("team-b", ceiling="5"))
    config = api.load_text(snapshot.config_text(), source="snapshot")
    assert [b.metadata.namespace for b in config.budgets] == ["team-a", "team-b"]
    assert [p.metadata.namespace for p in config.policies] == ["team-a"]
    assert config.budgets[0].spec.ceiling_usd == "20.00"


def test_snapshot_carries_only_name_and_namespace() -> None:
    raw = budget("team-a")
    raw["metadata"].update({"uid": "abc", "resourceVersion": "17", "generation": 3, "managedFields": [{"manager": "kubectl"}]})
    raw["status"] = {"spentUSD": "1.5", "somethingOld": True}
    text = _build(raw).config_text()
    assert "resourceVersion" not in text
    assert "managedFields" not in text
    assert "spentUSD" not in text
    assert "uid" not in text


def test_oldest_policy_wins_namespace() -> None:
    newer = policy("team-a", "newer", model="qwen2.5:7b", created="2025-02-01T00:00:00Z")
    older = policy("team-a", "older", created="2025-01-01T00:00:00Z")
    snapshot = _build(newer, older)
    assert [p.metadata.name for p in snapshot.policies] == ["older"]
    conflict = _ready(_verdict(snapshot, "RoutePolicy", "team-a", "newer"))
    assert conflict["status"] == "False"
    assert conflict["reason"] == "Conflict"
    assert "'older'" in conflict["message"]
    assert _ready(_verdict(snapshot, "RoutePolicy", "team-a", "older"))["status"] == "True"


def test_same_age_conflict_goes_by_name() -> None:
    same = "2025-01-01T00:00:00Z"
    snapshot = _build(policy("team-a", "zeta", created=same), policy("team-a", "alpha", created=same))
    assert [p.metadata.name for p in snapshot.policies] == ["alpha"]
    assert _ready(_verdict(snapshot, "RoutePolicy", "team-a", "zeta"))["reason"] == "Conflict"


def test_default_policy_copied_into_namespace() -> None:
    default = policy("sluicegate-system", "default", cloud=OPENAI_CLOUD)
    snapshot = _build(default, budget("team-a"), budget("team-b"), policy("team-c"), budget("team-c"))
    by_namespace = {p.metadata.namespace: p for p in snapshot.policies}
    assert sorted(by_namespace) == ["sluicegate-system", "team-a", "team-b", "team-c"]
    assert by_namespace["team-a"].metadata.name == "default"
    assert by_namespace["team-a"].spec.cloud == by_namespace["sluicegate-system"].spec.cloud
    message = _ready(_verdict(snapshot, "RoutePolicy", "sluicegate-system", "default"))["message"]
    assert "team-a, team-b" in message
    assert "team-c" not in message
    api.load_text(snapshot.config_text())


def test_default_policy_needs_its_name() -> None:
    snapshot = _build(policy("sluicegate-system", "shared"), budget("team-a"))
    assert [p.metadata.namespace for p in snapshot.policies] == ["sluicegate-system"]
    assert "no published RoutePolicy" in _ready(_verdict(snapshot, "LLMBudget", "team-a", "monthly"))["message"]


def test_invalid_own_policy_blocks_default() -> None:
    broken = policy("team-a", "mine")
    broken["spec"]["local"]["timeoutSeconds"] = -1
    snapshot = _build(policy("sluicegate-system"), broken, budget("team-a"))
    assert [p.metadata.namespace for p in snapshot.policies] == ["sluicegate-system"]


def test_missing_secret_keeps_policy_out() -> None:
    snapshot = _build(policy("team-a", cloud=OPENAI_CLOUD), budget("team-a"), secrets={("team-a", "openai-credentials"): None})
    assert snapshot.policies == ()
    ready = _ready(_verdict(snapshot, "RoutePolicy", "team-a", "default"))
    assert ready["reason"] == "SecretNotFound"
    assert "team-a/openai-credentials" in ready["message"]
    assert "does not exist" in ready["message"]


def test_secret_without_key_keeps_policy_out() -> None:
    secrets = {("team-a", "openai-credentials"): frozenset({"token"})}
    snapshot = _build(policy("team-a", cloud=OPENAI_CLOUD), secrets=secrets)
    ready = _ready(_verdict(snapshot, "RoutePolicy", "team-a", "default"))
    assert ready["reason"] == "SecretNotFound"
    assert "has no key 'api-key'" in ready["message"]


def test_invalid_budget_verdict_names_field() -> None:
    snapshot = _build(budget("team-a", ceiling="1.0000001"), budget("team-a", "daily", period="Daily"))
    verdict = _verdict(snapshot, "LLMBudget", "team-a", "monthly")
    assert verdict.error is not None
    assert "spec.ceilingUSD" in verdict.error
    assert "'1.0000001'" in verdict.error
    assert _ready(verdict)["reason"] == "Invalid"
    assert [b.metadata.name for b in snapshot.budgets] == ["daily"]


def test_invalid_time_zone_verdict() -> None:
    verdict = _verdict(_build(budget("team-a", timeZone="Mars/Olympus")), "LLMBudget", "team-a", "monthly")
    assert verdict.error is not None
    assert "Mars/Olympus" in verdict.error


def test_local_route_gets_ollama_endpoint() -> None:
    snapshot = _build(policy("team-a"), policy("team-b", endpoint="http://127.0.0.1:8081/v1"))
    endpoints = {p.metadata.namespace: p.spec.local.endpoint for p in snapshot.policies}
    assert endpoints["team-a"] == f"http://{_names.ollama_name('llama3.2:3b')}.sluicegate-system.svc:11434/v1"
    assert endpoints["team-b"] == "http://127.0.0.1:8081/v1"
    assert [model.model for model in snapshot.ollama_models] == ["llama3.2:3b"]
    assert _verdict(snapshot, "RoutePolicy", "team-a", "default").local_endpoint == endpoints["team-a"]


def test_largest_ollama_request_wins() -> None:
    small = policy("team-a", ollama={"gpus": 1, "replicas": 1}, created="2025-01-01T00:00:00Z")
    large = policy("team-b", ollama={"gpus": 2, "replicas": 1, "storage": "40Gi"}, created="2025-01-02T00:00:00Z")
    same_as_large = policy("team-c", ollama={"gpus": 2, "replicas": 1, "storage": "40Gi"}, created="2025-01-03T00:00:00Z")
    snapshot = _build(small, large, same_as_large)
    (model,) = snapshot.ollama_models
    assert model.settings.gpus == 2
    assert model.settings.storage == "40Gi"
    assert model.chosen_from == "team-b/default"
    assert model.overridden == ("team-a/default",)

    overridden = _status.find(_verdict(snapshot, "RoutePolicy", "team-a", "default").conditions, _status.OLLAMA_SETTINGS)
    assert overridden is not None
    assert overridden["status"] == "False"
    assert overridden["reason"] == "Overridden"
    assert "team-b/default" in overridden["message"]
    applied = _status.find(_verdict(snapshot, "RoutePolicy", "team-c", "default").conditions, _status.OLLAMA_SETTINGS)
    assert applied is not None
    assert applied["reason"] == "Applied"


def test_keep_alive_forever_is_largest() -> None:
    hours = policy("team-a", ollama={"keepAlive": "48h"}, created="2025-01-01T00:00:00Z")
    forever = policy("team-b", ollama={"keepAlive": "-1"}, created="2025-01-02T00:00:00Z")
    (model,) = _build(hours, forever).ollama_models
    assert model.settings.keep_alive == "-1"


def test_distinct_models_get_own_deployments() -> None:
    snapshot = _build(policy("team-a", model="llama3.2:3b"), policy("team-b", model="llama3-2:3b"))
    names = [model.name for model in snapshot.ollama_models]
    assert len(set(names)) == 2


def test_default_secret_mounted_per_namespace() -> None:
    snapshot = _build(policy("sluicegate-system", cloud=OPENAI_CLOUD), budget("team-a"), budget("team-b"))
    (provider_secret,) = snapshot.provider_secrets
    assert (provider_secret.source_namespace, provider_secret.source_name) == ("sluicegate-system", "openai-credentials")
    assert provider_secret.keys == ("api-key",)
    assert provider_secret.mounts == (("sluicegate-system", "api-key"), ("team-a", "api-key"), ("team-b", "api-key"))


def test_namespaces_include_invalid_resources() -> None:
    snapshot = _build(budget("team-a"), budget("team-b", ceiling="-1"), policy("team-c"))
    assert snapshot.namespaces == ("team-a", "team-b", "team-c")


def test_referenced_secrets_lists_valid_policies() -> None:
    other_cloud = {**OPENAI_CLOUD, "apiKeySecretRef": {"name": "other", "key": "k"}}
    invalid = policy("team-c", cloud={**OPENAI_CLOUD, "provider": "nope"})
    resources = _snapshot.Resources.from_documents([policy("team-a", cloud=OPENAI_CLOUD), policy("team-b", cloud=other_cloud), invalid])
    assert _snapshot.referenced_secrets(resources, settings=SETTINGS) == [("team-a", "openai-credentials"), ("team-b", "other")]
