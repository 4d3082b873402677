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
