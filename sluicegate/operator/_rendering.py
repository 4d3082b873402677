"""Desired Kubernetes objects of the gateway fleet, rendered from a snapshot; no I/O.

Everything lives in the operator's namespace: the gateway Deployment, its Service,
HorizontalPodAutoscaler, PodDisruptionBudget and ServiceAccount, the snapshot ConfigMap,
the mirrored provider Secrets and the Ollama objects of each local model.

The snapshot is mounted as a ConfigMap volume, never hashed into the pod template: the
gateway reloads the file when the kubelet swaps it, so a budget or policy change restarts
no pod. The template changes only with the fleet settings or with the set of mounted
provider Secrets, because each key needs a path ``<namespace>/<secret>/<key>``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sluicegate.operator import _names, _ollama
from sluicegate.operator._settings import OperatorSettings
from sluicegate.operator._snapshot import ProviderSecret, SecretKey, Snapshot

RawObject = dict[str, Any]
# Base64 values of each provider Secret's keys, as the API returns them in ``data``.
SecretData = Mapping[SecretKey, Mapping[str, str]]

# Owner-read, group-read: the gateway runs as a non-root user in this group (fsGroup).
_SECRET_FILE_MODE = 0o440
_GATEWAY_USER = 10001


def render_all(snapshot: Snapshot, *, settings: OperatorSettings, secret_data: SecretData | None) -> list[RawObject]:
    """Return every object the operator keeps in its namespace, in the order to apply them.

    Secrets and Ollama first, so the pods that mount or call them find them; the snapshot
    last, so the gateway never reads a config that names a key its pod cannot see yet.
    ``secret_data`` None renders the mirrored Secrets without their data (``operator render``).
    """
    objects: list[RawObject] = []
    for provider_secret in snapshot.provider_secrets:
        data = None if secret_data is None else secret_data.get((provider_secret.source_namespace, provider_secret.source_name), {})
        objects.append(mirror_secret(provider_secret, namespace=settings.namespace, data=data))
    for model in snapshot.ollama_models:
        objects.extend(_ollama.render(model, namespace=settings.namespace, image=settings.fleet.ollama.image))
    objects.extend(gateway_objects(snapshot, settings=settings))
    objects.append(config_map(snapshot, namespace=settings.namespace))
    return objects


def mirror_secret(provider_secret: ProviderSecret, *, namespace: str, data: Mapping[str, str] | None) -> RawObject:
    """Return the copy of a provider Secret, holding only the keys that policies reference."""
    secret: RawObject = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": provider_secret.name,
            "namespace": namespace,
            "labels": _names.labels(_names.COMPONENT_PROVIDER_SECRET),
            "annotations": {
                _names.SOURCE_ANNOTATION: f"{provider_secret.source_namespace}/{provider_secret.source_name}",
            },
        },
        "type": "Opaque",
    }
    if data is not None:
        secret["data"] = {key: data[key] for key in provider_secret.keys if key in data}
    return secret


def config_map(snapshot: Snapshot, *, namespace: str) -> RawObject:
    """Return the snapshot ConfigMap that every gateway pod mounts."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": _names.CONFIG_MAP_NAME,
            "namespace": namespace,
            "labels": _names.labels(_names.COMPONENT_CONFIG),
        },
        "data": {_names.CONFIG_KEY: snapshot.config_text()},
    }


def gateway_objects(snapshot: Snapshot, *, settings: OperatorSettings) -> list[RawObject]:
    """Return the ServiceAccount, Deployment, Service, and the HPA and PDB when enabled."""
    gateway = settings.fleet.gateway
    objects = [
        _service_account(settings),
        _deployment(snapshot, settings=settings),
        _service(settings),
    ]
    if gateway.autoscaling.enabled:
        objects.append(_autoscaler(settings))
    if gateway.pod_disruption_budget.enabled:
        objects.append(_disruption_budget(settings))
    return objects


def _metadata(name: str, settings: OperatorSettings) -> RawObject:
    return {"name": name, "namespace": settings.namespace, "labels": _names.labels(_names.COMPONENT_GATEWAY)}


def _service_account(settings: OperatorSettings) -> RawObject:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(settings.fleet.gateway.service_account_name, settings),
        # The gateway never calls the Kubernetes API.
        "automountServiceAccountToken": False,
    }


