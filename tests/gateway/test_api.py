"""The gateway's HTTP surface: authentication, bad input, route aliases, headers, health and metrics.

Every refusal uses OpenAI's error shape with the code of the error table, names the value
at fault, and reserves and charges nothing. The official openai SDK works unchanged.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from sluicegate import ledger
from sluicegate.scripted import Script
from tests.gateway import harness


@pytest.fixture
async def running(start_gateway: Any, cloud: Any, local: Any) -> Any:
    return await start_gateway(harness.budget_doc(ceiling="5.00"),
                               harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url),
                               max_body_bytes=64 * 1024)


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


async def test_missing_and_unknown_keys_are_rejected(running: Any) -> None:
    missing = await running.client.post("/v1/chat/completions", json={}, headers={"Authorization": ""})
    assert missing.status_code == 401
    assert error_of(missing)["code"] == "invalid_api_key"
    unknown = await running.client.post("/v1/chat/completions", json={}, headers={"Authorization": "Bearer sg-nope-nope"})
    assert unknown.status_code == 401
    assert "sluicegate keys create" in error_of(unknown)["message"]


async def test_revoked_key_stops_working(running: Any, postgres_url: str) -> None:
    store = ledger.connect(postgres_url)
    try:
        key_id, key = await store.create_api_key(harness.NAMESPACE)
        headers = {"Authorization": f"Bearer {key}"}
        assert (await running.client.post("/v1/chat/completions", headers=headers,
                                          json={"model": "local-A", "messages": [{"role": "user", "content": "hi"}]})).status_code == 200
        assert await store.revoke_api_key(key_id)
    finally:
        await store.close()
    running.gateway.app_state.auth._cache.clear()
    revoked = await running.client.post("/v1/chat/completions", headers=headers,
                                        json={"model": "local-A", "messages": [{"role": "user", "content": "hi"}]})
    assert revoked.status_code == 401


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model", "'model'"),
        (b'{"model": "auto"}', "messages", "missing"),
        (b'{"model": "auto", "messages": []}', "messages", "empty"),
        (b'{"model": "auto", "messages": "hi"}', "messages", "list"),
        (b'{"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}', "messages[0].role", "wizard"),
        (b'{"model": "auto", "messages": [{"role": "user", "content": 5}]}', "messages[0].content", "string"),
        (b'{"model": "auto", "max_tokens": -5, "messages": [{"role": "user", "content": "hi"}]}', "max_tokens", "-5"),
        (b'{"model": "auto", "max_tokens": "lots", "messages": [{"role": "user", "content": "hi"}]}', "max_tokens", "integer"),
        (b'{"model": "auto", "max_tokens": 10, "max_completion_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}',
         "max_tokens", "differ"),
        (b'{"model": "auto", "temperature": 9, "messages": [{"role": "user", "content": "hi"}]}', "temperature", "9"),
        (b'{"model": "auto", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}', "stream", "true or false"),
        (b'{"model": "auto", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]}',
         "stream_options", "stream"),
    ],
)
async def test_bad_input_gets_400_naming_the_value(running: Any, cloud: Any, local: Any, postgres_url: str,
                                                   body: bytes, param: str | None, fragment: str) -> None:
    response = await running.client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    assert fragment in error["message"]
    assert cloud.call_count == 0
    assert local.call_count == 0
    states = await harness.ledger_state(postgres_url, running.config)
    assert states[0].spent_nano == 0
    assert states[0].reserved_nano == 0


async def test_max_tokens_above_route_maximum(running: Any, cloud: Any) -> None:
    response = await running.chat(model="local-A", max_tokens=5000)
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert "5,000" in message
    assert "2,048" in message


async def test_unknown_model_is_404(running: Any) -> None:
    response = await running.chat(model="gpt-17")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "model_not_found"
    assert "gpt-17" in error["message"]
    assert "'auto'" in error["message"]


async def test_oversized_body_is_413(running: Any, cloud: Any) -> None:
    response = await running.chat(content="x" * 70_000)
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    assert cloud.call_count == 0


async def test_invalid_hint_header_is_400(running: Any) -> None:
    response = await running.chat(model="auto", headers={"X-Sluicegate-Complexity": "medium"})
    assert response.status_code == 400
    assert "medium" in error_of(response)["message"]


async def test_hint_header_decides_route(running: Any) -> None:
    complex_ = await running.chat(model="auto", content="hi", headers={"X-Sluicegate-Complexity": "complex"})
    simple = await running.chat(model="auto", content="Prove step by step, with code, that the algorithm terminates.",
                                headers={"X-Sluicegate-Complexity": "simple"})
    assert complex_.headers["x-sluicegate-route"] == "cloud"
    assert simple.headers["x-sluicegate-route"] == "local"
    assert complex_.headers["x-sluicegate-decision"] == "classified"


async def test_namespace_without_policy_is_404(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    running = await start_gateway(harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, namespace="team-b"))
    response = await running.chat()
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "no_route_policy"
    assert "team-a" in error["message"]


async def test_namespace_without_budget_uses_only_free_routes(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    paid = await running.chat(model="cloud")
    assert paid.status_code == 403
    assert error_of(paid)["code"] == "no_budget"
    assert "LLMBudget" in error_of(paid)["message"]
    free = await running.chat(model="local")
    assert free.status_code == 200
    assert cloud.call_count == 0


async def test_response_headers_name_route_and_cost(running: Any) -> None:
    response = await running.chat(model="cloud", max_tokens=50)
    assert response.status_code == 200
    assert response.headers["x-sluicegate-route"] == "cloud"
    assert response.headers["x-sluicegate-decision"] == "forced"
    assert len(response.headers["x-sluicegate-request-id"]) == 32
    assert response.headers["x-sluicegate-cost-usd"] == "0.0025"
    streamed = await running.chat(model="cloud", max_tokens=50, stream=True)
    assert "x-sluicegate-cost-usd" not in streamed.headers
    assert float(streamed.headers["x-sluicegate-reserved-usd"]) > 0


async def test_models_lists_aliases_and_routes(running: Any) -> None:
    response = await running.client.get("/v1/models")
    assert [model["id"] for model in response.json()["data"]] == ["auto", "local", "cloud", "local-A", "cloud-A"]


async def test_health_readiness_and_metrics(running: Any) -> None:
    assert (await running.client.get("/healthz")).text == "ok"
    assert (await running.client.get("/readyz")).json()["status"] == "ready"
    await running.chat(model="cloud", max_tokens=50)
    await harness.settled()
    metrics = (await running.client.get("/metrics")).text
    assert 'sluicegate_requests_total{decision="forced",namespace="team-a",outcome="ok",route="cloud"} 1.0' in metrics
    assert 'sluicegate_spend_usd_total{namespace="team-a",route="cloud"} 0.0025' in metrics
    assert "sluicegate_upstream_latency_seconds_bucket" in metrics


async def test_openai_sdk_works_unchanged(running: Any, cloud: Any) -> None:
    client = openai.AsyncOpenAI(base_url=f"{running.gateway.base_url}/v1", api_key=running.key, max_retries=0)
    try:
        completion = await client.chat.completions.create(model="cloud", messages=[{"role": "user", "content": "hi"}],
                                                          max_tokens=50)
        assert completion.choices[0].message.content == "Hello from the scripted upstream."
        assert completion.usage is not None
        assert completion.usage.completion_tokens == 50
        stream = await client.chat.completions.create(model="cloud", messages=[{"role": "user", "content": "hi"}],
                                                      max_tokens=50, stream=True)
        pieces = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
        assert "".join(pieces) == "Hello from the scripted upstream."
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()


async def test_budget_429_is_not_retried_by_sdk(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="0"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    client = openai.AsyncOpenAI(base_url=f"{running.gateway.base_url}/v1", api_key=running.key, max_retries=2)
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="cloud", messages=[{"role": "user", "content": "hi"}])
        assert "budget exhausted" in str(caught.value)
    finally:
        await client.close()
    assert cloud.call_count == 0


async def test_loop_guard_rejects_the_repeat_past_its_limit(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="5.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                                     loopGuard={"maxRepeats": 3, "windowSeconds": 60}))
    statuses = [(await running.chat(model="local", content="same")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await running.chat(model="local", content="same")
    assert error_of(refused)["code"] == "loop_detected"
    assert int(refused.headers["retry-after"]) >= 1
    assert (await running.chat(model="local", content="different")).status_code == 200
    assert local.call_count == 4
    outcomes = [row.outcome.value for row in await harness.rows(postgres_url)]
    assert outcomes.count("loop_detected") == 2


async def test_free_local_failure_without_escalation(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="5.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    local.enqueue(Script(status=500))
    forced = await running.chat(model="local")
    assert forced.status_code == 502
    assert error_of(forced)["code"] == "upstream_error"
    assert cloud.call_count == 0


async def test_long_output_request_goes_to_cloud(running: Any) -> None:
    # "hi" classifies simple, but 4,096 output tokens exceed the local route's 2,048.
    response = await running.chat(model="auto", content="hi", max_tokens=4096)
    assert response.status_code == 200
    assert response.headers["x-sluicegate-route"] == "cloud"
    too_long = await running.chat(model="auto", content="hi", max_completion_tokens=9000)
    assert too_long.status_code == 400
    error = error_of(too_long)
    assert error["param"] == "max_completion_tokens"
    assert "spec.local.maxOutputTokens" in error["message"]


async def test_refusals_carry_request_id(running: Any, postgres_url: str) -> None:
    refused = await running.chat(model="gpt-17")
    request_id = refused.headers["x-sluicegate-request-id"]
    assert len(request_id) == 32
    rows = await harness.rows(postgres_url)
    assert [row.request_id for row in rows] == [request_id]


async def test_classifier_signals_in_header(running: Any) -> None:
    response = await running.chat(model="auto", content="hi", max_tokens=4096)
    assert response.headers["x-sluicegate-signals"] == "max_tokens"


async def test_loop_guard_ignores_invalid_requests(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="5.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                                     loopGuard={"maxRepeats": 2, "windowSeconds": 60}))
    invalid = [(await running.chat(model="local", content="same", max_tokens=5000)).status_code for _ in range(3)]
    assert invalid == [400, 400, 400]
    fixed = [(await running.chat(model="local", content="same", max_tokens=100)).status_code for _ in range(3)]
    assert fixed == [200, 200, 429]
    other_limit = await running.chat(model="local", content="same", max_tokens=101)
    assert other_limit.status_code == 200


async def test_budget_429_says_why_not_local(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="0", on_exceeded="Downgrade"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url))
    refused = await running.chat(model="cloud", max_tokens=4000)
    assert refused.status_code == 429
    message = error_of(refused)["message"]
    assert "max_tokens of 4,000 is above the local route's maximum of 2,048" in message
    assert "model 'local'" not in message
    downgraded = await running.chat(model="cloud", max_tokens=100)
    assert downgraded.headers["x-sluicegate-decision"] == "downgraded"
