"""The main job end to end on real input: public prompts through a gateway process.

The local route is a real model (Gemma 3 270M on llama.cpp's server), the cloud route is
the scripted upstream, the ledger is PostgreSQL, the gateway runs as a real
``sluicegate gateway`` process, and the client is the official openai SDK. The prompts
are GSM8K and MMLU questions from the package's data samples (licence notices beside
them in sluicegate/data). Covered: prompts the classifier keeps local are answered by the
real model and complex ones by cloud, every call is in the ledger at the right cost, a
tight Reject budget stops a run at its ceiling, and a local timeout escalates once.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
import yaml

from sluicegate import api, ledger, localmodel, routing
from sluicegate.routing import _pricing
from sluicegate.scripted import Script, ScriptedUpstream
from tests.gateway import harness

CLOUD_PRICE = {"input": "2.00", "output": "8.00"}
CLOUD_USAGE = {"prompt_tokens": 150, "completion_tokens": 20}


def sample_prompts() -> list[str]:
    data = importlib.resources.files("sluicegate") / "data"
    prompts = []
    for name in ("routellm_gsm8k_sample.jsonl", "routellm_mmlu_sample.jsonl"):
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            prompts.append(json.loads(line)["prompt"])
    return prompts


def policy(namespace: str, *, local: localmodel.LocalModelServer, cloud_url: str, local_timeout: float = 120) -> dict[str, Any]:
    return {"apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy", "metadata": {"name": "default", "namespace": namespace},
            "spec": {"local": {"model": local.model, "endpoint": local.base_url, "timeoutSeconds": local_timeout,
                               "maxOutputTokens": 64},
                     "cloud": {"provider": "openai-compatible", "model": "frontier", "endpoint": cloud_url,
                               "priceUSDPerMillionTokens": CLOUD_PRICE},
                     "defaultMaxTokens": 24, "loopGuard": {"maxRepeats": 0}}}


@pytest.fixture(scope="module")
def cloud() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(default=Script(**CLOUD_USAGE)) as upstream:
        yield upstream


@pytest.fixture
async def gateway(tmp_path: pathlib.Path, postgres_url: str, local_model: localmodel.LocalModelServer,
                  cloud: ScriptedUpstream) -> AsyncIterator[dict[str, Any]]:
    """A gateway process with three namespaces: ample (team-a), tight (team-b), impatient (team-c)."""
    cloud.reset()
    documents = [
        harness.budget_doc(ceiling="5.00", namespace="team-a", on_exceeded="Downgrade"),
        policy("team-a", local=local_model, cloud_url=cloud.base_url),
        harness.budget_doc(ceiling="0.0025", namespace="team-b", on_exceeded="Reject"),
        policy("team-b", local=local_model, cloud_url=cloud.base_url),
        harness.budget_doc(ceiling="5.00", namespace="team-c"),
        policy("team-c", local=local_model, cloud_url=cloud.base_url, local_timeout=0.01),
    ]
    config_path = tmp_path / "budgets.yaml"
    config_path.write_text(yaml.safe_dump_all(documents))
    keys = {namespace: await harness.new_key(postgres_url, namespace) for namespace in ("team-a", "team-b", "team-c")}
    port = harness.free_port()
    process = subprocess.Popen([sys.executable, "-m", "sluicegate.cli", "gateway", "--config", str(config_path),
                                "--port", str(port), "--log-level", "warning"],
                               env={**os.environ, "SLUICEGATE_LEDGER_URL": postgres_url, "PYTHONPATH": os.getcwd()})
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{base_url}/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    try:
        yield {"url": base_url, "keys": keys, "config": api.load_path(config_path), "ledger": postgres_url}
    finally:
        process.terminate()
        process.wait(timeout=30)


def sdk(gateway: dict[str, Any], namespace: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway['url']}/v1", api_key=gateway["keys"][namespace], max_retries=0, timeout=120)


async def ask(client: openai.AsyncOpenAI, prompt: str, *, stream: bool, model: str = "auto") -> tuple[str, dict[str, str]]:
    """Send one prompt; return the answer text and the response headers."""
    messages = [{"role": "user", "content": prompt}]
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(model=model, messages=messages)  # type: ignore[arg-type]
        return raw.parse().choices[0].message.content or "", dict(raw.headers)
    async with client.chat.completions.with_streaming_response.create(
            model=model, messages=messages, stream=True) as response:  # type: ignore[arg-type]
        text = ""
        async for chunk in await response.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return text, dict(response.headers)


async def test_public_prompts_routed_and_charged(gateway: dict[str, Any], local_model: localmodel.LocalModelServer,
                                                 cloud: ScriptedUpstream) -> None:
    settings = gateway["config"].policy_for("team-a").spec.classifier
    by_tier: dict[routing.Tier, list[str]] = {routing.Tier.SIMPLE: [], routing.Tier.COMPLEX: []}
    for prompt in sample_prompts():
        tier = routing.classify(messages=[{"role": "user", "content": prompt}], settings=settings).tier
        if len(by_tier[tier]) < 4:
            by_tier[tier].append(prompt)
    assert len(by_tier[routing.Tier.COMPLEX]) == 4, "the samples should hold prompts the classifier sends to cloud"
    local_before = local_model.request_count()

    client = sdk(gateway, "team-a")
    answers = []
    for index, tier in enumerate((routing.Tier.SIMPLE, routing.Tier.COMPLEX)):
        for number, prompt in enumerate(by_tier[tier]):
            answers.append((tier, *await ask(client, prompt, stream=(number % 2 == 1))))
    await client.close()

    for tier, text, headers in answers:
        assert headers["x-sluicegate-route"] == ("local" if tier is routing.Tier.SIMPLE else "cloud")
        assert headers["x-sluicegate-decision"] == "classified"
        assert text.strip() != ""
    assert local_model.request_count() - local_before == 4
    assert cloud.call_count == 4

    await harness.no_holds(gateway["ledger"], gateway["config"], "team-a")
    prices = _pricing.PriceTable.from_price(api.Price(**CLOUD_PRICE))
    cloud_cost = _pricing.cost_nano(prices, _pricing.Usage(**CLOUD_USAGE))
    rows = await harness.rows(gateway["ledger"], "team-a")
    assert len(rows) == 8
    assert all(row.outcome is ledger.Outcome.OK for row in rows)
    assert sorted(row.charged_nano for row in rows) == [0] * 4 + [cloud_cost] * 4
    for row in rows:
        if row.route == "local":
            assert row.model == local_model.model
            assert row.prompt_tokens > 0
            assert row.completion_tokens > 0
    states = await harness.ledger_state(gateway["ledger"], gateway["config"], "team-a")
    assert states[0].spent_nano == 4 * cloud_cost
    assert states[0].reserved_nano == 0


async def test_tight_reject_budget_stops_run(gateway: dict[str, Any], cloud: ScriptedUpstream) -> None:
    client = sdk(gateway, "team-b")
    statuses = []
    for prompt in sample_prompts()[:12]:
        try:
            await ask(client, prompt, stream=False, model="cloud")
            statuses.append(200)
        except openai.RateLimitError as error:
            assert "budget exhausted" in str(error)
            assert "team-b" in str(error)
            statuses.append(429)
    await client.close()
    assert 200 in statuses
    assert statuses[-1] == 429
    assert cloud.call_count == statuses.count(200)
    await harness.no_holds(gateway["ledger"], gateway["config"], "team-b")
    states = await harness.ledger_state(gateway["ledger"], gateway["config"], "team-b")
    assert states[0].spent_nano <= api.parse_usd("0.0025")
    assert states[0].reserved_nano == 0


async def test_local_timeout_escalates_once(gateway: dict[str, Any], cloud: ScriptedUpstream) -> None:
    client = sdk(gateway, "team-c")
    text, headers = await ask(client, "What is 2 + 2?", stream=False, model="auto")
    streamed, stream_headers = await ask(client, "Name a colour.", stream=True, model="auto")
    await client.close()
    assert headers["x-sluicegate-decision"] == stream_headers["x-sluicegate-decision"] == "escalated"
    assert headers["x-sluicegate-route"] == "cloud"
    assert text == streamed == "Hello from the scripted upstream."
    assert cloud.call_count == 2
    await harness.no_holds(gateway["ledger"], gateway["config"], "team-c")
    rows = await harness.rows(gateway["ledger"], "team-c")
    assert [(row.route, row.outcome) for row in rows] == [
        ("local", ledger.Outcome.UPSTREAM_ERROR), ("cloud", ledger.Outcome.OK)] * 2
    assert rows[1].escalated_from == rows[0].attempt_id
    assert rows[0].charged_nano == 0
    assert rows[1].charged_nano > 0
