"""Test harness for the gateway: configs, a gateway on uvicorn in a thread, and ledger helpers."""

from __future__ import annotations

import asyncio
import pathlib
import socket
import threading
import time
from typing import Any

import uvicorn
import yaml

from sluicegate import api, ledger
from sluicegate.gateway import GatewaySettings, create_app

NAMESPACE = "team-a"


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def policy_doc(*, local_url: str, cloud_url: str | None, namespace: str = NAMESPACE, cloud_price: dict[str, str] | None = None,
               local: dict[str, Any] | None = None, cloud: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A RoutePolicy document with local model local-A and cloud model cloud-A, the loop guard off."""
    local_route = {"model": "local-A", "endpoint": local_url, "timeoutSeconds": 5, **(local or {})}
    body: dict[str, Any] = {"local": local_route, "loopGuard": {"maxRepeats": 0}, **spec}
    if cloud_url is not None:
        body["cloud"] = {
            "provider": "openai-compatible", "model": "cloud-A", "endpoint": cloud_url, "timeoutSeconds": 10,
            "priceUSDPerMillionTokens": cloud_price or {"input": "10", "cachedInput": "1", "output": "30"},
            **(cloud or {}),
        }
    return {"apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy",
            "metadata": {"name": "default", "namespace": namespace}, "spec": body}


def budget_doc(*, ceiling: str, namespace: str = NAMESPACE, name: str = "monthly", on_exceeded: str = "Reject",
               period: str = "Monthly") -> dict[str, Any]:
    """An LLMBudget document."""
    return {"apiVersion": "sluicegate.io/v1alpha1", "kind": "LLMBudget", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ceilingUSD": ceiling, "period": period, "onExceeded": on_exceeded}}


def write_config(path: pathlib.Path, *documents: dict[str, Any]) -> pathlib.Path:
    """Write documents as multi-document YAML and return the path."""
    path.write_text(yaml.safe_dump_all(list(documents), sort_keys=False))
    return path


# Gateways of this test process, so ledger reads can wait for their settles in flight.
RUNNING: list["GatewayThread"] = []


class GatewayThread:
    """A real gateway on uvicorn, in a thread with its own event loop, on 127.0.0.1."""

    def __init__(self, settings: GatewaySettings, *, ledger_factory: Any = None) -> None:
        self.settings = settings
        config = uvicorn.Config(create_app(settings, ledger_factory=ledger_factory), host="127.0.0.1", port=settings.port, log_level="warning",
                                loop="asyncio", lifespan="on", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"gateway-{settings.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def start(self) -> GatewayThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the gateway thread exited during start-up; see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start within 20 s")
            time.sleep(0.02)
        RUNNING.append(self)
        return self

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def pending_settles(self) -> int:
        """Settles still running in the background: a plain response does not wait for its settle."""
        try:
            return len(self.app_state.tasks)
        except AttributeError:
            return 0

    @property
    def app_state(self) -> Any:
        app = self.server.config.loaded_app
        while not hasattr(app, "state") and hasattr(app, "app"):
            app = app.app
        return app.state.gateway


def settings_for(config: pathlib.Path, ledger_url: str, **changes: Any) -> GatewaySettings:
    """Gateway settings on a free port."""
    return GatewaySettings(config_path=config, ledger_url=ledger_url, port=free_port(), **changes)


async def new_key(ledger_url: str, namespace: str = NAMESPACE) -> str:
    """Create an API key for a namespace directly in the ledger."""
    store = ledger.connect(ledger_url)
    try:
        await store.migrate()
        _, key = await store.create_api_key(namespace)
        return key
    finally:
        await store.close()


async def seed_spend(ledger_url: str, config: api.Config, *, amount_usd: str, namespace: str = NAMESPACE) -> None:
    """Charge ``amount_usd`` to the namespace's current windows, as earlier calls would have."""
    await settled()
    store = ledger.connect(ledger_url)
    try:
        await store.migrate()
        budgets = [ledger.BudgetRef.from_budget(b) for b in config.budgets_for(namespace)]
        await store.sync_budgets(budgets)
        reservation = await store.reserve(namespace=namespace, budgets=budgets, amount_nano=0, ttl_seconds=60)
        attempt = ledger.Attempt(request_id=ledger.RequestId("seed"), attempt_id="seed-1", namespace=namespace,
                                 route="cloud", provider="seed", model="seed", decision=ledger.Decision.FORCED,
                                 outcome=ledger.Outcome.OK, charged_nano=api.parse_usd(amount_usd))
        await store.settle(reservation, attempt)
    finally:
        await store.close()


async def settled(timeout: float = 10.0) -> None:
    """Wait until the gateways of this process have no settle in flight."""
    deadline = time.monotonic() + timeout
    while any(gateway.pending_settles() for gateway in RUNNING):
        if time.monotonic() > deadline:
            raise AssertionError("settles still in flight after the timeout")
        await asyncio.sleep(0.01)


async def no_holds(ledger_url: str, config: api.Config, namespace: str = NAMESPACE, *, timeout: float = 15.0) -> None:
    """Wait until the namespace's budgets hold nothing: for gateways in other processes."""
    budgets = [ledger.BudgetRef.from_budget(b) for b in config.budgets_for(namespace)]
    store = ledger.connect(ledger_url)
    try:
        deadline = time.monotonic() + timeout
        while any(state.reserved_nano for state in await store.budget_states(budgets)):
            if time.monotonic() > deadline:
                raise AssertionError(f"holds of namespace {namespace!r} still open after {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        await store.close()


async def ledger_state(ledger_url: str, config: api.Config, namespace: str = NAMESPACE) -> list[ledger.BudgetState]:
    """Read the namespace's budgets from the ledger, once settles in flight have finished."""
    await settled()
    store = ledger.connect(ledger_url)
    try:
        return await store.budget_states([ledger.BudgetRef.from_budget(b) for b in config.budgets_for(namespace)])
    finally:
        await store.close()


async def rows(ledger_url: str, namespace: str = NAMESPACE) -> list[ledger.Attempt]:
    """Every attempt row of the namespace, oldest first, once settles in flight have finished."""
    await settled()
    store = ledger.connect(ledger_url)
    try:
        found = await store.attempts(namespace=namespace, limit=100_000)
    finally:
        await store.close()
    return [row.attempt for row in reversed(found)]


def wait_until(predicate: Any, *, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it is true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


async def await_until(predicate: Any, *, timeout: float = 10.0) -> None:
    """Async version of wait_until, for conditions that need the event loop."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
