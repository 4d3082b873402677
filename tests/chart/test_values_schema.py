"""values.schema.json and the chart's cross-value checks reject bad values clearly.

Covers:

- the schema is a valid draft-07 schema, and the chart's own defaults pass it;
- the Helm engine rejects each bad value with a message naming its path and the constraint;
- checks that compare two values fail the render with a message naming both;
- docs/install.md documents every value of values.yaml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from chart_support import CHART_DIR, NAMESPACE, RELEASE, REPOSITORY

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

# (values, fragments the message must contain)
BAD_VALUES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("misspelled-top-level", {"gatway": {"replicas": 3}}, ["'gatway' not allowed"]),
    ("misspelled-nested", {"gateway": {"autoscaling": {"maxReplica": 4}}}, ["/gateway/autoscaling", "'maxReplica' not allowed"]),
    ("replicas-string", {"gateway": {"replicas": "two"}}, ["/gateway/replicas", "got string, want integer"]),
    ("replicas-zero", {"gateway": {"replicas": 0}}, ["/gateway/replicas", "minimum: got 0, want 1"]),
    ("cpu-target-above-100", {"gateway": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}, ["/gateway/autoscaling/targetCPUUtilizationPercentage", "maximum"]),
    ("privileged-port", {"gateway": {"port": 80}}, ["/gateway/port", "minimum: got 80"]),
    ("port-too-high", {"gateway": {"port": 70000}}, ["/gateway/port", "maximum"]),
    ("pull-policy", {"image": {"pullPolicy": "Sometimes"}}, ["/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"]),
    ("image-repository-empty", {"image": {"repository": ""}}, ["/image/repository"]),
    ("image-digest", {"image": {"digest": "latest"}}, ["/image/digest", "does not match pattern"]),
    ("ollama-tag-empty", {"ollama": {"image": {"tag": ""}}}, ["/ollama/image/tag", "minLength"]),
    ("ollama-tag-missing", {"ollama": {"image": {"tag": None}}}, ["/ollama/image", "missing property 'tag'"]),
    ("postgresql-tag-missing", {"postgresql": {"bundled": {"image": {"tag": None}}}}, ["/postgresql/bundled/image", "missing property 'tag'"]),
    ("memory-request-missing", {"gateway": {"resources": {"requests": {"memory": None}}}}, ["/gateway/resources/requests", "missing property 'memory'"]),
    ("cpu-request-missing", {"operator": {"resources": {"requests": {"cpu": None}}}}, ["/operator/resources/requests", "missing property 'cpu'"]),
    ("cpu-request-garbage", {"gateway": {"resources": {"requests": {"cpu": "lots"}}}}, ["/gateway/resources/requests/cpu", "'lots' does not match pattern"]),
    ("storage-size-garbage", {"postgresql": {"bundled": {"persistence": {"size": "big"}}}}, ["/postgresql/bundled/persistence/size", "'big'"]),
    ("database-name", {"postgresql": {"bundled": {"database": "my-db"}}}, ["/postgresql/bundled/database", "'my-db' does not match pattern"]),
    ("external-without-secret", {"postgresql": {"bundled": {"enabled": False}}}, ["/postgresql/external/dsnSecretRef/name", "minLength: got 0, want 1"]),
    ("secret-key-empty", {"postgresql": {"external": {"dsnSecretRef": {"key": ""}}}}, ["/postgresql/external/dsnSecretRef/key"]),
    ("default-policy-namespace", {"operator": {"defaultPolicyNamespace": "Sluicegate_System"}}, ["/operator/defaultPolicyNamespace", "'Sluicegate_System'"]),
    ("seccomp-type", {"operator": {"podSecurityContext": {"seccompProfile": {"type": "Default"}}}}, ["/operator/podSecurityContext/seccompProfile/type", "'RuntimeDefault'"]),
    ("security-context-typo", {"operator": {"securityContext": {"readOnlyRootFileSystem": True}}}, ["/operator/securityContext", "'readOnlyRootFileSystem' not allowed"]),
    ("run-as-user-negative", {"operator": {"podSecurityContext": {"runAsUser": -1}}}, ["/operator/podSecurityContext/runAsUser", "minimum"]),
    ("scrape-interval", {"monitoring": {"serviceMonitor": {"interval": "30 seconds"}}}, ["/monitoring/serviceMonitor/interval", "'30 seconds'"]),
    ("network-policy-flag", {"networkPolicy": {"enabled": "yes"}}, ["/networkPolicy/enabled", "got string, want boolean"]),
    ("pull-secrets-shape", {"imagePullSecrets": ["registry-credentials"]}, ["/imagePullSecrets/0", "got string, want object"]),
    ("fullname-override", {"fullnameOverride": "Sluice Gate"}, ["/fullnameOverride"]),
]

# Checks that compare two values live in templates/_validate.tpl.
BAD_COMBINATIONS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "bundled-and-external",
        {"postgresql": {"external": {"dsnSecretRef": {"name": "ledger-dsn"}}}},
        ['postgresql.external.dsnSecretRef.name is "ledger-dsn"', "postgresql.bundled.enabled=false"],
    ),
    (
        "min-above-max-replicas",
        {"gateway": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}},
        ["gateway.autoscaling.minReplicas (5)", "gateway.autoscaling.maxReplicas (3)"],
    ),
    (
        "budget-blocks-drains",
        {"gateway": {"autoscaling": {"enabled": False}, "replicas": 1}},
        ["gateway.podDisruptionBudget.minAvailable (1)", "fewest gateway replicas (1)", "podDisruptionBudget.enabled=false"],
    ),
    (
        "existing-service-account-unnamed",
        {"operator": {"serviceAccount": {"create": False}}},
        ["operator.serviceAccount.name is required"],
    ),
]


def test_schema_is_valid_draft_7() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert SCHEMA["additionalProperties"] is False


def test_defaults_pass_schema(chart: helm_python.Chart) -> None:
    chart.validate_schema(DEFAULTS)
    jsonschema.Draft7Validator(SCHEMA).validate(DEFAULTS)


@pytest.mark.parametrize(("values", "fragments"), [case[1:] for case in BAD_VALUES], ids=[case[0] for case in BAD_VALUES])
def test_schema_rejects_bad_value(chart: helm_python.Chart, values: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(("values", "fragments"), [case[1:] for case in BAD_COMBINATIONS], ids=[case[0] for case in BAD_COMBINATIONS])
def test_render_rejects_bad_combination(chart: helm_python.Chart, values: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(helm_python.HelmRenderError) as caught:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_good_overrides_pass(chart: helm_python.Chart) -> None:
    chart.validate_schema(
        {
            "image": {"repository": "registry.example.internal:5000/team/sluicegate", "tag": "0.1.0", "digest": "sha256:" + "a" * 64},
            "gateway": {"port": 8443, "resources": {"requests": {"cpu": "1.5", "memory": "1Gi"}, "limits": {"cpu": 2, "memory": "2e9"}}},
            "postgresql": {"bundled": {"enabled": False}, "external": {"dsnSecretRef": {"name": "ledger-dsn", "key": "DSN_URL"}}},
            "monitoring": {"serviceMonitor": {"enabled": True, "interval": "1m30s"}},
            "global": {"imageRegistry": "ignored"},
        }
    )


def value_paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Yield the dotted path of every documented value: leaves and empty maps or lists."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and not _is_kubernetes_object(path):
            yield from value_paths(value, f"{path}.")
        else:
            yield path


def _is_kubernetes_object(path: str) -> bool:
    # Resources and security contexts are documented as one value each.
    return path.endswith((".resources", "SecurityContext", ".securityContext"))


def test_every_value_documented() -> None:
    install = (REPOSITORY / "docs" / "install.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", install, flags=re.MULTILINE))

    paths = list(value_paths(DEFAULTS))
    assert len(paths) > 40
    missing = [path for path in paths if path not in documented]
    assert missing == [], "add these values to the table in docs/install.md"
    unknown = sorted(documented - set(paths))
    assert unknown == [], "the table in docs/install.md names values that values.yaml lacks"
