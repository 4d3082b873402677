"""Streams that end badly: a client that leaves, usage that never comes, usage sent as running
totals, an empty answer, and an escalation that its budget cannot pay for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from sluicegate.ledger import Outcome, UsageSource
from sluicegate.scripted import Script, UsageMode
from tests.gateway import harness


async def test_client_disconnect_still_settles_from_usage(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    cloud.set_default(Script(chunks=tuple(f"t{i} " for i in range(30)), chunk_delay_seconds=0.05,
                             prompt_tokens=100, completion_tokens=300))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    async with running.client.stream("POST", "/v1/chat/completions", json={
            "model": "cloud", "max_tokens": 500, "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break  # leave after the first chunk

    async def settled() -> bool:
        return len(await harness.rows(postgres_url)) == 1

    await harness.await_until(settled, timeout=15)
    row = (await harness.rows(postgres_url))[0]
    assert row.outcome is Outcome.CLIENT_DISCONNECTED
    assert row.usage_source is UsageSource.PROVIDER
    assert row.completion_tokens == 300
    assert row.charged_nano == 100 * 10_000 + 300 * 30_000
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].reserved_nano == 0


async def test_paid_stream_without_usage_charges_the_hold(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    cloud.set_default(Script(usage=UsageMode.NEVER))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    response = await running.chat(model="cloud", max_tokens=100, stream=True)
    reserved = response.headers["x-sluicegate-reserved-usd"]
    row = (await harness.rows(postgres_url))[-1]
    assert row.usage_source is UsageSource.ESTIMATED
    assert row.charged_nano == row.estimated_nano
    assert row.charged_nano == round(float(reserved) * 1e9)


async def test_cumulative_usage_uses_the_final_totals(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    cloud.set_default(Script(chunks=("a", "b", "c"), prompt_tokens=100, completion_tokens=40, usage=UsageMode.CUMULATIVE))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    response = await running.chat(model="cloud", max_tokens=100, stream=True)
    events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert all("usage" not in json.loads(event) for event in events[:-1])
    row = (await harness.rows(postgres_url))[-1]
    assert (row.prompt_tokens, row.completion_tokens) == (100, 40)


async def test_empty_local_answer_escalates(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    local.set_default(Script(chunks=("",)))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    plain = await running.chat(model="auto", content="hi")
    streamed = await running.chat(model="auto", content="hi", stream=True)
    assert plain.headers["x-sluicegate-decision"] == streamed.headers["x-sluicegate-decision"] == "escalated"
    assert cloud.call_count == 2


async def test_escalation_refused_by_budget_returns_local_error(start_gateway: Any, cloud: Any, local: Any,
                                                                postgres_url: str) -> None:
    local.set_default(Script(status=500))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    await harness.seed_spend(postgres_url, running.config, amount_usd="1.00")
    for stream in (False, True):
        response = await running.chat(model="auto", content="hi", stream=stream)
        assert response.status_code == 502
        message = response.json()["error"]["message"]
        assert "monthly" in message
        assert "team-a" in message
    assert cloud.call_count == 0


async def test_forced_local_never_escalates(start_gateway: Any, cloud: Any, local: Any) -> None:
    local.set_default(Script(status=503))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    assert (await running.chat(model="local", stream=True)).status_code == 502
    assert cloud.call_count == 0


async def test_several_budgets_all_must_have_room(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    cloud.set_default(Script(prompt_tokens=0, completion_tokens=1000))
    daily = harness.budget_doc(ceiling="0.05", name="daily", period="Daily", on_exceeded="Downgrade")
    monthly = harness.budget_doc(ceiling="10.00", name="monthly", on_exceeded="Reject")
    running = await start_gateway(daily, monthly, harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                                                     cloud_price={"input": "0", "output": "10"}))
    statuses = [(await running.chat(model="cloud", max_tokens=1000)).headers["x-sluicegate-route"] for _ in range(6)]
    # Five $0.01 calls fill the daily budget; the sixth is downgraded since only "daily" lacks room.
    assert statuses == ["cloud"] * 5 + ["local"]

    tight = harness.budget_doc(ceiling="0.05", name="tight", period="Daily", on_exceeded="Reject",
                               namespace="team-b")
    other = await start_gateway(tight, harness.budget_doc(ceiling="10.00", name="loose", namespace="team-b",
                                                          on_exceeded="Downgrade"),
                                harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, namespace="team-b",
                                                   cloud_price={"input": "0", "output": "10"}),
                                ledger_url=postgres_url)
    key = await harness.new_key(postgres_url, namespace="team-b")
    async with httpx.AsyncClient(base_url=other.gateway.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        results = []
        for _ in range(6):
            response = await client.post("/v1/chat/completions", json={
                "model": "cloud", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]})
            results.append(response.status_code)
    assert results == [200] * 5 + [429]


async def test_n_multiplies_the_output_estimate(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="0.05"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                                     cloud_price={"input": "0", "output": "10"}))
    assert (await running.chat(model="cloud", max_tokens=1000, n=5)).status_code == 200
    refused = await running.chat(model="cloud", max_tokens=1000, n=6)
    assert refused.status_code == 429
    assert "0.06" in refused.json()["error"]["message"]


async def test_strict_ceiling_bounds_the_prompt_by_bytes(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, strictCeiling=True))
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}]}
    response = await running.client.post("/v1/chat/completions", json={"model": "cloud", "messages": [image]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "cannot_estimate"
    text = await running.chat(model="cloud", content="é" * 100, max_tokens=10, stream=True)
    # 200 UTF-8 bytes + 16 + 16 (role) + 3 tokens at $10 per million, plus 10 output tokens at $30.
    assert text.headers["x-sluicegate-reserved-usd"] == f"{(200 + 4 + 16 + 3) * 10 / 1e6 + 10 * 30 / 1e6:.5f}".rstrip("0")


async def test_concurrent_streams_settle_every_reservation(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    responses = await asyncio.gather(*(running.chat(model="cloud", max_tokens=60, stream=True) for _ in range(20)))
    assert {response.status_code for response in responses} == {200}
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].reserved_nano == 0
    assert states[0].spent_nano == 20 * 2_500_000
