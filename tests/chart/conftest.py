"""Fixtures of the Helm chart tests: the chart loaded into the real Helm engine, and a
renderer that turns values into the Kubernetes objects of one release.

The Helm engine is the Go SDK behind the PyPI package helm-python-sdk, so no helm binary
and no cluster are needed. Offline rendering returns an empty result for every `lookup`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helm_python
import pytest

from chart_support import CHART_DIR, NAMESPACE, RELEASE, Release, parse_manifests


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    """The chart under charts/sluicegate, loaded once per test session."""
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture
def render(chart: helm_python.Chart) -> Callable[..., Release]:
    """Render the chart with the given values as release `sluicegate` in `sluicegate-system`."""

    def _render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> Release:
        rendered = chart.render(values or {}, name=RELEASE, namespace=namespace, is_install=True)
        return parse_manifests(rendered)

    return _render
