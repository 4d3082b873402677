"""The Anthropic Messages adapter: translation both ways, prompt caching and cache-priced usage.

The scripted upstream answers on /v1/messages as Anthropic does; the client still speaks
OpenAI's chat format to the gateway.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluicegate.scripted import Script
from tests.gateway import harness


@pytest.fixture
async def running(start_gateway: Any, cloud: Any, local: Any, tmp_path: Any) -> Any:
    secrets = tmp_path / "secrets" / harness.NAMESPACE / "anthropic-credentials"
    secrets.mkdir(parents=True)
    (secrets / "api-key").write_text("sk-ant-test-secret\n")
    policy = harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                cloud_price={"input": "1.40", "cachedInput": "0.26", "cacheWrite": "1.75", "output": "4.40"})
    policy["spec"]["cloud"].update({"provider": "anthropic", "model": "claude-x",
                                    "apiKeySecretRef": {"name": "anthropic-credentials", "key": "api-key"}})
    return await start_gateway(harness.budget_doc(ceiling="5.00"), policy, secrets_dir=tmp_path / "secrets")


async def test_request_translated_with_cache_control(running: Any, cloud: Any) -> None:
    body = {
        "model": "cloud", "max_tokens": 100, "temperature": 0.5, "stop": "END",
        "messages": [
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "What is the weather?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
    }
    response = await running.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    call = cloud.calls[-1]
    assert call.path == "/v1/messages"
    assert call.headers["x-api-key"] == "sk-ant-test-secret"
    assert call.headers["anthropic-version"] == "2023-06-01"
    sent = call.body
    assert sent["model"] == "claude-x"
    assert sent["max_tokens"] == 100
    assert sent["stop_sequences"] == ["END"]
    assert sent["system"] == [{"type": "text", "text": "You are a careful assistant.", "cache_control": {"type": "ephemeral"}}]
    assert [message["role"] for message in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][0] == {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"
    assert sent["tools"][0]["input_schema"] == {"type": "object"}
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "Hello from the scripted upstream."
    assert answer["choices"][0]["finish_reason"] == "stop"


async def test_cache_reads_priced_like_openai(running: Any, cloud: Any) -> None:
    # input_tokens 1 + cache_read 27,146, output 351 at $1.40 / $0.26 / $4.40 per million.
    cloud.set_default(Script(prompt_tokens=27147, cached_tokens=27146, completion_tokens=351))
    response = await running.chat(model="cloud", max_tokens=400)
    assert response.headers["x-sluicegate-cost-usd"] == "0.00860376"
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == 27147
    assert usage["prompt_tokens_details"]["cached_tokens"] == 27146


async def test_cache_writes_priced_at_write_rate(running: Any, cloud: Any) -> None:
    # 1,000 uncached + 2,000 written at $1.75 + 500 output: 1400 + 3500 + 2200 micro-USD.
    cloud.set_default(Script(prompt_tokens=3000, cache_write_tokens=2000, completion_tokens=500))
    response = await running.chat(model="cloud", max_tokens=600)
    assert response.headers["x-sluicegate-cost-usd"] == "0.0071"


async def test_stream_translated_to_openai_chunks(running: Any, cloud: Any, postgres_url: str) -> None:
    cloud.set_default(Script(prompt_tokens=120, completion_tokens=5))
    response = await running.chat(model="cloud", max_tokens=50, stream=True, stream_options={"include_usage": True})
    events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the scripted upstream."
    assert chunks[-1]["usage"]["prompt_tokens"] == 120
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == ["stop"]
    row = (await harness.rows(postgres_url))[-1]
    assert (row.prompt_tokens, row.completion_tokens) == (120, 5)
    assert row.charged_nano == 120 * 1400 + 5 * 4400  # nano-USD per token: $1.40 and $4.40 per million


async def test_missing_secret_is_a_config_error(tmp_path: Any, cloud: Any, local: Any) -> None:
    from sluicegate import api
    from sluicegate.gateway import _reload, _runtime

    policy = harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url)
    policy["spec"]["cloud"].update({"provider": "anthropic", "apiKeySecretRef": {"name": "missing", "key": "api-key"}})
    path = harness.write_config(tmp_path / "config.yaml", policy)
    with pytest.raises(api.ConfigError) as caught:
        _reload.load_runtime(path, pool=_runtime.ClientPool(), secrets_dir=tmp_path)
    assert str(tmp_path / harness.NAMESPACE / "missing" / "api-key") in str(caught.value)
    assert "sk-" not in str(caught.value)
