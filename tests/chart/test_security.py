"""Secure defaults of every pod the chart renders, and the optional ServiceMonitor.

Covers:

- non-root numeric users and the RuntimeDefault seccomp profile;
- read-only root filesystems, no privilege escalation, all capabilities dropped;
- CPU and memory requests on every container;
- no API token where none is needed;
- the ServiceMonitor's target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chart_support import NAMESPACE, Release

EXTERNAL = {"postgresql": {"bundled": {"enabled": False}, "external": {"dsnSecretRef": {"name": "ledger-dsn", "key": "url"}}}}


def pod_specs(release: Release) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in release.objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


@pytest.fixture(params=["bundled", "external"])
def release(request: pytest.FixtureRequest, render: Callable[..., Release]) -> Release:
    return render({} if request.param == "bundled" else EXTERNAL)


def test_every_workload_checked(render: Callable[..., Release]) -> None:
    assert sorted(name for name, _ in pod_specs(render())) == ["sluicegate-operator", "sluicegate-postgresql"]
    assert sorted(name for name, _ in pod_specs(render(EXTERNAL))) == ["sluicegate-operator"]


def test_pods_run_as_non_root(release: Release) -> None:
    for name, spec in pod_specs(release):
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0, name
        assert context["runAsGroup"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name


def test_containers_locked_down(release: Release) -> None:
    for name, spec in pod_specs(release):
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context.get("privileged", False) is False, where


def test_containers_request_resources(release: Release) -> None:
    for name, spec in pod_specs(release):
        for container in spec.get("initContainers", []) + spec["containers"]:
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), f"{name}/{container['name']}"
            assert "memory" in container["resources"]["limits"], f"{name}/{container['name']}"


def test_postgresql_pod_gets_no_api_token(render: Callable[..., Release]) -> None:
    spec = render().get("StatefulSet", "sluicegate-postgresql")["spec"]["template"]["spec"]

    assert spec["automountServiceAccountToken"] is False


def test_operator_uid_matches_image_user(render: Callable[..., Release]) -> None:
    # The Dockerfile creates UID and GID 10001; test_dockerfile.py checks that side.
    context = render().get("Deployment", "sluicegate-operator")["spec"]["template"]["spec"]["securityContext"]

    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (10001, 10001, 10001)


def test_service_monitor_off_by_default(render: Callable[..., Release]) -> None:
    assert render().of_kind("ServiceMonitor") == []


def test_service_monitor_targets_gateway(render: Callable[..., Release]) -> None:
    release = render(
        {"monitoring": {"serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "5s", "labels": {"release": "prometheus"}}}}
    )
    monitor = release.get("ServiceMonitor", "sluicegate-gateway")
    [endpoint] = monitor["spec"]["endpoints"]

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "sluicegate", "app.kubernetes.io/component": "gateway"}
    }
    assert endpoint == {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
