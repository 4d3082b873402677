"""LLMBudget status from a real SQLite ledger, with alerts to a real webhook receiver on 127.0.0.1.

Covers: spent, reserved, remaining and window come from the ledger; crossing 50 % posts
one Event and one webhook POST with the documented fields; a second sync and a
restarted operator do not alert again; 100 % sets Exhausted and posts a Warning; a
failing webhook gets a Warning Event that hides the URL's path; a new window alerts
afresh; a zero ceiling never alerts; an invalid budget is skipped; the Ready condition
written by the fleet reconciliation survives the timer's write.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import pytest

from sluicegate import api, ledger
from sluicegate.operator import _alerts, _budgets, _handlers
from sluicegate.operator._settings import OperatorSettings

from fake_kubernetes import FakeKubernetes
from operator_resources import budget

SETTINGS = OperatorSettings()


class Receiver:
    """A webhook receiver on 127.0.0.1 that records JSON bodies and answers with ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        self.url = ""

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.bodies.append(await request.json())
        self.paths.append(request.path)
        return aiohttp.web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = aiohttp.web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hooks/secret-token-123"
    yield receiver
    await runner.cleanup()


@pytest.fixture
async def budget_ledger(sqlite_url: str) -> AsyncIterator[ledger.Ledger]:
    opened = ledger.connect(sqlite_url)
    await opened.migrate()
    yield opened
    await opened.close()


def _sync(fake: FakeKubernetes, budget_ledger: ledger.Ledger) -> _budgets.BudgetStatusSync:
    return _budgets.BudgetStatusSync(api=fake, ledger=budget_ledger, settings=SETTINGS, lock=asyncio.Lock())


async def _spend(budget_ledger: ledger.Ledger, raw: dict[str, Any], usd: str) -> None:
    parsed = api.parse_document(raw, label="test")
    assert isinstance(parsed, api.LLMBudget)
    reference = ledger.BudgetRef.from_budget(parsed)
    amount = api.parse_usd(usd)
    reservation = await budget_ledger.reserve(
        namespace=reference.namespace, budgets=[reference], amount_nano=amount, ttl_seconds=60
    )
    attempt = ledger.Attempt(
        request_id=ledger.RequestId(uuid.uuid4().hex), attempt_id=uuid.uuid4().hex, namespace=reference.namespace,
        route="cloud", provider="openai", model="gpt-4.1", decision=ledger.Decision.CLASSIFIED,
        outcome=ledger.Outcome.OK, estimated_nano=amount, charged_nano=amount,
    )
    await budget_ledger.settle(reservation, attempt)


def _events(fake: FakeKubernetes, reason: str) -> list[dict[str, Any]]:
    return [event for event in fake.of_kind("Event") if event["reason"] == reason]


def _status(fake: FakeKubernetes, name: str = "monthly") -> dict[str, Any]:
    stored = fake.find("LLMBudget", name, "team-a")
    assert stored is not None
    return dict(stored["status"])


def _condition(status: dict[str, Any], type: str) -> dict[str, Any]:
    (condition,) = [item for item in status["conditions"] if item["type"] == type]
    return dict(condition)


async def test_status_shows_ledger_spend(budget_ledger: ledger.Ledger) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="20.00"))
    await _spend(budget_ledger, raw, "3.25")

    await _sync(fake, budget_ledger).sync(raw)

    status = _status(fake)
    assert status["spentUSD"] == "3.25"
    assert status["reservedUSD"] == "0"
    assert status["remainingUSD"] == "16.75"
    assert status["window"]["start"].endswith("Z")
    assert status["window"]["end"] > status["window"]["start"]
    assert status["alertedThresholds"] == []
    assert _condition(status, "Exhausted")["status"] == "False"
    assert _events(fake, _alerts.THRESHOLD_REASON) == []


async def test_crossing_half_alerts_once(budget_ledger: ledger.Ledger, receiver: Receiver) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="20.00", alerts={"thresholdsPercent": [50, 80, 100], "webhookURL": receiver.url}))
    await _spend(budget_ledger, raw, "12.00")

    await _sync(fake, budget_ledger).sync(raw)
    await _sync(fake, budget_ledger).sync(raw)

    (event,) = _events(fake, _alerts.THRESHOLD_REASON)
    assert event["type"] == "Normal"
    assert event["involvedObject"]["name"] == "monthly"
    assert "50%" in event["message"]
    (body,) = receiver.bodies
    assert set(body) == {"namespace", "budget", "period", "window", "thresholdPercent", "spentUSD", "ceilingUSD", "at"}
    assert body["namespace"] == "team-a"
    assert body["budget"] == "monthly"
    assert body["period"] == "Monthly"
    assert body["thresholdPercent"] == 50
    assert body["spentUSD"] == "12"
    assert body["ceilingUSD"] == "20"
    assert body["window"]["start"] == _status(fake)["window"]["start"]
    assert _status(fake)["alertedThresholds"] == [50]


