"""An in-memory Kubernetes API at the operator's boundary (``KubernetesApi``) that records writes.

It keeps objects by (apiVersion, kind, namespace, name), assigns uid, resourceVersion,
generation and creationTimestamp like an API server, fills in a few server-side defaults
(so idempotency checks see extra live fields, as on a real cluster), and implements
server-side apply for a single field manager: the applied object replaces the previous
applied fields, while metadata the server owns and the status are kept. Status patches
follow JSON merge patch (RFC 7386). ``fail`` injects an error into the next call of a verb.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from collections.abc import Mapping
from typing import Any

from sluicegate.operator import _kubernetes

RawObject = dict[str, Any]
Key = tuple[str, str, str, str]


@dataclasses.dataclass(frozen=True)
class Write:
    """One recorded write: the verb and the object's key."""

    verb: str
    key: Key


def key_of(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata", {})
    return (str(obj["apiVersion"]), str(obj["kind"]), str(metadata.get("namespace") or ""), str(metadata["name"]))


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7386)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _add_defaults(obj: RawObject) -> None:
    # A few of the defaults a real API server adds, enough to make live objects differ from desired ones.
    kind = obj["kind"]
    spec = obj.get("spec")
    if kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        pod = spec["template"]["spec"]
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("restartPolicy", "Always")
        for container in pod.get("containers", []):
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("imagePullPolicy", "IfNotPresent")
    if kind == "Service" and isinstance(spec, dict):
        spec.setdefault("clusterIP", "10.96.0.42")
        spec.setdefault("sessionAffinity", "None")


def _matches(labels: Mapping[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for requirement in re.split(r",(?![^()]*\))", selector):
        requirement = requirement.strip()
        set_match = re.fullmatch(r"(\S+)\s+in\s+\((.*)\)", requirement)
        if set_match:
            values = {value.strip() for value in set_match.group(2).split(",")}
            if labels.get(set_match.group(1)) not in values:
                return False
            continue
        name, _, value = requirement.partition("=")
        if labels.get(name) != value:
            return False
    return True


class FakeKubernetes:
    """``KubernetesApi`` kept in memory; ``writes`` lists every write in order."""

    def __init__(self) -> None:
        self.objects: dict[Key, RawObject] = {}
        self.writes: list[Write] = []
        self.reads: list[str] = []  # "get Kind" or "list Kind", in call order
        self._versions = itertools.count(1)
        self._failures: dict[str, Exception] = {}

    def fail(self, verb: str, error: Exception) -> None:
        """Make the next call of ``verb`` (get, list, apply, create, delete, patch_status) raise ``error``."""
        self._failures[verb] = error

    def _check(self, verb: str) -> None:
        error = self._failures.pop(verb, None)
        if error is not None:
            raise error

    def _stamp(self, obj: RawObject, previous: RawObject | None) -> RawObject:
        metadata = obj.setdefault("metadata", {})
        version = next(self._versions)
        metadata["resourceVersion"] = str(version)
        if previous is None:
            metadata.setdefault("uid", f"uid-{version}")
            metadata.setdefault("creationTimestamp", f"2025-01-01T00:00:{version % 60:02d}Z")
            metadata.setdefault("generation", 1)
        else:
            old = previous["metadata"]
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "finalizers"):
                if field in old:
                    metadata[field] = old[field]
            changed = obj.get("spec") != previous.get("spec")
            metadata["generation"] = int(old.get("generation", 1)) + (1 if changed else 0)
        return obj

    def seed(self, obj: Mapping[str, Any]) -> RawObject:
        """Store ``obj`` as if a user had created it; return the stored copy."""
        stored = self._stamp(copy.deepcopy(dict(obj)), None)
        self.objects[key_of(stored)] = stored
        return copy.deepcopy(stored)

    def update_spec(self, key: Key, spec: Mapping[str, Any]) -> RawObject:
        """Replace an object's spec as ``kubectl apply`` would; return the stored copy."""
        previous = self.objects[key]
        updated = copy.deepcopy(previous)
        updated["spec"] = copy.deepcopy(dict(spec))
        self.objects[key] = self._stamp(updated, previous)
        return copy.deepcopy(self.objects[key])

    def remove(self, key: Key) -> None:
        """Drop an object as if it were deleted by someone else."""
        del self.objects[key]

    def find(self, kind: str, name: str, namespace: str = "") -> RawObject | None:
        for (_, stored_kind, stored_namespace, stored_name), obj in self.objects.items():
            if (stored_kind, stored_namespace, stored_name) == (kind, namespace, name):
                return obj
        return None

    def of_kind(self, kind: str) -> list[RawObject]:
        return [obj for key, obj in sorted(self.objects.items()) if key[1] == kind]

    def writes_of(self, verb: str) -> list[Key]:
        return [write.key for write in self.writes if write.verb == verb]

    async def get(self, *, api_version: str, kind: str, namespace: str | None, name: str) -> RawObject | None:
        self._check("get")
        self.reads.append(f"get {kind}")
        stored = self.objects.get((api_version, kind, namespace or "", name))
        return copy.deepcopy(stored) if stored is not None else None

    async def list(
        self, *, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[RawObject]:
        self._check("list")
        self.reads.append(f"list {kind}")
        result = []
        for (stored_version, stored_kind, stored_namespace, _), obj in sorted(self.objects.items()):
            if (stored_version, stored_kind) != (api_version, kind):
                continue
            if namespace is not None and stored_namespace != namespace:
                continue
            if _matches(obj.get("metadata", {}).get("labels") or {}, label_selector):
                result.append(copy.deepcopy(obj))
        return result

    async def apply(self, obj: RawObject, *, field_manager: str) -> RawObject:
        self._check("apply")
        assert field_manager == "sluicegate", f"unexpected field manager {field_manager!r}"
        key = key_of(obj)
        previous = self.objects.get(key)
        applied = copy.deepcopy(obj)
        if previous is not None and "status" in previous:
            applied["status"] = copy.deepcopy(previous["status"])
        _add_defaults(applied)
        self.objects[key] = self._stamp(applied, previous)
        self.writes.append(Write("apply", key))
        return copy.deepcopy(self.objects[key])

    async def create(self, obj: RawObject) -> RawObject:
        self._check("create")
        created = copy.deepcopy(obj)
        metadata = created["metadata"]
        if "name" not in metadata:
            metadata["name"] = f"{metadata.get('generateName', 'object-')}{len(self.objects) + 1:05d}"
        key = key_of(created)
        if key in self.objects:
            raise _kubernetes.Conflict(f"{key[1]} {key[2]}/{key[3]} already exists")
        _add_defaults(created)
        self.objects[key] = self._stamp(created, None)
        self.writes.append(Write("create", key))
        return copy.deepcopy(self.objects[key])

    async def delete(self, *, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        self._check("delete")
        key = (api_version, kind, namespace or "", name)
        if key not in self.objects:
            return False
        del self.objects[key]
        self.writes.append(Write("delete", key))
        return True

    async def patch_status(
        self, *, api_version: str, kind: str, namespace: str, name: str, status: RawObject
    ) -> RawObject:
        self._check("patch_status")
        key = (api_version, kind, namespace, name)
        if key not in self.objects:
            raise _kubernetes.NotFound(f"{kind} {namespace}/{name} not found")
        stored = self.objects[key]
        stored["status"] = merge_patch(stored.get("status") or {}, status)
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        self.writes.append(Write("patch_status", key))
        return copy.deepcopy(stored)
