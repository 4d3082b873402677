"""`sluicegate operator render | rbac | run` and the operator's settings.

Covers: render prints every object for a folder of resources and exits 1, naming field
and value, when one is invalid; render reports conflicts without failing; rbac output
equals deploy/rbac.yaml and lists only the verbs the operator uses; rbac_rules() has the
shape the Helm chart compares; settings come from flags before the environment; the fleet
config file accepts exactly the documented shape and rejects unknown keys with the file
and field named; run refuses to start without a ledger URL.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from sluicegate import cli
from sluicegate.operator import _rbac, rbac_rules
from sluicegate.operator._settings import SettingsError, build_settings, load_fleet_config

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]

FLEET_YAML = """
gateway:
  image: ghcr.io/sluicegate/sluicegate:0.1.0
  imagePullPolicy: IfNotPresent
  replicas: 2
  autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70}
  podDisruptionBudget: {enabled: true, minAvailable: 1}
  resources: {requests: {cpu: 250m, memory: 256Mi}, limits: {memory: 512Mi}}
  port: 8080
  ledgerSecretRef: {name: sluicegate-ledger, key: url}
  serviceAccountName: sluicegate-gateway
ollama:
  image: ollama/ollama:0.12.6
"""


def test_render_prints_objects_for_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["operator", "render", "--config", str(REPOSITORY / "examples")]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    assert ("ConfigMap", "sluicegate-config") in names
    assert ("Deployment", "sluicegate-gateway") in names


def test_render_fails_on_invalid_resource(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: sluicegate.io/v1alpha1\nkind: LLMBudget\nmetadata: {name: b, namespace: team-a}\nspec: {ceilingUSD: '1,5'}\n"
    )
    assert cli.main(["operator", "render", "--config", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "LLMBudget team-a/b: Invalid" in error
    assert "'1,5'" in error


def test_render_reports_conflict_without_failing(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    documents = [
        {"apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy", "metadata": {"name": name, "namespace": "team-a"},
         "spec": {"local": {"model": "llama3.2:3b"}}}
        for name in ("alpha", "beta")
    ]
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump_all(documents))
    assert cli.main(["operator", "render", "--config", str(tmp_path / "policies.yaml")]) == 0
    assert "RoutePolicy team-a/beta: Conflict" in capsys.readouterr().err


def test_render_reports_missing_path(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["operator", "render", "--config", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_render_can_include_rbac(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["operator", "render", "--config", str(REPOSITORY / "examples" / "minimal.yaml"), "--include-rbac"]) == 0
    kinds = [obj["kind"] for obj in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds.count("ClusterRole") == 1
    assert kinds.count("Role") == 1


def test_rbac_file_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["operator", "rbac"]) == 0
    committed = (REPOSITORY / "deploy" / "rbac.yaml").read_text(encoding="utf-8")
    assert capsys.readouterr().out == committed, "deploy/rbac.yaml is stale: run `sluicegate operator rbac > deploy/rbac.yaml`"


def test_rbac_grants_no_wildcards_or_workloads_clusterwide() -> None:
    for rule in _rbac.cluster_role_rules() + _rbac.namespace_role_rules():
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
    cluster_groups = {group for rule in _rbac.cluster_role_rules() for group in rule["apiGroups"]}
    assert not cluster_groups & {"apps", "autoscaling", "policy"}


def test_cluster_secret_delete_limited_to_api_key() -> None:
    deletes = [rule for rule in _rbac.cluster_role_rules() if "secrets" in rule["resources"] and "delete" in rule["verbs"]]
    (rule,) = deletes
    assert rule["resourceNames"] == ["sluicegate-api-key"]


def test_every_rule_has_reason() -> None:
    for rule in (*_rbac.CLUSTER_RULES, *_rbac.NAMESPACE_RULES):
        assert len(rule.reason) > 20


def test_rbac_rules_shape_for_chart() -> None:
    rules = rbac_rules()
    assert sorted(rules) == ["cluster", "namespace"]
    assert rules["cluster"] == _rbac.cluster_role_rules()


def test_settings_flags_win_over_environment() -> None:
    environ = {"SLUICEGATE_OPERATOR_NAMESPACE": "from-env", "SLUICEGATE_DEFAULT_POLICY_NAMESPACE": "defaults-env",
               "SLUICEGATE_LEDGER_URL": "postgresql://env@127.0.0.1/db"}
    settings = build_settings(namespace="from-flag", environ=environ)
    assert settings.namespace == "from-flag"
    assert settings.default_policy_namespace == "defaults-env"
    assert settings.ledger_url == "postgresql://env@127.0.0.1/db"


def test_settings_defaults() -> None:
    settings = build_settings(environ={})
    assert settings.namespace == "sluicegate-system"
    assert settings.default_policy_namespace == "sluicegate-system"
    assert settings.ledger_url is None
    assert settings.fleet.gateway.image == "ghcr.io/sluicegate/sluicegate:0.1.0"
    assert settings.fleet.ollama.image == "ollama/ollama:0.12.6"


def test_settings_reject_bad_namespace() -> None:
    with pytest.raises(SettingsError, match="'Team_A'"):
        build_settings(namespace="Team_A", environ={})


def test_settings_reject_bad_interval() -> None:
    with pytest.raises(SettingsError, match="'soon'"):
        build_settings(environ={"SLUICEGATE_RESYNC_SECONDS": "soon"})


def test_fleet_config_reads_documented_shape(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET_YAML)
    fleet = build_settings(environ={"SLUICEGATE_FLEET_CONFIG": str(path)}).fleet
    assert fleet.gateway.autoscaling.max_replicas == 10
    assert fleet.gateway.ledger_secret_ref.key == "url"
    assert fleet.gateway.resources.limits == {"memory": "512Mi"}
    assert fleet.gateway.service_account_name == "sluicegate-gateway"


def test_fleet_config_rejects_unknown_key(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("gateway:\n  replica: 3\n")
    with pytest.raises(SettingsError) as raised:
        load_fleet_config(path)
    assert str(path) in str(raised.value)
    assert "gateway.replica" in str(raised.value)


def test_fleet_config_rejects_inverted_autoscaling(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("gateway:\n  autoscaling: {minReplicas: 5, maxReplicas: 2}\n")
    with pytest.raises(SettingsError, match="maxReplicas 2 is below minReplicas 5"):
        load_fleet_config(path)


def test_empty_fleet_config_means_defaults(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("")
    assert load_fleet_config(path).gateway.port == 8080


def test_run_requires_ledger(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICEGATE_LEDGER_URL", raising=False)
    assert cli.main(["operator", "run"]) == 2
    assert "SLUICEGATE_LEDGER_URL" in capsys.readouterr().err


def test_operations_doc_lists_settings_and_rules() -> None:
    text = (REPOSITORY / "docs" / "operations.md").read_text(encoding="utf-8")
    for variable in ("SLUICEGATE_OPERATOR_NAMESPACE", "SLUICEGATE_DEFAULT_POLICY_NAMESPACE", "SLUICEGATE_LEDGER_URL",
                     "SLUICEGATE_FLEET_CONFIG", "SLUICEGATE_RESYNC_SECONDS", "SLUICEGATE_STATUS_INTERVAL_SECONDS",
                     "SLUICEGATE_OPERATOR_LIVENESS"):
        assert f"`{variable}`" in text, variable
    for rule in (*_rbac.CLUSTER_RULES, *_rbac.NAMESPACE_RULES):
        for resource in rule.resources:
            assert f"`{resource}`" in text, resource
    for field in ("imagePullPolicy", "targetCPUUtilizationPercentage", "podDisruptionBudget", "ledgerSecretRef", "serviceAccountName"):
        assert field in text, field


def test_package_all_lists_public_names() -> None:
    import sluicegate.operator as package

    public = {name for name, value in vars(package).items() if not name.startswith("_") and type(value).__name__ != "module"}
    assert set(package.__all__) == public
    assert list(package.__all__) == sorted(package.__all__)


def test_render_path_does_not_import_kopf() -> None:
    import subprocess
    import sys

    code = "import sys, sluicegate.operator.commands; sys.exit(1 if 'kopf' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0
