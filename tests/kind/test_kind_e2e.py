"""End to end on a real cluster: kind, the generated CRDs, and the operator running in a thread.

Covers: the API server accepts the CRDs and rejects a RoutePolicy that breaks a CEL rule
with our message; the operator publishes the snapshot ConfigMap, the gateway fleet, an
Ollama Deployment and the namespace's API-key Secret, and marks resources Ready; deleting
the policy removes its Ollama Deployment. The gateway and Ollama pods are not waited for
(their images are large and Ollama wants GPUs); the objects are what the operator owns.

Skipped unless `kind` is on PATH and `docker info` succeeds. `scripts/kind-e2e.sh` runs it.
Set SLUICEGATE_KIND_CLUSTER to reuse an existing kind cluster instead of creating one.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import yaml

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "sluicegate-system"
TENANT = "team-e2e"
WAIT_SECONDS = 180
_T = TypeVar("_T")


def _docker_and_kind() -> bool:
    if shutil.which("kind") is None or shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(
    not _docker_and_kind(),
    reason="needs Docker and kind: install kind (https://kind.sigs.k8s.io), start the Docker daemon, "
    "then run scripts/kind-e2e.sh",
)


def _wait_for(what: str, probe: Callable[[], _T | None], *, timeout: float = WAIT_SECONDS) -> _T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    path = tmp_path_factory.mktemp("kind") / "kubeconfig"
    existing = os.environ.get("SLUICEGATE_KIND_CLUSTER")
    name = existing or f"sluicegate-e2e-{uuid.uuid4().hex[:6]}"
    if existing:
        subprocess.run(["kind", "export", "kubeconfig", "--name", name, "--kubeconfig", str(path)], check=True, timeout=60)
    else:
        subprocess.run(
            ["kind", "create", "cluster", "--name", name, "--kubeconfig", str(path), "--wait", "120s"], check=True, timeout=600
        )
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        if not existing:
            subprocess.run(["kind", "delete", "cluster", "--name", name], check=False, timeout=300)


@pytest.fixture(scope="module")
def clients(kubeconfig: pathlib.Path) -> dict[str, Any]:
    import kubernetes

    api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    return {
        "core": kubernetes.client.CoreV1Api(api_client),
        "apps": kubernetes.client.AppsV1Api(api_client),
        "extensions": kubernetes.client.ApiextensionsV1Api(api_client),
        "custom": kubernetes.client.CustomObjectsApi(api_client),
    }


@pytest.fixture(scope="module")
def crds(clients: dict[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    for path in sorted((REPOSITORY / "crds").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        try:
            clients["extensions"].create_custom_resource_definition(body)
        except ApiException as error:
            if error.status != 409:
                raise

    def established() -> bool:
        for path in sorted((REPOSITORY / "crds").glob("*.yaml")):
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            crd = clients["extensions"].read_custom_resource_definition(name)
            conditions = {condition.type: condition.status for condition in (crd.status.conditions or [])}
            if conditions.get("Established") != "True":
                return False
        return True

    _wait_for("the CRDs to be established", established)
    for namespace in (OPERATOR_NAMESPACE, TENANT):
        try:
            clients["core"].create_namespace({"metadata": {"name": namespace}})
        except ApiException as error:
            if error.status != 409:
                raise


@pytest.fixture(scope="module")
def operator(crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from sluicegate.operator import build_settings, commands

    ledger_path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    settings = build_settings(
        namespace=OPERATOR_NAMESPACE, ledger_url=f"sqlite:///{ledger_path}", status_interval_seconds=5, environ={}
    )
    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(commands.run(settings, stop_flag=stop, ready_flag=ready)), name="operator", daemon=True
    )
    thread.start()
    assert ready.wait(120), "the operator did not become ready within 120s"
    yield
    stop.set()
    thread.join(60)
    assert not thread.is_alive(), "the operator did not stop within 60s"


def _custom(clients: dict[str, Any], plural: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        result: dict[str, Any] = clients["custom"].get_namespaced_custom_object("sluicegate.io", "v1alpha1", TENANT, plural, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return result


def _ready(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(condition["type"] == "Ready" and condition["status"] == "True" for condition in conditions)


def test_api_server_rejects_cel_violation(clients: dict[str, Any], crds: None) -> None:
    from kubernetes.client.exceptions import ApiException

    body = {
        "apiVersion": "sluicegate.io/v1alpha1",
        "kind": "RoutePolicy",
        "metadata": {"name": "same-models", "namespace": TENANT},
        "spec": {
            "local": {"model": "llama3.2:3b"},
            "cloud": {"provider": "openai-compatible", "model": "llama3.2:3b", "endpoint": "http://vllm:8000/v1",
                      "priceUSDPerMillionTokens": {"input": "1", "output": "1"}},
        },
    }
    with pytest.raises(ApiException) as raised:
        clients["custom"].create_namespaced_custom_object("sluicegate.io", "v1alpha1", TENANT, "routepolicies", body)
    assert raised.value.status == 422
    assert "local.model and cloud.model must differ" in str(raised.value.body)


def test_operator_publishes_and_cleans_up(clients: dict[str, Any], operator: None) -> None:
    from kubernetes.client.exceptions import ApiException

    from sluicegate import api
    from sluicegate.operator import _names

    budget = {
        "apiVersion": "sluicegate.io/v1alpha1",
        "kind": "LLMBudget",
        "metadata": {"name": "monthly", "namespace": TENANT},
        "spec": {"ceilingUSD": "5.00"},
    }
    policy = {
        "apiVersion": "sluicegate.io/v1alpha1",
        "kind": "RoutePolicy",
        "metadata": {"name": "local", "namespace": TENANT},
        "spec": {"local": {"model": "e2e-model:1b", "ollama": {"gpus": 0, "storage": "1Gi"}}},
    }
    clients["custom"].create_namespaced_custom_object("sluicegate.io", "v1alpha1", TENANT, "llmbudgets", budget)
    clients["custom"].create_namespaced_custom_object("sluicegate.io", "v1alpha1", TENANT, "routepolicies", policy)

    def config_text() -> str | None:
        try:
            config_map = clients["core"].read_namespaced_config_map("sluicegate-config", OPERATOR_NAMESPACE)
        except ApiException:
            return None
        text = (config_map.data or {}).get("config.yaml", "")
        return text if "e2e-model:1b" in text and "monthly" in text else None

    config = api.load_text(_wait_for("the snapshot ConfigMap", config_text))
    (published,) = config.policies
    assert published.spec.local.endpoint == _names.ollama_endpoint("e2e-model:1b", namespace=OPERATOR_NAMESPACE)

    _wait_for("the LLMBudget to be Ready", lambda: _ready(_custom(clients, "llmbudgets", "monthly")))
    _wait_for("the RoutePolicy to be Ready", lambda: _ready(_custom(clients, "routepolicies", "local")))
    _wait_for("the budget's spend in status", lambda: ((_custom(clients, "llmbudgets", "monthly") or {}).get("status") or {}).get("spentUSD"))
    assert clients["apps"].read_namespaced_deployment("sluicegate-gateway", OPERATOR_NAMESPACE) is not None
    assert clients["core"].read_namespaced_service("sluicegate-gateway", OPERATOR_NAMESPACE) is not None
    ollama = _names.ollama_name("e2e-model:1b")
    assert clients["apps"].read_namespaced_deployment(ollama, OPERATOR_NAMESPACE) is not None
    api_key = clients["core"].read_namespaced_secret(_names.API_KEY_SECRET_NAME, TENANT)
    assert "api-key" in api_key.data

    clients["custom"].delete_namespaced_custom_object("sluicegate.io", "v1alpha1", TENANT, "routepolicies", "local")

    def ollama_gone() -> bool:
        try:
            clients["apps"].read_namespaced_deployment(ollama, OPERATOR_NAMESPACE)
        except ApiException as error:
            return error.status == 404
        return False

    _wait_for("the Ollama Deployment to be removed", ollama_gone)
