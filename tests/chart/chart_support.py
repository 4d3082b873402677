"""Shared pieces of the Helm chart tests: where the chart is, and the rendered release.

A module with a unique name, so tests can import it without clashing with conftest.py
modules elsewhere in the tree.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
CHART_DIR = REPOSITORY / "charts" / "sluicegate"
RELEASE = "sluicegate"
NAMESPACE = "sluicegate-system"

# One value set per documented option.
OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "external-postgresql": {
        "postgresql": {
            "bundled": {"enabled": False},
            "external": {"dsnSecretRef": {"name": "ledger-dsn", "key": "dsn"}},
        },
    },
    "service-monitor": {
        "monitoring": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prometheus"}}},
    },
    "network-policy-off": {"networkPolicy": {"enabled": False}},
    "custom-images": {
        "image": {
            "repository": "registry.example.internal:5000/platform/sluicegate",
            "digest": "sha256:" + "ab" * 32,
            "pullPolicy": "Always",
        },
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "ollama": {"image": {"repository": "registry.example.internal:5000/ollama/ollama", "tag": "0.12.6-rocm"}},
        "postgresql": {"bundled": {"image": {"repository": "registry.example.internal:5000/postgres", "tag": "17.6"}}},
    },
    "autoscaling-off": {"gateway": {"autoscaling": {"enabled": False}, "replicas": 3}},
    "pod-disruption-budget-off": {
        "gateway": {"autoscaling": {"enabled": False}, "replicas": 1, "podDisruptionBudget": {"enabled": False}},
    },
    "existing-service-accounts": {
        "operator": {"serviceAccount": {"create": False, "name": "platform-operator"}},
        "gateway": {"serviceAccount": {"create": False, "name": "platform-gateway"}},
    },
    "names-and-labels": {
        "fullnameOverride": "llm-gate",
        "commonLabels": {"team": "platform", "cost-center": "ml-42"},
    },
    "scheduling": {
        "operator": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                        ]
                    }
                }
            },
            "priorityClassName": "system-cluster-critical",
            "podAnnotations": {"example.com/owner": "platform"},
            "podLabels": {"team": "platform"},
        },
        "postgresql": {
            "bundled": {
                "persistence": {"size": "20Gi", "storageClassName": "fast-ssd"},
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            }
        },
    },
}


@dataclasses.dataclass(frozen=True)
class Release:
    """The rendered objects of one release, and its NOTES.txt."""

    objects: list[dict[str, Any]]
    notes: str

    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)} among {self.names()}"
        return matches[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        matches = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        return matches[0] if matches else None

    def names(self) -> list[str]:
        return sorted(f"{obj['kind']}/{obj['metadata']['name']}" for obj in self.objects)


def parse_manifests(rendered: dict[str, str]) -> Release:
    """Split the engine's output (template path to text) into objects and notes."""
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(document for document in yaml.safe_load_all(text) if document)
    return Release(objects=objects, notes=notes)
