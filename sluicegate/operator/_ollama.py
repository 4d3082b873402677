"""Local models on Ollama: which settings win for a shared model, and the objects that run it.

One Deployment, Service and PersistentVolumeClaim serve each distinct model across all
policies, in the operator's namespace. When policies ask different ``ollama`` settings for
one model, the largest request wins, compared by GPUs, then replicas, then storage, then
keep-alive; a tie goes to the policy listed first (the caller lists the oldest first).

The pod pulls the model in an init container that runs its own ``ollama serve`` on the
models volume, so the serving container starts with the model on disk, and its readiness
probe (``ollama show MODEL``) passes only once the server answers and has the model. Both
use only the ``ollama`` binary of the official image. ``OLLAMA_KEEP_ALIVE`` keeps a loaded
model in memory between requests.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sluicegate import api
from sluicegate.operator import _names

RawObject = dict[str, Any]

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_QUANTITY_FACTORS = {
    None: 1,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
_DURATION_PART = re.compile(r"([0-9]+)(ns|us|ms|s|m|h)")
_DURATION_SECONDS = {"ns": decimal.Decimal("1e-9"), "us": decimal.Decimal("1e-6"), "ms": decimal.Decimal("0.001"),
                     "s": decimal.Decimal(1), "m": decimal.Decimal(60), "h": decimal.Decimal(3600)}
_FOREVER = decimal.Decimal("Infinity")

# Waits for the private `ollama serve` of the init container (at most 60 s), pulls the model
# unless the volume has it already (so a restart needs no registry), then stops the server.
# The model name comes from the environment, so no user text is ever parsed by the shell.
PULL_SCRIPT = """\
set -eu
ollama serve &
server=$!
attempt=0
until ollama list >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "ollama serve did not answer within 60 seconds" >&2
    exit 1
  fi
  sleep 1
done
if ollama show "$SLUICEGATE_MODEL" >/dev/null 2>&1; then
  echo "model $SLUICEGATE_MODEL is already on the volume"
else
  ollama pull "$SLUICEGATE_MODEL"
fi
kill "$server"
wait "$server" || true
"""


@dataclasses.dataclass(frozen=True)
class OllamaRequest:
    """One policy's request to run a model: ``policy`` is ``namespace/name``."""

    model: str
    policy: str
    settings: api.Ollama


@dataclasses.dataclass(frozen=True)
class OllamaModel:
    """A model the operator runs, the settings it runs with and the policies that use it."""

    model: str
    settings: api.Ollama
    chosen_from: str  # the policy whose settings won
    requested_by: tuple[str, ...]
    overridden: tuple[str, ...]  # policies that asked for other settings

    @property
    def name(self) -> str:
        """The name of the Deployment, Service and volume claim."""
        return _names.ollama_name(self.model)


