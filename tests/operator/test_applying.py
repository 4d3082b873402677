"""The apply layer: idempotent server-side apply and pruning, against the recording fake API.

Covers: applying the same desired object twice writes once, though the server adds
defaults; a changed or removed desired field is written; an out-of-band edit of an owned
field or a deleted object is repaired; pruning deletes only unlisted managed objects in
the operator's namespace; an object another manager (Helm) created is left alone;
`contains` compares maps as subsets and lists item by item.
"""

from __future__ import annotations

import copy

from sluicegate.operator import _applying, _names, _rendering, _snapshot
from sluicegate.operator._settings import OperatorSettings

from fake_kubernetes import FakeKubernetes, key_of
from operator_resources import policy

SETTINGS = OperatorSettings()


def _fleet_objects(*documents: dict) -> list[dict]:
    snapshot = _snapshot.build(_snapshot.Resources.from_documents(documents), settings=SETTINGS, secrets=None)
    return _rendering.render_all(snapshot, settings=SETTINGS, secret_data={})


def _gateway(objects: list[dict]) -> dict:
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "sluicegate-gateway"]
    return deployment


async def test_same_object_twice_writes_once() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    deployment = _gateway(_fleet_objects())

    assert await applier.apply(deployment) is True
    assert await applier.apply(deployment) is False
    assert fake.writes_of("apply") == [key_of(deployment)]


async def test_whole_fleet_twice_writes_once() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    objects = _fleet_objects(policy("team-a"))

    first = await applier.apply_all(objects)
    second = await applier.apply_all(objects)
    assert len(first) == len(objects)
    assert second == []


async def test_changed_field_is_written() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    deployment = _gateway(_fleet_objects())
    await applier.apply(deployment)

    changed = copy.deepcopy(deployment)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.local/sg:2"
    assert await applier.apply(changed) is True
    live = fake.find("Deployment", "sluicegate-gateway", "sluicegate-system")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/sg:2"


async def test_removed_field_is_written() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    objects = _fleet_objects(policy("team-a", ollama={"nodeSelector": {"gpu": "a100"}}))
    (ollama,) = [obj for obj in objects if obj["kind"] == "Deployment" and obj["metadata"]["name"].startswith("sg-ollama")]
    await applier.apply(ollama)

    without = copy.deepcopy(ollama)
    del without["spec"]["template"]["spec"]["nodeSelector"]
    assert await applier.apply(without) is True
    live = fake.find("Deployment", ollama["metadata"]["name"], "sluicegate-system")
    assert live is not None
    assert "nodeSelector" not in live["spec"]["template"]["spec"]


async def test_out_of_band_edit_is_repaired() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    deployment = _gateway(_fleet_objects())
    await applier.apply(deployment)

    live = fake.find("Deployment", "sluicegate-gateway", "sluicegate-system")
    assert live is not None
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "someone/else:latest"
    assert await applier.apply(deployment) is True
    assert live is not fake.find("Deployment", "sluicegate-gateway", "sluicegate-system")


async def test_deleted_object_is_recreated() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    deployment = _gateway(_fleet_objects())
    await applier.apply(deployment)
    fake.remove(key_of(deployment))

    assert await applier.apply(deployment) is True
    assert fake.find("Deployment", "sluicegate-gateway", "sluicegate-system") is not None


async def test_prune_deletes_only_unlisted_managed_objects() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    old = _fleet_objects(policy("team-a", model="llama3.2:3b"))
    new = _fleet_objects(policy("team-a", model="qwen2.5:7b"))
    await applier.apply_all(old)
    user_secret = fake.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mine", "namespace": "sluicegate-system"}})
    api_key = fake.seed({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": _names.API_KEY_SECRET_NAME, "namespace": "sluicegate-system",
                     "labels": _names.labels(_names.COMPONENT_API_KEY)},
    })
    await applier.apply_all(new)

    deleted = await applier.prune(namespace="sluicegate-system", desired=new)
    old_name = _names.ollama_name("llama3.2:3b")
    assert sorted(deleted) == sorted(
        f"{kind} sluicegate-system/{old_name}" for kind in ("Deployment", "Service", "PersistentVolumeClaim")
    )
    assert fake.find("Deployment", _names.ollama_name("qwen2.5:7b"), "sluicegate-system") is not None
    assert fake.find("Secret", "mine", "sluicegate-system") == user_secret
    assert fake.find("Secret", _names.API_KEY_SECRET_NAME, "sluicegate-system") == api_key


def test_contains_treats_maps_as_subsets() -> None:
    assert _applying.contains({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})
    assert not _applying.contains({"a": 1}, {"a": 2})
    assert not _applying.contains({"a": 1}, {"b": 1})


def test_contains_compares_lists_itemwise() -> None:
    assert _applying.contains([{"name": "x", "extra": 1}], [{"name": "x"}])
    assert not _applying.contains([{"name": "x"}, {"name": "y"}], [{"name": "x"}])
    assert not _applying.contains([{"name": "y"}], [{"name": "x"}])


def test_applied_hash_ignores_own_annotation() -> None:
    deployment = _gateway(_fleet_objects())
    assert _applying.applied_hash(_applying.with_hash(deployment)) == _applying.applied_hash(deployment)


async def test_object_managed_by_helm_is_left_alone() -> None:
    fake = FakeKubernetes()
    applier = _applying.Applier(fake)
    objects = _fleet_objects()
    (account,) = [obj for obj in objects if obj["kind"] == "ServiceAccount"]
    helm_account = fake.seed({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": account["metadata"]["name"], "namespace": "sluicegate-system",
                     "labels": {_names.MANAGED_BY: "Helm"}},
        "imagePullSecrets": [{"name": "registry"}],
    })

    assert await applier.apply(account) is False
    assert fake.find("ServiceAccount", account["metadata"]["name"], "sluicegate-system") == helm_account
    assert await applier.prune(namespace="sluicegate-system", desired=[]) == []
    assert fake.find("ServiceAccount", account["metadata"]["name"], "sluicegate-system") == helm_account
