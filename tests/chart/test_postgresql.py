"""Bundled versus external PostgreSQL, the ledger Secret and the NetworkPolicy.

Covers:

- the bundled StatefulSet with its volume claim, Services, probes and generated password;
- the ledger DSN built from that password;
- an upgrade keeps the password of the existing Secret. This is the `lookup` path,
  rendered against a minimal Kubernetes API served on 127.0.0.1;
- external PostgreSQL renders no database objects and points the operator and the
  gateway at the user's Secret;
- the NetworkPolicy admits only the gateway and operator pods.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import helm_python
import pytest
import yaml

from chart_support import NAMESPACE, RELEASE, Release, parse_manifests

EXTERNAL = {"postgresql": {"bundled": {"enabled": False}, "external": {"dsnSecretRef": {"name": "ledger-dsn", "key": "dsn"}}}}


def decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def parse_fleet(release: Release) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(release.get("ConfigMap", "sluicegate-fleet")["data"]["fleet.yaml"])
    return parsed


def test_bundled_postgresql_objects(render: Callable[..., Release]) -> None:
    release = render()
    statefulset = release.get("StatefulSet", "sluicegate-postgresql")
    claim = statefulset["spec"]["volumeClaimTemplates"][0]

    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["serviceName"] == "sluicegate-postgresql-hl"
    assert release.get("Service", "sluicegate-postgresql-hl")["spec"]["clusterIP"] == "None"
    assert release.get("Service", "sluicegate-postgresql")["spec"]["ports"][0]["port"] == 5432
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "storageClassName" not in claim["spec"], "an empty class would disable dynamic provisioning"


def test_bundled_postgresql_storage_class(render: Callable[..., Release]) -> None:
    release = render({"postgresql": {"bundled": {"persistence": {"size": "50Gi", "storageClassName": "fast-ssd"}}}})
    claim = release.get("StatefulSet", "sluicegate-postgresql")["spec"]["volumeClaimTemplates"][0]

    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_bundled_postgresql_container(render: Callable[..., Release]) -> None:
    statefulset = render().get("StatefulSet", "sluicegate-postgresql")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {entry["name"]: entry for entry in container["env"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}

    assert container["image"] == "docker.io/library/postgres:17.6-alpine"
    assert env["POSTGRES_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "sluicegate-postgresql", "key": "password"}}
    assert env["POSTGRES_USER"]["value"] == "sluicegate"
    assert env["POSTGRES_DB"]["value"] == "sluicegate"
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    assert mounts["/var/lib/postgresql/data"] == "data"
    assert {"/var/run/postgresql", "/tmp"} <= set(mounts)


def test_bundled_postgresql_probes(render: Callable[..., Release]) -> None:
    container = render().get("StatefulSet", "sluicegate-postgresql")["spec"]["template"]["spec"]["containers"][0]

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[0] == "pg_isready", probe
        assert "--username=sluicegate" in command
        assert "--dbname=sluicegate" in command
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "initdb on a slow disk needs time"


def test_generated_password_matches_dsn(render: Callable[..., Release]) -> None:
    release = render()
    password = decoded(release.get("Secret", "sluicegate-postgresql"), "password")
    dsn = urllib.parse.urlsplit(decoded(release.get("Secret", "sluicegate-ledger"), "url"))

    assert len(password) == 32
    assert password.isalnum()
    assert dsn.scheme == "postgresql"
    assert dsn.username == "sluicegate"
    assert dsn.password == password
    assert dsn.hostname == f"sluicegate-postgresql.{NAMESPACE}.svc"
    assert dsn.port == 5432
    assert dsn.path == "/sluicegate"


def test_password_secret_kept_on_uninstall(render: Callable[..., Release]) -> None:
    secret = render().get("Secret", "sluicegate-postgresql")

    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_fresh_installs_get_different_passwords(render: Callable[..., Release]) -> None:
    first = decoded(render().get("Secret", "sluicegate-postgresql"), "password")
    second = decoded(render().get("Secret", "sluicegate-postgresql"), "password")

    assert first != second


def test_password_stays_out_of_other_objects(render: Callable[..., Release]) -> None:
    release = render()
    password = decoded(release.get("Secret", "sluicegate-postgresql"), "password")

    for obj in release.objects:
        if obj["kind"] != "Secret":
            assert password not in json.dumps(obj), f"{obj['kind']}/{obj['metadata']['name']} contains the password"
    assert password not in release.notes


def test_external_postgresql_renders_no_database(render: Callable[..., Release]) -> None:
    release = render(EXTERNAL)

    assert release.of_kind("StatefulSet") == []
    assert release.of_kind("Secret") == []
    assert release.of_kind("NetworkPolicy") == []
    assert [obj for obj in release.of_kind("Service") if "postgresql" in obj["metadata"]["name"]] == []


def test_external_postgresql_secret_referenced(render: Callable[..., Release]) -> None:
    release = render(EXTERNAL)
    container = release.get("Deployment", "sluicegate-operator")["spec"]["template"]["spec"]["containers"][0]
    env = {entry["name"]: entry for entry in container["env"]}
    fleet = parse_fleet(release)

    assert env["SLUICEGATE_LEDGER_URL"]["valueFrom"] == {"secretKeyRef": {"name": "ledger-dsn", "key": "dsn"}}
    assert fleet["gateway"]["ledgerSecretRef"] == {"name": "ledger-dsn", "key": "dsn"}


def test_network_policy_admits_gateway_and_operator(render: Callable[..., Release]) -> None:
    release = render()
    policy = release.get("NetworkPolicy", "sluicegate-postgresql")
    postgresql_labels = release.get("StatefulSet", "sluicegate-postgresql")["spec"]["template"]["metadata"]["labels"]
    operator_labels = release.get("Deployment", "sluicegate-operator")["spec"]["template"]["metadata"]["labels"]
    [rule] = policy["spec"]["ingress"]
    selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]

    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= postgresql_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert all(set(peer) == {"podSelector"} for peer in rule["from"]), "no namespace or IP peers"
    assert {"app.kubernetes.io/name": "sluicegate", "app.kubernetes.io/component": "gateway"} in selectors
    assert any(selector.items() <= operator_labels.items() for selector in selectors)
    assert not any(selector.items() <= postgresql_labels.items() for selector in selectors)


def test_network_policy_off(render: Callable[..., Release]) -> None:
    release = render({"networkPolicy": {"enabled": False}})

    assert release.of_kind("NetworkPolicy") == []
    assert release.find("StatefulSet", "sluicegate-postgresql") is not None


class _KubernetesAPI(http.server.BaseHTTPRequestHandler):
    """The two endpoints that Helm's `lookup` of a Secret calls: discovery and GET."""

    secrets: dict[str, dict[str, Any]] = {}

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        prefix = f"/api/v1/namespaces/{NAMESPACE}/secrets/"
        if path == "/api/v1":
            resource = {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret", "verbs": ["get"]}
            self._reply(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [resource]})
        elif path.startswith(prefix) and path[len(prefix) :] in self.secrets:
            self._reply(200, self.secrets[path[len(prefix) :]])
        else:
            self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kubernetes_api() -> Iterator[tuple[helm_python.Config, dict[str, dict[str, Any]]]]:
    """A Helm config pointed at a minimal Kubernetes API on 127.0.0.1, and its Secrets."""
    secrets: dict[str, dict[str, Any]] = {}
    handler = type("Handler", (_KubernetesAPI,), {"secrets": secrets})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with helm_python.Config(
            kube_apiserver=f"http://127.0.0.1:{server.server_port}",
            kube_token="test-token",
            namespace=NAMESPACE,
        ) as config:
            yield config, secrets
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_upgrade_keeps_existing_password(
    chart: helm_python.Chart,
    kubernetes_api: tuple[helm_python.Config, dict[str, dict[str, Any]]],
) -> None:
    config, secrets = kubernetes_api
    secrets["sluicegate-postgresql"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sluicegate-postgresql", "namespace": NAMESPACE},
        "data": {"password": base64.b64encode(b"passwordFromFirstInstall").decode()},
    }

    release = parse_manifests(config.render(chart, {}, name=RELEASE, namespace=NAMESPACE, is_upgrade=True))

    assert decoded(release.get("Secret", "sluicegate-postgresql"), "password") == "passwordFromFirstInstall"
    dsn = urllib.parse.urlsplit(decoded(release.get("Secret", "sluicegate-ledger"), "url"))
    assert dsn.password == "passwordFromFirstInstall"


def test_install_without_secret_generates_password(
    chart: helm_python.Chart,
    kubernetes_api: tuple[helm_python.Config, dict[str, dict[str, Any]]],
) -> None:
    config, _ = kubernetes_api

    release = parse_manifests(config.render(chart, {}, name=RELEASE, namespace=NAMESPACE, is_install=True))

    password = decoded(release.get("Secret", "sluicegate-postgresql"), "password")
    assert len(password) == 32
