"""kopf handlers called with real resource bodies, a recording fake Kubernetes API and a SQLite ledger.

Covers: a create publishes the snapshot ConfigMap (readable by the gateway's loader), the
gateway fleet and Ready conditions, and gives the namespace an API key the ledger
resolves; an invalid resource gets Ready=False/Invalid and a PermanentError while the
rest is published; conflicting policies; a second reconcile writes nothing; the API key
is never rotated; a provider Secret appearing later is mirrored; a default policy serves
a namespace with budgets only; deleting a policy removes its Ollama model and, with the
namespace's last resource, revokes its key; API and ledger failures become
TemporaryErrors; concurrent requests coalesce.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest

from sluicegate import api, ledger
from sluicegate.operator import _handlers, _kubernetes, _names
from sluicegate.operator._settings import OperatorSettings

from fake_kubernetes import FakeKubernetes, key_of
from operator_resources import OPENAI_CLOUD, budget, policy, secret

SETTINGS = OperatorSettings(namespace="sluicegate-system", default_policy_namespace="sluicegate-system")


@pytest.fixture
async def budget_ledger(sqlite_url: str) -> AsyncIterator[ledger.Ledger]:
    opened = ledger.connect(sqlite_url)
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture
def fake() -> FakeKubernetes:
    return FakeKubernetes()


@pytest.fixture
def memo(fake: FakeKubernetes, budget_ledger: ledger.Ledger) -> dict[str, Any]:
    return {"sluicegate": _handlers.OperatorContext.build(settings=SETTINGS, api=fake, ledger=budget_ledger)}


def _config(fake: FakeKubernetes) -> api.Config:
    config_map = fake.find("ConfigMap", "sluicegate-config", "sluicegate-system")
    assert config_map is not None
    return api.load_text(config_map["data"]["config.yaml"], source="sluicegate-config")


def _condition(obj: dict[str, Any] | None, type: str) -> dict[str, Any]:
    assert obj is not None
    (condition,) = [item for item in obj["status"]["conditions"] if item["type"] == type]
    return dict(condition)


def _api_key(fake: FakeKubernetes, namespace: str) -> str:
    stored = fake.find("Secret", _names.API_KEY_SECRET_NAME, namespace)
    assert stored is not None
    return base64.b64decode(stored["data"]["api-key"]).decode()


async def test_create_publishes_fleet_and_status(fake: FakeKubernetes, memo: dict[str, Any], budget_ledger: ledger.Ledger) -> None:
    body = fake.seed(budget("team-a"))
    fake.seed(policy("team-a", cloud=OPENAI_CLOUD))
    fake.seed(secret("team-a", "openai-credentials", **{"api-key": "sk-test"}))

    await _handlers.resource_changed(body=body, memo=memo)

    config = _config(fake)
    assert [b.metadata.name for b in config.budgets] == ["monthly"]
    (published,) = config.policies
    assert published.spec.local.endpoint == f"http://{_names.ollama_name('llama3.2:3b')}.sluicegate-system.svc:11434/v1"
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert fake.find(kind, "sluicegate-gateway", "sluicegate-system") is not None, kind
    assert fake.find("ServiceAccount", "sluicegate-gateway", "sluicegate-system") is not None
    mirror = fake.find("Secret", _names.mirror_secret_name("team-a", "openai-credentials"), "sluicegate-system")
    assert mirror is not None
    assert base64.b64decode(mirror["data"]["api-key"]) == b"sk-test"

    assert _condition(fake.find("LLMBudget", "monthly", "team-a"), "Ready")["status"] == "True"
    policy_status = fake.find("RoutePolicy", "default", "team-a")
    assert _condition(policy_status, "Ready")["reason"] == "Published"
    assert _condition(policy_status, "OllamaSettings")["reason"] == "Applied"
    assert policy_status is not None
    assert policy_status["status"]["localEndpoint"] == published.spec.local.endpoint
    assert policy_status["status"]["observedGeneration"] == 1

    assert await budget_ledger.resolve_api_key(_api_key(fake, "team-a")) == "team-a"


async def test_invalid_budget_is_permanent_error(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    body = fake.seed(budget("team-a", ceiling="12.3456789"))
    fake.seed(budget("team-a", "daily", period="Daily"))

    with pytest.raises(kopf.PermanentError) as raised:
        await _handlers.resource_changed(body=body, memo=memo)

    assert "spec.ceilingUSD" in str(raised.value)
    assert "'12.3456789'" in str(raised.value)
    ready = _condition(fake.find("LLMBudget", "monthly", "team-a"), "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "Invalid"
    assert "at most 6 decimal places" in ready["message"]
    assert [b.metadata.name for b in _config(fake).budgets] == ["daily"]


async def test_conflicting_policy_gets_conflict(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    fake.seed(policy("team-a", "first", created="2025-01-01T00:00:00Z"))
    body = fake.seed(policy("team-a", "second", created="2025-03-01T00:00:00Z"))

    await _handlers.resource_changed(body=body, memo=memo)

    conflict = _condition(fake.find("RoutePolicy", "second", "team-a"), "Ready")
    assert conflict["reason"] == "Conflict"
    assert conflict["status"] == "False"
    assert [p.metadata.name for p in _config(fake).policies] == ["first"]


async def test_second_reconcile_writes_nothing(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    body = fake.seed(budget("team-a"))
    fake.seed(policy("team-a"))
    await _handlers.resource_changed(body=body, memo=memo)
    writes = len(fake.writes)

    await _handlers.resource_changed(body=body, memo=memo)
    assert fake.writes[writes:] == []


async def test_api_key_is_not_rotated(fake: FakeKubernetes, budget_ledger: ledger.Ledger) -> None:
    body = fake.seed(budget("team-a"))
    first = {"sluicegate": _handlers.OperatorContext.build(settings=SETTINGS, api=fake, ledger=budget_ledger)}
    await _handlers.resource_changed(body=body, memo=first)
    key = _api_key(fake, "team-a")

    # A restarted operator has a fresh context but finds the Secret.
    restarted = {"sluicegate": _handlers.OperatorContext.build(settings=SETTINGS, api=fake, ledger=budget_ledger)}
    await _handlers.resource_changed(body=body, memo=restarted)

    assert _api_key(fake, "team-a") == key
    assert len(await budget_ledger.list_api_keys("team-a")) == 1


async def test_secret_created_later_is_mirrored(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    body = fake.seed(policy("team-a", cloud=OPENAI_CLOUD))
    await _handlers.resource_changed(body=body, memo=memo)
    assert _condition(fake.find("RoutePolicy", "default", "team-a"), "Ready")["reason"] == "SecretNotFound"
    assert _config(fake).policies == ()

    fake.seed(secret("team-a", "openai-credentials", **{"api-key": "sk-late"}))
    await _handlers.resource_changed(body=body, memo=memo)

    assert _condition(fake.find("RoutePolicy", "default", "team-a"), "Ready")["reason"] == "Published"
    assert fake.find("Secret", _names.mirror_secret_name("team-a", "openai-credentials"), "sluicegate-system") is not None


async def test_default_policy_serves_budget_namespace(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    fake.seed(policy("sluicegate-system", cloud=OPENAI_CLOUD))
    fake.seed(secret("sluicegate-system", "openai-credentials", **{"api-key": "sk-platform"}))
    body = fake.seed(budget("team-x"))

    await _handlers.resource_changed(body=body, memo=memo)

    policies = {p.metadata.namespace: p for p in _config(fake).policies}
    assert sorted(policies) == ["sluicegate-system", "team-x"]
    gateway = fake.find("Deployment", "sluicegate-gateway", "sluicegate-system")
    assert gateway is not None
    volumes = gateway["spec"]["template"]["spec"]["volumes"]
    (projected,) = [volume["projected"] for volume in volumes if volume["name"] == "provider-secrets"]
    paths = [item["path"] for source in projected["sources"] for item in source["secret"]["items"]]
    assert paths == ["sluicegate-system/openai-credentials/api-key", "team-x/openai-credentials/api-key"]


async def test_delete_removes_model_and_key(fake: FakeKubernetes, memo: dict[str, Any], budget_ledger: ledger.Ledger) -> None:
    body = fake.seed(policy("team-a", model="qwen2.5:7b"))
    fake.seed(policy("team-b", model="llama3.2:3b"))
    await _handlers.resource_changed(body=body, memo=memo)
    key = _api_key(fake, "team-a")
    assert fake.find("Deployment", _names.ollama_name("qwen2.5:7b"), "sluicegate-system") is not None

    # kopf calls the delete handler while the object still exists, marked for deletion.
    fake.objects[key_of(body)]["metadata"]["deletionTimestamp"] = "2025-06-01T00:00:00Z"
    deleting = fake.find("RoutePolicy", "default", "team-a")
    assert deleting is not None
    await _handlers.resource_deleted(body=deleting, memo=memo)

    for kind in ("Deployment", "Service", "PersistentVolumeClaim"):
        assert fake.find(kind, _names.ollama_name("qwen2.5:7b"), "sluicegate-system") is None, kind
        assert fake.find(kind, _names.ollama_name("llama3.2:3b"), "sluicegate-system") is not None, kind
    assert fake.find("Secret", _names.API_KEY_SECRET_NAME, "team-a") is None
    assert await budget_ledger.resolve_api_key(key) is None
    assert fake.find("Secret", _names.API_KEY_SECRET_NAME, "team-b") is not None


async def test_delete_keeps_key_while_namespace_has_budget(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    body = fake.seed(policy("team-a"))
    fake.seed(budget("team-a"))
    await _handlers.resource_changed(body=body, memo=memo)

    fake.objects[key_of(body)]["metadata"]["deletionTimestamp"] = "2025-06-01T00:00:00Z"
    deleting = fake.find("RoutePolicy", "default", "team-a")
    assert deleting is not None
    await _handlers.resource_deleted(body=deleting, memo=memo)
    assert fake.find("Secret", _names.API_KEY_SECRET_NAME, "team-a") is not None


async def test_user_secret_of_same_name_is_kept(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    mine = fake.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": _names.API_KEY_SECRET_NAME, "namespace": "team-a"},
                      "data": {"api-key": "bWluZQ=="}})
    body = fake.seed(budget("team-a"))
    await _handlers.resource_changed(body=body, memo=memo)
    fake.objects[key_of(body)]["metadata"]["deletionTimestamp"] = "2025-06-01T00:00:00Z"
    await _handlers.resource_deleted(body=fake.find("LLMBudget", "monthly", "team-a") or {}, memo=memo)
    assert fake.find("Secret", _names.API_KEY_SECRET_NAME, "team-a") == mine


async def test_api_outage_is_temporary_error(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    body = fake.seed(budget("team-a"))
    fake.fail("list", _kubernetes.Unavailable("list LLMBudget: HTTP 503"))
    with pytest.raises(kopf.TemporaryError) as raised:
        await _handlers.resource_changed(body=body, memo=memo)
    assert raised.value.delay == _handlers.TRANSIENT_RETRY_SECONDS
    assert "HTTP 503" in str(raised.value)


async def test_forbidden_waits_longer(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    body = fake.seed(budget("team-a"))
    fake.fail("apply", _kubernetes.Forbidden("apply Deployment: HTTP 403"))
    with pytest.raises(kopf.TemporaryError) as raised:
        await _handlers.resource_changed(body=body, memo=memo)
    assert raised.value.delay == _handlers.ACTION_NEEDED_RETRY_SECONDS


async def test_ledger_outage_is_temporary_error(fake: FakeKubernetes, budget_ledger: ledger.Ledger) -> None:
    class UnavailableLedger:
        async def create_api_key(self, namespace: str) -> tuple[str, str]:
            raise ledger.LedgerUnavailable("connection refused")

    context = _handlers.OperatorContext.build(settings=SETTINGS, api=fake, ledger=budget_ledger)
    context.fleet._ledger = UnavailableLedger()  # type: ignore[assignment]
    body = fake.seed(budget("team-a"))
    with pytest.raises(kopf.TemporaryError) as raised:
        await _handlers.resource_changed(body=body, memo={"sluicegate": context})
    assert raised.value.delay == _handlers.LEDGER_RETRY_SECONDS


async def test_concurrent_requests_coalesce(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    bodies = [fake.seed(budget(f"team-{index}")) for index in range(5)]
    await asyncio.gather(*(_handlers.resource_changed(body=body, memo=memo) for body in bodies))
    assert fake.reads.count("list LLMBudget") <= 2
    assert len(_config(fake).budgets) == 5


async def test_missing_context_is_permanent_error() -> None:
    with pytest.raises(kopf.PermanentError):
        await _handlers.resource_changed(body=budget("team-a"), memo={})


def test_registry_has_every_handler() -> None:
    registry = _handlers.build_registry(SETTINGS)
    changing = {handler.id for handler in registry._changing.get_all_handlers()}
    assert {"LLMBudget.create", "LLMBudget.update", "LLMBudget.resume", "LLMBudget.delete",
            "RoutePolicy.create", "RoutePolicy.update", "RoutePolicy.resume", "RoutePolicy.delete"} <= changing
    timers = {handler.id for handler in registry._spawning.get_all_handlers()}
    assert timers == {"LLMBudget.status"}


async def test_handlers_accept_kopf_bodies(fake: FakeKubernetes, memo: dict[str, Any]) -> None:
    raw = fake.seed(budget("team-a", ceiling="bad"))
    with pytest.raises(kopf.PermanentError):
        await _handlers.resource_changed(body=kopf.Body(raw), memo=memo)

    valid = fake.seed(budget("team-a", "daily", period="Daily"))
    await _handlers.budget_timer(body=kopf.Body(valid), memo=memo)
    stored = fake.find("LLMBudget", "daily", "team-a")
    assert stored is not None
    assert stored["status"]["spentUSD"] == "0"


async def test_startup_and_cleanup_manage_resync(fake: FakeKubernetes, budget_ledger: ledger.Ledger) -> None:
    registry = _handlers.build_registry(SETTINGS)
    handlers = {handler.activity.value: handler.fn for handler in registry._activities.get_all_handlers()}
    context = _handlers.OperatorContext.build(settings=SETTINGS, api=fake, ledger=budget_ledger)
    memo = {"sluicegate": context}
    kopf_settings = kopf.OperatorSettings()

    await handlers["startup"](settings=kopf_settings, memo=memo)
    assert kopf_settings.persistence.finalizer == "sluicegate.io/finalizer"
    assert context.resync_task is not None
    assert not context.resync_task.done()

    await handlers["cleanup"](memo=memo)
    assert context.resync_task.cancelled()