async def test_full_budget_is_exhausted(budget_ledger: ledger.Ledger) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="10.00"))
    await _spend(budget_ledger, raw, "10.00")

    await _sync(fake, budget_ledger).sync(raw)

    status = _status(fake)
    exhausted = _condition(status, "Exhausted")
    assert exhausted["status"] == "True"
    assert exhausted["reason"] == "CeilingReached"
    assert status["remainingUSD"] == "0"
    assert status["alertedThresholds"] == [50, 80, 100]
    types = [event["type"] for event in _events(fake, _alerts.THRESHOLD_REASON)]
    assert types == ["Normal", "Normal", "Warning"]


async def test_failing_webhook_gets_warning_event(budget_ledger: ledger.Ledger, receiver: Receiver) -> None:
    receiver.status = 500
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="1.00", alerts={"thresholdsPercent": [50], "webhookURL": receiver.url}))
    await _spend(budget_ledger, raw, "0.60")

    sync = _budgets.BudgetStatusSync(api=fake, ledger=budget_ledger, settings=SETTINGS, lock=asyncio.Lock(), webhook_pause_seconds=0)
    await sync.sync(raw)

    assert len(receiver.bodies) == _alerts.WEBHOOK_ATTEMPTS
    (failed,) = _events(fake, _alerts.WEBHOOK_FAILED_REASON)
    assert failed["type"] == "Warning"
    assert "HTTP 500" in failed["message"]
    assert "secret-token-123" not in failed["message"]
    assert _status(fake)["alertedThresholds"] == [50]


async def test_new_window_alerts_again(budget_ledger: ledger.Ledger) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="10.00"))
    fake.objects[("sluicegate.io/v1alpha1", "LLMBudget", "team-a", "monthly")]["status"] = {
        "window": {"start": "2000-01-01T00:00:00Z", "end": "2000-02-01T00:00:00Z"},
        "alertedThresholds": [50, 80, 100],
    }
    await _spend(budget_ledger, raw, "6.00")

    await _sync(fake, budget_ledger).sync(raw)

    assert _status(fake)["alertedThresholds"] == [50]
    assert len(_events(fake, _alerts.THRESHOLD_REASON)) == 1


async def test_zero_ceiling_never_alerts(budget_ledger: ledger.Ledger) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="0"))

    await _sync(fake, budget_ledger).sync(raw)

    assert _events(fake, _alerts.THRESHOLD_REASON) == []
    assert _condition(_status(fake), "Exhausted")["status"] == "True"


async def test_invalid_budget_is_skipped(budget_ledger: ledger.Ledger) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a", ceiling="lots"))
    assert await _sync(fake, budget_ledger).sync(raw) is None
    assert fake.writes == []


async def test_ready_survives_timer_write(budget_ledger: ledger.Ledger) -> None:
    fake = FakeKubernetes()
    raw = fake.seed(budget("team-a"))
    context = _handlers.OperatorContext.build(settings=SETTINGS, api=fake, ledger=budget_ledger)
    await _handlers.resource_changed(body=raw, memo={"sluicegate": context})

    await _handlers.budget_timer(body=raw, memo={"sluicegate": context})

    status = _status(fake)
    assert _condition(status, "Ready")["reason"] == "Published"
    assert _condition(status, "Exhausted")["reason"] == "WithinCeiling"


def test_crossed_lists_new_thresholds_only() -> None:
    assert _alerts.crossed(thresholds=[50, 80, 100], already=[50], spent_nano=85, ceiling_nano=100) == [80]
    assert _alerts.crossed(thresholds=[50, 80, 100], already=[], spent_nano=49, ceiling_nano=100) == []
    assert _alerts.crossed(thresholds=[150], already=[], spent_nano=150, ceiling_nano=100) == [150]


def test_redacted_url_keeps_host_only() -> None:
    assert _alerts.redact_url("https://hooks.slack.invalid/services/T000/B000/XXXX?token=1") == "https://hooks.slack.invalid/..."