def storage_bytes(quantity: str) -> decimal.Decimal:
    """Parse a Kubernetes quantity such as ``20Gi`` into bytes."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"invalid storage size {quantity!r}: write a Kubernetes quantity such as \"20Gi\"")
    return decimal.Decimal(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]


def keep_alive_seconds(duration: str) -> decimal.Decimal:
    """Parse a Go duration such as ``1h30m`` into seconds; ``-1`` (forever) is infinite."""
    if duration == "-1":
        return _FOREVER
    if duration == "0":
        return decimal.Decimal(0)
    return sum(
        (decimal.Decimal(number) * _DURATION_SECONDS[unit] for number, unit in _DURATION_PART.findall(duration)),
        decimal.Decimal(0),
    )


def _size(settings: api.Ollama) -> tuple[int, int, decimal.Decimal, decimal.Decimal]:
    return (settings.gpus, settings.replicas, storage_bytes(settings.storage), keep_alive_seconds(settings.keep_alive))


def resolve(requests: Sequence[OllamaRequest]) -> tuple[OllamaModel, ...]:
    """Group requests by model and pick each model's settings: the largest request wins.

    ``requests`` must be ordered oldest policy first; that order breaks ties.
    """
    by_model: dict[str, list[OllamaRequest]] = {}
    for request in requests:
        by_model.setdefault(request.model, []).append(request)

    models = []
    for model in sorted(by_model):
        group = by_model[model]
        winner = group[0]
        for candidate in group[1:]:
            if _size(candidate.settings) > _size(winner.settings):
                winner = candidate
        overridden = tuple(request.policy for request in group if request.settings != winner.settings)
        models.append(
            OllamaModel(
                model=model,
                settings=winner.settings,
                chosen_from=winner.policy,
                requested_by=tuple(request.policy for request in group),
                overridden=overridden,
            )
        )
    return tuple(models)


def describe(settings: api.Ollama) -> str:
    """Summarise settings for a condition message."""
    return (
        f"gpus {settings.gpus}, replicas {settings.replicas}, storage {settings.storage}, "
        f"keepAlive {settings.keep_alive}"
    )


def render(model: OllamaModel, *, namespace: str, image: str) -> list[RawObject]:
    """Return the PersistentVolumeClaim, Deployment and Service that run ``model``."""
    return [
        _volume_claim(model, namespace=namespace),
        _deployment(model, namespace=namespace, image=image),
        _service(model, namespace=namespace),
    ]


def _metadata(model: OllamaModel, *, namespace: str) -> RawObject:
    return {
        "name": model.name,
        "namespace": namespace,
        "labels": _names.labels(_names.COMPONENT_OLLAMA, **{_names.OLLAMA_INSTANCE_LABEL: model.name}),
        "annotations": {_names.MODEL_ANNOTATION: model.model},
    }


def _volume_claim(model: OllamaModel, *, namespace: str) -> RawObject:
    # NOTE: several replicas share the claim, so they need a ReadWriteMany storage class;
    # with one replica, ReadWriteOnce works on every cluster.
    access_mode = "ReadWriteOnce" if model.settings.replicas == 1 else "ReadWriteMany"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(model, namespace=namespace),
        "spec": {
            "accessModes": [access_mode],
            "resources": {"requests": {"storage": model.settings.storage}},
        },
    }


def _container_environment(model: OllamaModel) -> list[RawObject]:
    return [
        {"name": "OLLAMA_HOST", "value": f"0.0.0.0:{_names.OLLAMA_PORT}"},
        {"name": "OLLAMA_KEEP_ALIVE", "value": model.settings.keep_alive},
        {"name": "SLUICEGATE_MODEL", "value": model.model},
    ]


def _deployment(model: OllamaModel, *, namespace: str, image: str) -> RawObject:
    settings = model.settings
    selector = {_names.COMPONENT: _names.COMPONENT_OLLAMA, _names.OLLAMA_INSTANCE_LABEL: model.name}
    volume_mount = {"name": "models", "mountPath": "/root/.ollama"}
    no_escalation = {"allowPrivilegeEscalation": False}
    resources: RawObject = {}
    if settings.gpus:
        resources = {"limits": {"nvidia.com/gpu": str(settings.gpus)}}

    server: RawObject = {
        "name": "ollama",
        "image": image,
        "args": ["serve"],
        "env": _container_environment(model),
        "ports": [{"name": "http", "containerPort": _names.OLLAMA_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": ["ollama", "show", model.model]},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
        },
        "resources": resources,
        "securityContext": no_escalation,
        "volumeMounts": [volume_mount],
    }
    pull: RawObject = {
        "name": "pull-model",
        "image": image,
        "command": ["/bin/sh", "-c", PULL_SCRIPT],
        "env": [{"name": "OLLAMA_HOST", "value": f"127.0.0.1:{_names.OLLAMA_PORT}"},
                {"name": "SLUICEGATE_MODEL", "value": model.model}],
        "securityContext": no_escalation,
        "volumeMounts": [volume_mount],
    }
    pod_spec: RawObject = {
        "initContainers": [pull],
        "containers": [server],
        "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": model.name}}],
    }
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = [dict(toleration) for toleration in settings.tolerations]

    # Recreate, because a ReadWriteOnce claim cannot be mounted by the old and new pod at once.
    strategy = {"type": "Recreate"} if settings.replicas == 1 else {"type": "RollingUpdate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(model, namespace=namespace),
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": selector},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {**_names.labels(_names.COMPONENT_OLLAMA), **selector}},
                "spec": pod_spec,
            },
        },
    }


def _service(model: OllamaModel, *, namespace: str) -> RawObject:
    selector = {_names.COMPONENT: _names.COMPONENT_OLLAMA, _names.OLLAMA_INSTANCE_LABEL: model.name}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(model, namespace=namespace),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": _names.OLLAMA_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def models_by_policy(models: Sequence[OllamaModel]) -> Mapping[str, OllamaModel]:
    """Index models by every policy that requested them."""
    index: dict[str, OllamaModel] = {}
    for model in models:
        for policy in model.requested_by:
            index[policy] = model
    return index
