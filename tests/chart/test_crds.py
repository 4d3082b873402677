"""The CRDs that the chart installs.

Covers:

- charts/sluicegate/crds/ contains byte-identical copies of what `sluicegate crds` writes to crds/;
- the Helm engine loads them as CRDs, which Helm installs first and never deletes;
- they are valid CustomResourceDefinitions for the supported Kubernetes versions.
"""

from __future__ import annotations

import helm_python
import kubernetes_validate
import pytest
import yaml

from chart_support import CHART_DIR, REPOSITORY

CRD_FILES = ["llmbudgets.sluicegate.io.yaml", "routepolicies.sluicegate.io.yaml"]
KUBERNETES_VERSIONS = ("1.28.0", "1.34.0")
COPY_HINT = "run `cp crds/*.yaml charts/sluicegate/crds/` after `sluicegate crds` changes them"


def test_generated_crds_present() -> None:
    assert sorted(path.name for path in (REPOSITORY / "crds").glob("*.yaml")) == CRD_FILES


def test_chart_crds_identical_to_generated() -> None:
    chart_files = sorted(path.name for path in (CHART_DIR / "crds").glob("*.yaml"))

    assert chart_files == CRD_FILES, COPY_HINT
    for name in CRD_FILES:
        generated = (REPOSITORY / "crds" / name).read_bytes()
        copy = (CHART_DIR / "crds" / name).read_bytes()
        assert copy == generated, f"charts/sluicegate/crds/{name} differs from crds/{name}: {COPY_HINT}"


def test_engine_loads_crds(chart: helm_python.Chart) -> None:
    loaded = {entry["filename"]: yaml.safe_load(entry["data"]) for entry in chart.crds}

    assert sorted(loaded) == [f"sluicegate/crds/{name}" for name in CRD_FILES]
    assert loaded["sluicegate/crds/llmbudgets.sluicegate.io.yaml"]["spec"]["names"]["kind"] == "LLMBudget"
    assert loaded["sluicegate/crds/routepolicies.sluicegate.io.yaml"]["spec"]["names"]["kind"] == "RoutePolicy"
    for crd in loaded.values():
        assert crd["spec"]["group"] == "sluicegate.io"
        assert [version["name"] for version in crd["spec"]["versions"]] == ["v1alpha1"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_crds_valid_for_kubernetes(chart: helm_python.Chart, version: str) -> None:
    crds = [yaml.safe_load(entry["data"]) for entry in chart.crds]

    assert len(crds) == len(CRD_FILES)
    for crd in crds:
        kubernetes_validate.validate(crd, version, strict=True)
