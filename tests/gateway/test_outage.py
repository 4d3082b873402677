"""The ledger going away and coming back: the gateway fails closed and recovers without a restart.

Covered: 503 ledger_unavailable on every route, and no upstream call, while the
ledger is unreachable, and recovery once it is reachable again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gateway import harness
from tests.gateway.tcpproxy import TcpProxy


async def test_unreachable_ledger_fails_closed_then_recovers(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    proxy = TcpProxy(target_port=5432, port=harness.free_port())
    proxy.restore()
    try:
        proxied_url = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        running = await start_gateway(harness.budget_doc(ceiling="1.00"),
                                      harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url),
                                      ledger_url=proxied_url)
        assert (await running.chat()).status_code == 200
        calls_before = cloud.call_count + local.call_count

        proxy.cut()
        responses = [await running.chat(model=model) for model in ["cloud-A"] * 8 + ["local-A", "auto"]]
        for response in responses:
            assert response.status_code == 503
            body = response.json()["error"]
            assert body["code"] == "ledger_unavailable"
            assert "budget enforcement is unavailable" in body["message"]
        assert cloud.call_count + local.call_count == calls_before
        ready = await running.client.get("/readyz")
        assert ready.status_code == 503

        proxy.restore()
        recovered = None
        for _ in range(50):
            recovered = await running.chat()
            if recovered.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert recovered is not None
        assert recovered.status_code == 200
        assert (await running.client.get("/readyz")).status_code == 200
    finally:
        proxy.close()
