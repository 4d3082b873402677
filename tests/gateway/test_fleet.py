"""Four gateway processes sharing one PostgreSQL ledger under 200 concurrent requests.

Spent never passes the ceiling (sampled throughout), the rows of attempts that reached an
upstream match the upstream's own call count, and the rows sum to the window's spent.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import threading
from typing import Any

import httpx

from sluicegate import api, ledger
from sluicegate.scripted import flat
from tests.gateway import harness

REPLICAS = 4
REQUESTS = 200


async def test_four_replicas_share_one_ceiling(tmp_path: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    # $0.01 per call (1,000 output tokens at $10 per million) against a $1.00 ceiling.
    cloud.set_default(flat(completion_tokens=1000, delay_seconds=0.3))
    config_path = harness.write_config(
        tmp_path / "config.yaml", harness.budget_doc(ceiling="1.00"),
        harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url, cloud_price={"input": "0", "output": "10"}))
    config = api.load_path(config_path)
    key = await harness.new_key(postgres_url)
    ports = [harness.free_port() for _ in range(REPLICAS)]
    processes = [
        subprocess.Popen([sys.executable, "-m", "sluicegate.cli", "gateway", "--config", str(config_path),
                          "--ledger", postgres_url, "--port", str(port), "--log-level", "warning"],
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
        for port in ports
    ]
    try:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for port in ports:
                for _ in range(600):
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)

            budgets = [ledger.BudgetRef.from_budget(b) for b in config.budgets]
            samples: list[int] = []
            done = threading.Event()

            async def sample() -> None:
                # A thread and a loop of its own, so sampling goes on while this loop sends requests.
                sampler_store = ledger.connect(postgres_url)
                try:
                    while not done.is_set():
                        state = (await sampler_store.budget_states(budgets))[0]
                        samples.append(state.spent_nano + state.reserved_nano)
                        await asyncio.sleep(0.01)
                finally:
                    await sampler_store.close()

            async def send(index: int) -> int:
                model = "local-A" if index % 10 == 0 else "cloud-A"
                response = await client.post(f"http://127.0.0.1:{ports[index % REPLICAS]}/v1/chat/completions", json={
                    "model": model, "max_tokens": 1000, "messages": [{"role": "user", "content": f"request {index}"}]})
                return response.status_code

            sampler = threading.Thread(target=asyncio.run, args=(sample(),), name="ledger-sampler")
            sampler.start()
            statuses = await asyncio.gather(*(send(i) for i in range(REQUESTS)))
            done.set()
            sampler.join(timeout=30)
            await harness.no_holds(postgres_url, config)
            store = ledger.connect(postgres_url)
            final = (await store.budget_states(budgets))[0]
            rows = [row.attempt for row in await store.attempts(namespace=harness.NAMESPACE, limit=10_000)]
            await store.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)

    ceiling = api.parse_usd("1.00")
    assert set(statuses) <= {200, 429}, collections.Counter(statuses)
    assert statuses.count(200) == 100 + REQUESTS // 10
    assert statuses.count(429) == REQUESTS - statuses.count(200)
    assert len(samples) > 5
    assert max(samples) <= ceiling
    assert final.spent_nano == ceiling
    assert final.reserved_nano == 0
    reached = [row for row in rows if row.outcome is ledger.Outcome.OK]
    assert len([row for row in reached if row.route == "cloud"]) == cloud.call_count == 100
    assert len([row for row in reached if row.route == "local"]) == local.call_count == REQUESTS // 10
    assert sum(row.charged_nano for row in rows) == final.spent_nano
