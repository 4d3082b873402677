"""Fault scenarios that real gateways with budget ledgers have hit, each with its exact right outcome.

Common setup: namespace team-a, cloud route cloud-A at $10 / $1 (cached) / $30 per million
tokens, free local route local-A, budgets with onExceeded Reject and the loop guard off,
ledger on PostgreSQL. Covered: concurrent admissions, streamed cost, usage injection and
stripping, missing prices, fail-closed reservations, reservation bounds, cached-token
pricing, free cache hits, downgrade to free local routes, unserved paths, cut streams,
escalation classes and pre-dispatch ceilings. Window spend that survives re-creating a
budget is in test_windows.py, an unreachable ledger in test_outage.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from sluicegate import api
from sluicegate.ledger import Decision, Outcome, UsageSource
from sluicegate.scripted import Script, UsageMode, flat
from tests.gateway import harness

FLAT_PRICE = {"input": "0", "output": "100"}


def sse_events(text: str) -> list[str]:
    """The data fields of a server-sent event stream, in order."""
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def in_flight(states: list[Any]) -> int:
    return sum(state.reserved_nano for state in states)


async def test_concurrent_admissions_never_pass_ceiling(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # 50 simultaneous $0.10 requests against $1.00, spread over two replicas.
    cloud.set_default(flat(completion_tokens=1000, delay_seconds=2))
    documents = (harness.budget_doc(ceiling="1.00"),
                 harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, cloud_price=FLAT_PRICE))
    first = await start_gateway(*documents)
    second = await start_gateway(*documents)

    async def send(index: int) -> httpx.Response:
        replica = first if index % 2 else second
        return await replica.client.post("/v1/chat/completions", json={
            "model": "cloud-A", "max_tokens": 1000, "messages": [{"role": "user", "content": "Hello"}]})

    responses = await asyncio.gather(*(send(i) for i in range(50)))
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 40
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "budget_exceeded"
            assert "team-a" in response.json()["error"]["message"]
            assert response.headers["x-should-retry"] == "false"
    assert cloud.call_count == 10
    states = await harness.ledger_state(postgres_url, first.config)
    assert states[0].spent_nano == api.parse_usd("1.00")
    assert in_flight(states) == 0


async def test_streamed_calls_are_charged_like_plain_ones(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # A streamed call costs the same as a non-streamed one, and spend blocks the third.
    cloud.set_default(Script(prompt_tokens=100, completion_tokens=50, chunks=("a", "b", "c", "d", "e")))
    running = await start_gateway(harness.budget_doc(ceiling="0.006"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    prompt = "Summarise the following meeting notes for the team. " * 8  # about 400 characters

    plain = await running.chat(content=prompt, max_tokens=50)
    assert plain.status_code == 200
    assert plain.headers["x-sluicegate-cost-usd"] == "0.0025"
    streamed = await running.chat(content=prompt, max_tokens=50, stream=True, stream_options={"include_usage": True})
    assert streamed.status_code == 200
    assert sse_events(streamed.text)[-1] == "[DONE]"
    third = await running.chat(content=prompt, max_tokens=50, stream=True, stream_options={"include_usage": True})
    assert third.status_code == 429
    assert "team-a" in third.json()["error"]["message"]

    attempts = [row for row in await harness.rows(postgres_url) if row.outcome is Outcome.OK]
    assert [row.charged_nano for row in attempts] == [2_500_000, 2_500_000]
    assert cloud.call_count == 2


async def test_stream_usage_requested_and_hidden_from_client(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # The gateway asks for usage, bills reasoning tokens, and strips the usage chunk.
    cloud.set_default(Script(chunks=tuple(f"w{i} " for i in range(20)), prompt_tokens=100, completion_tokens=500,
                             reasoning_tokens=480, usage=UsageMode.WHEN_ASKED))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))

    response = await running.chat(stream=True, max_tokens=1000)
    assert response.status_code == 200
    assert cloud.calls[-1].body["stream_options"]["include_usage"] is True
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["choices"] for chunk in chunks)
    assert all(chunk.get("usage") is None for chunk in chunks)
    assert sum(1 for chunk in chunks if chunk["choices"][0]["delta"].get("content")) == 20
    assert sum(1 for chunk in chunks if chunk["choices"][0]["finish_reason"]) == 1
    row = (await harness.rows(postgres_url))[-1]
    assert row.completion_tokens == 500
    assert row.charged_nano == 16_000_000

    asked = await running.chat(stream=True, max_tokens=1000, stream_options={"include_usage": True})
    usage_chunks = [json.loads(e) for e in sse_events(asked.text)[:-1] if json.loads(e).get("usage")]
    assert len(usage_chunks) == 1
    assert usage_chunks[0]["usage"]["completion_tokens"] == 500


async def test_local_stream_without_usage_is_estimated(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # Local variant: a free route that never reports usage costs $0, marked estimated.
    local.set_default(Script(usage=UsageMode.NEVER))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    response = await running.chat(model="local-A", stream=True)
    assert response.status_code == 200
    row = (await harness.rows(postgres_url))[-1]
    assert row.usage_source is UsageSource.ESTIMATED
    assert row.charged_nano == 0
    assert row.outcome is Outcome.OK
    assert row.completion_tokens > 0


async def test_missing_output_price_refuses_config(tmp_path: Any, cloud: Any, local: Any) -> None:
    # A cloud route without an output price is a load error naming the field, never $0.
    document = harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, cloud_price={"input": "1"})
    document["spec"]["cloud"]["model"] = "cloud-new"
    path = harness.write_config(tmp_path / "broken.yaml", harness.budget_doc(ceiling="1.00"), document)
    with pytest.raises(api.ConfigError) as caught:
        api.load_path(path)
    assert "spec.cloud.priceUSDPerMillionTokens.output" in str(caught.value)
    assert "required" in str(caught.value)
    assert cloud.call_count == 0


async def test_custom_price_is_charged_and_enforced(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # Variant: a self-hosted openai-compatible route with its own price.
    cloud.set_default(Script(prompt_tokens=1000, completion_tokens=1000))
    documents = (harness.budget_doc(ceiling="1.00"),
                 harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                    cloud_price={"input": "1", "output": "2"}, cloud={"model": "vllm-x"}))
    running = await start_gateway(*documents)
    response = await running.chat(model="vllm-x", max_tokens=1000)
    assert response.status_code == 200
    assert response.headers["x-sluicegate-cost-usd"] == "0.003"

    await harness.seed_spend(postgres_url, running.config, amount_usd="0.997")
    refused = await running.chat(model="vllm-x", max_tokens=1000)
    assert refused.status_code == 429
    assert cloud.call_count == 1


async def test_unestimable_content_is_refused(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # Content the gateway cannot price is refused before dispatch.
    running = await start_gateway(harness.budget_doc(ceiling="0.05"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    body = {"model": "cloud-A", "messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]}
    responses = await asyncio.gather(*(running.client.post("/v1/chat/completions", json=body) for _ in range(20)))
    for response in responses:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "cannot_estimate"
        assert "hologram" in response.json()["error"]["message"]
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].spent_nano == 0
    assert in_flight(states) == 0
    assert cloud.call_count == 0


async def test_missing_max_tokens_reserves_the_default(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # Without max_tokens the reservation is bounded by defaultMaxTokens, which is sent upstream.
    cloud.set_default(Script(prompt_tokens=100, completion_tokens=50, delay_seconds=1))
    running = await start_gateway(
        harness.budget_doc(ceiling="1.00"),
        harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, defaultMaxTokens=4096,
                           cloud={"maxOutputTokens": 100000}))
    responses = await asyncio.gather(*(running.chat() for _ in range(5)))
    assert [response.status_code for response in responses] == [200] * 5
    assert all(call.body["max_tokens"] <= 4096 for call in cloud.calls)
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].spent_nano == 5 * 2_500_000
    assert in_flight(states) == 0

    huge, normal = await asyncio.gather(running.chat(max_tokens=1_000_000_000), running.chat(max_tokens=100))
    assert huge.status_code == 400
    message = huge.json()["error"]["message"]
    assert "max_tokens" in message
    assert "100,000" in message
    assert normal.status_code == 200


async def test_cached_tokens_priced_at_cache_rate(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # 27,146 of 27,147 prompt tokens were cache reads.
    cloud.set_default(Script(prompt_tokens=27147, cached_tokens=27146, completion_tokens=351))
    running = await start_gateway(
        harness.budget_doc(ceiling="1.00"),
        harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                           cloud_price={"input": "1.40", "cachedInput": "0.26", "output": "4.40"}))
    response = await running.chat(max_tokens=400)
    assert response.headers["x-sluicegate-cost-usd"] == "0.00860376"
    row = (await harness.rows(postgres_url))[-1]
    assert row.charged_nano == 8_603_760
    assert row.cached_tokens == 27146


async def test_cache_hit_is_free(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # The second identical request is served from the cache at $0.
    running = await start_gateway(
        harness.budget_doc(ceiling="1.00"),
        harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                           cache={"response": {"enabled": True, "ttlSeconds": 60}}))
    first = await running.chat(temperature=0, max_tokens=50)
    second = await running.chat(temperature=0, max_tokens=50)
    assert first.status_code == second.status_code == 200
    assert second.json()["choices"] == first.json()["choices"]
    assert second.headers["x-sluicegate-decision"] == "cache_hit"
    assert second.headers["x-sluicegate-cost-usd"] == "0"
    assert cloud.call_count == 1
    attempts = await harness.rows(postgres_url)
    assert [row.charged_nano for row in attempts] == [2_500_000, 0]
    assert attempts[1].outcome is Outcome.CACHE_HIT
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].spent_nano == 2_500_000
    assert in_flight(states) == 0


async def test_exhausted_budget_keeps_free_routes_open(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # At the ceiling, free local routes and downgrades still serve; a Reject budget refuses.
    downgrade = await start_gateway(harness.budget_doc(ceiling="1.00", on_exceeded="Downgrade"),
                                    harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    await harness.seed_spend(postgres_url, downgrade.config, amount_usd="1.00")

    by_model = await downgrade.chat(model="local-A")
    by_alias = await downgrade.chat(model="auto", content="Hi there")
    downgraded = await downgrade.chat(model="cloud-A")
    assert by_model.status_code == by_alias.status_code == downgraded.status_code == 200
    assert by_alias.headers["x-sluicegate-route"] == "local"
    assert downgraded.headers["x-sluicegate-route"] == "local"
    assert downgraded.headers["x-sluicegate-decision"] == "downgraded"

    reject = await start_gateway(harness.budget_doc(ceiling="1.00", on_exceeded="Reject"),
                                 harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url),
                                 ledger_url=postgres_url)
    refused = await reject.chat(model="cloud-A")
    assert refused.status_code == 429
    assert "team-a" in refused.json()["error"]["message"]
    assert cloud.call_count == 0
    assert local.call_count == 3
    served = [row for row in await harness.rows(postgres_url) if row.outcome is Outcome.OK and row.route == "local"]
    assert [row.charged_nano for row in served] == [0, 0, 0]
    assert served[2].decision is Decision.DOWNGRADED


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/embeddings", "/v1/responses", "/openai/v1/chat/completions"])
async def test_unserved_paths_reach_no_upstream(start_gateway: Any, cloud: Any, local: Any, postgres_url: str, path: str) -> None:
    # Only chat completions is served; every other path is a 404 that reaches no upstream.
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    await harness.seed_spend(postgres_url, running.config, amount_usd="1.00")
    refused = await running.chat()
    assert refused.status_code == 429
    response = await running.client.post(path, json={"model": "cloud-A", "input": "x", "prompt": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert cloud.call_count == 0
    assert local.call_count == 0


async def test_stream_cut_after_first_byte_ends_with_error(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # 40 of 60 chunks reach the client, then an error event and no [DONE]; no cloud stitching.
    local.set_default(Script(chunks=tuple(f"t{i} " for i in range(60)), cut_after_chunks=40, usage=UsageMode.NEVER))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    response = await running.chat(model="auto", content="Hi", stream=True)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert "[DONE]" not in events
    content = [json.loads(e) for e in events if "choices" in json.loads(e)]
    assert len(content) == 40
    assert json.loads(events[-1])["error"]["code"] == "upstream_error"
    assert cloud.call_count == 0
    row = (await harness.rows(postgres_url))[-1]
    assert row.route == "local"
    assert row.outcome is Outcome.UPSTREAM_TRUNCATED


async def test_stream_cut_before_first_byte_escalates(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # The local server drops the connection before headers; one escalation, full stream.
    local.set_default(Script(close_before_headers=True))
    cloud.set_default(Script(prompt_tokens=50, completion_tokens=60))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    response = await running.chat(model="auto", content="Hi", stream=True, max_tokens=100)
    assert response.status_code == 200
    assert response.headers["x-sluicegate-decision"] == "escalated"
    assert sse_events(response.text)[-1] == "[DONE]"
    assert cloud.call_count == 1
    local_row, cloud_row = await harness.rows(postgres_url)
    assert (local_row.route, local_row.charged_nano, local_row.outcome) == ("local", 0, Outcome.UPSTREAM_ERROR)
    assert (cloud_row.route, cloud_row.charged_nano) == ("cloud", 2_300_000)
    assert cloud_row.escalated_from == local_row.attempt_id


async def test_escalation_follows_failure_class(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # Server faults escalate exactly once; the request's own 400 goes back to the client.
    running = await start_gateway(harness.budget_doc(ceiling="100.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                                     local={"timeoutSeconds": 1}))
    cases = {
        "not pulled": Script(status=404, error_type="not_found_error", error_message="model 'local-A' not found, try pulling it first"),
        "invalid": Script(status=400, error_type="invalid_request_error", error_message="bad field"),
        "context": Script(status=400, error_type="exceed_context_size_error", error_message="the request exceeds the context size"),
        "server error": Script(status=500),
        "no first byte": Script(delay_seconds=3),
    }
    statuses = {}
    for name, script in cases.items():
        local.enqueue(script)
        statuses[name] = (await running.chat(model="auto", content="Hi")).status_code
    assert statuses == {"not pulled": 200, "invalid": 400, "context": 200, "server error": 200, "no first byte": 200}
    assert cloud.call_count == 4

    dead = harness.policy_doc(local_url=f"http://127.0.0.1:{harness.free_port()}/v1", cloud_url=cloud.base_url)
    refused_connection = await start_gateway(harness.budget_doc(ceiling="100.00"), dead, ledger_url=postgres_url)
    assert (await refused_connection.chat(model="auto", content="Hi")).status_code == 200
    assert cloud.call_count == 5

    local.enqueue(Script(status=500))
    cloud.enqueue(Script(status=500))
    failed = await running.chat(model="auto", content="Hi")
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "upstream_error"
    assert cloud.call_count == 6
    request_id = failed.headers["x-sluicegate-request-id"]
    attempts = [row for row in await harness.rows(postgres_url) if row.request_id == request_id]
    assert [(row.route, row.charged_nano, row.outcome) for row in attempts] == [
        ("local", 0, Outcome.UPSTREAM_ERROR), ("cloud", 0, Outcome.UPSTREAM_ERROR)]
    states = await harness.ledger_state(postgres_url, running.config)
    assert in_flight(states) == 0


async def test_stream_ceiling_checked_before_dispatch(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # A stream whose worst case does not fit is refused before dispatch; one that fits lands at exactly $0.996.
    cloud.set_default(Script(chunks=tuple("x" for _ in range(150)), prompt_tokens=100, completion_tokens=1500))
    running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    await harness.seed_spend(postgres_url, running.config, amount_usd="0.95")
    prompt = "Please write the release notes for this sprint. " * 6

    refused = await running.chat(content=prompt, stream=True, max_tokens=4000)
    assert refused.status_code == 429
    assert cloud.call_count == 0
    admitted = await running.chat(content=prompt, stream=True, max_tokens=1500)
    assert admitted.status_code == 200
    assert sse_events(admitted.text)[-1] == "[DONE]"
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].spent_nano == api.parse_usd("0.996")
    assert in_flight(states) == 0