def _secret_volume(snapshot: Snapshot) -> RawObject:
    if not snapshot.provider_secrets:
        return {"name": "provider-secrets", "emptyDir": {}}
    sources = []
    for provider_secret in snapshot.provider_secrets:
        items = [
            {"key": key, "path": f"{namespace}/{provider_secret.source_name}/{key}"}
            for namespace, key in provider_secret.mounts
        ]
        # optional: a mirror that is pruned or not yet written must not keep pods from starting.
        sources.append({"secret": {"name": provider_secret.name, "items": items, "optional": True}})
    return {"name": "provider-secrets", "projected": {"sources": sources, "defaultMode": _SECRET_FILE_MODE}}


def _container(settings: OperatorSettings) -> RawObject:
    gateway = settings.fleet.gateway
    resources: RawObject = {}
    if gateway.resources.requests:
        resources["requests"] = dict(gateway.resources.requests)
    if gateway.resources.limits:
        resources["limits"] = dict(gateway.resources.limits)
    return {
        "name": "gateway",
        "image": gateway.image,
        "imagePullPolicy": gateway.image_pull_policy,
        "command": [
            "sluicegate", "gateway",
            "--config", f"{_names.CONFIG_MOUNT_PATH}/{_names.CONFIG_KEY}",
            "--secrets-dir", _names.SECRETS_MOUNT_PATH,
            "--host", "0.0.0.0",
            "--port", str(gateway.port),
        ],
        "env": [
            {
                "name": "SLUICEGATE_LEDGER_URL",
                "valueFrom": {"secretKeyRef": {"name": gateway.ledger_secret_ref.name, "key": gateway.ledger_secret_ref.key}},
            }
        ],
        "ports": [{"name": "http", "containerPort": gateway.port, "protocol": "TCP"}],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": _names.CONFIG_MOUNT_PATH, "readOnly": True},
            {"name": "provider-secrets", "mountPath": _names.SECRETS_MOUNT_PATH, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _deployment(snapshot: Snapshot, *, settings: OperatorSettings) -> RawObject:
    gateway = settings.fleet.gateway
    spec: RawObject = {
        "selector": {"matchLabels": _names.gateway_selector()},
        # A new pod must be ready before an old one goes, so no request finds no gateway.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": _names.labels(_names.COMPONENT_GATEWAY)},
            "spec": {
                "serviceAccountName": gateway.service_account_name,
                "automountServiceAccountToken": False,
                # Long enough for most streams to finish after SIGTERM.
                "terminationGracePeriodSeconds": 60,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": _GATEWAY_USER,
                    "runAsGroup": _GATEWAY_USER,
                    "fsGroup": _GATEWAY_USER,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [_container(settings)],
                "volumes": [
                    {"name": "config", "configMap": {"name": _names.CONFIG_MAP_NAME}},
                    _secret_volume(snapshot),
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
    }
    # With autoscaling on, the HPA owns the replica count; applying one would fight it.
    if not gateway.autoscaling.enabled:
        spec["replicas"] = gateway.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(_names.GATEWAY_NAME, settings), "spec": spec}


def _service(settings: OperatorSettings) -> RawObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(_names.GATEWAY_NAME, settings),
        "spec": {
            "type": "ClusterIP",
            "selector": _names.gateway_selector(),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _autoscaler(settings: OperatorSettings) -> RawObject:
    autoscaling = settings.fleet.gateway.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(_names.GATEWAY_NAME, settings),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": _names.GATEWAY_NAME},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": autoscaling.target_cpu_utilization_percentage},
                    },
                }
            ],
        },
    }


def _disruption_budget(settings: OperatorSettings) -> RawObject:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(_names.GATEWAY_NAME, settings),
        "spec": {
            "minAvailable": settings.fleet.gateway.pod_disruption_budget.min_available,
            "selector": {"matchLabels": _names.gateway_selector()},
        },
    }


def api_key_secret(*, namespace: str, key_id: str, key: str) -> RawObject:
    """Return the Secret that hands a namespace's API key to its workloads."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": _names.API_KEY_SECRET_NAME,
            "namespace": namespace,
            "labels": _names.labels(_names.COMPONENT_API_KEY),
            # The key id lets the operator revoke this key when the namespace stops using sluicegate.
            "annotations": {_names.API_KEY_ID_ANNOTATION: key_id},
        },
        "type": "Opaque",
        "data": {_names.API_KEY_SECRET_KEY: base64.b64encode(key.encode("utf-8")).decode("ascii")},
    }
