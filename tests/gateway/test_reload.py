"""Config reload: a changed file is swapped in atomically under load, a broken one is ignored."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gateway import harness


async def test_reload_under_load_drops_no_request(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="50.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url),
                                  reload_interval_seconds=0.1)
    stop = asyncio.Event()

    async def load() -> list[int]:
        statuses = []
        while not stop.is_set() and len(statuses) < 2000:
            statuses.append((await running.chat(model="cloud", max_tokens=20)).status_code)
        return statuses

    workers = [asyncio.create_task(load()) for _ in range(8)]
    for ceiling in ("60.00", "70.00", "80.00"):
        await asyncio.sleep(0.4)
        harness.write_config(running.config_path, harness.budget_doc(ceiling=ceiling),
                             harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, defaultMaxTokens=512))
    await asyncio.sleep(0.5)
    stop.set()
    statuses = [status for worker in workers for status in await worker]
    assert len(statuses) > 50
    assert set(statuses) == {200}
    state = running.gateway.app_state
    assert state.runtime.config.budgets[0].spec.ceiling_usd == "80.00"
    assert state.runtime.namespaces[harness.NAMESPACE].policy.default_max_tokens == 512


async def test_broken_config_keeps_running_one(start_gateway: Any, cloud: Any, local: Any) -> None:
    running = await start_gateway(harness.budget_doc(ceiling="5.00"),
                                  harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url),
                                  reload_interval_seconds=0.1)
    running.config_path.write_text("apiVersion: sluicegate.io/v1alpha1\nkind: LLMBudget\nmetadata: {name: x}\n spec: [\n")
    await asyncio.sleep(0.5)
    assert (await running.chat(model="cloud", max_tokens=20)).status_code == 200
    metrics = (await running.client.get("/metrics")).text
    assert 'sluicegate_config_reloads_total{result="error"} 1.0' in metrics
    assert running.gateway.app_state.runtime.config.budgets[0].spec.ceiling_usd == "5.00"
