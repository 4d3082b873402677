"""Fixtures of the gateway tests: scripted upstreams and a factory of running gateways."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from sluicegate import api
from sluicegate.scripted import Script, ScriptedUpstream
from tests.gateway import harness


@pytest.fixture
def cloud() -> Iterator[ScriptedUpstream]:
    """The scripted cloud upstream, cloud-A."""
    with ScriptedUpstream(default=Script(prompt_tokens=100, completion_tokens=50)) as upstream:
        yield upstream


@pytest.fixture
def local() -> Iterator[ScriptedUpstream]:
    """The scripted local upstream, local-A, which never reports usage in streams unless asked."""
    with ScriptedUpstream(default=Script(prompt_tokens=20, completion_tokens=10)) as upstream:
        yield upstream


@dataclasses.dataclass
class Running:
    """A running gateway with its config, ledger URL and an API key of team-a."""

    gateway: harness.GatewayThread
    config_path: pathlib.Path
    ledger_url: str
    key: str
    client: httpx.AsyncClient

    @property
    def config(self) -> api.Config:
        return api.load_path(self.config_path)

    async def chat(self, *, model: str = "cloud-A", content: str = "Hello", stream: bool = False,
                   headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        payload = {"model": model, "messages": [{"role": "user", "content": content}], **body}
        if stream:
            payload["stream"] = True
        return await self.client.post("/v1/chat/completions", json=payload, headers=headers or {})


@pytest.fixture
async def start_gateway(tmp_path: pathlib.Path, postgres_url: str) -> AsyncIterator[Any]:
    """Return a function that writes a config, starts a gateway on PostgreSQL and returns a Running."""
    started: list[Running] = []

    async def start(*documents: dict[str, Any], ledger_url: str | None = None, ledger_factory: Any = None,
                    **settings: Any) -> Running:
        config_path = harness.write_config(tmp_path / f"config-{len(started)}.yaml", *documents)
        url = ledger_url or postgres_url
        gateway = harness.GatewayThread(harness.settings_for(config_path, url, **settings),
                                        ledger_factory=ledger_factory).start()
        key = await harness.new_key(url)
        client = httpx.AsyncClient(base_url=gateway.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        running = Running(gateway=gateway, config_path=config_path, ledger_url=url, key=key, client=client)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.client.aclose()
        running.gateway.stop()
