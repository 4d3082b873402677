"""Measure the latency the gateway adds and its throughput, beside LiteLLM's proxy.

Every server runs as its own process on 127.0.0.1: a scripted OpenAI-compatible upstream
(answers at once), the sluicegate gateway with its ledger on PostgreSQL and on SQLite, and,
when ``--litellm-python`` names an interpreter with ``litellm[proxy]==1.108.7``, LiteLLM's
proxy with one worker, a master key and no database (its budget features need a database
layer whose engine downloads a binary at start-up, so they cannot run offline). The same
load runs against the upstream directly and through each proxy, at each concurrency.

Usage:
    python benchmarks/gateway_bench.py --requests 3000 --concurrency 1,64 \
        [--litellm-python .cache/litellm-venv/bin/python] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import asyncpg
import yaml

from sluicegate import ledger

BODY = {"model": "cloud", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello in five words."}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def process(args: list[str], *, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_ready(url: str, *, headers: dict[str, str] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url, headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


async def load(url: str, *, body: dict[str, Any], headers: list[dict[str, str]], requests: int,
               concurrency: int) -> dict[str, float]:
    """Send ``requests`` POSTs with ``concurrency`` in flight; return latency percentiles (ms) and req/s.

    Requests take the entries of ``headers`` in turn, one API key per namespace.
    """
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    errors = 0
    payload = json.dumps(body).encode()
    all_headers = [{"Content-Type": "application/json", **entry} for entry in headers]
    sent = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> None:
            nonlocal errors, sent
            sent += 1
            started = time.perf_counter()
            async with session.post(url, data=payload, headers=all_headers[sent % len(all_headers)]) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        # Warm up connections and caches, then measure.
        await asyncio.gather(*(worker(5) for _ in range(concurrency)))
        latencies.clear()
        errors = 0
        share, extra = divmod(requests, concurrency)
        started = time.perf_counter()
        await asyncio.gather(*(worker(share + (1 if i < extra else 0)) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "rps": len(latencies) / elapsed,
        "errors": errors,
    }


async def prepare_sluicegate(config_path: pathlib.Path, *, ledger_url: str, upstream: str, namespaces: int) -> list[str]:
    """Write a config with ``namespaces`` budgeted namespaces and return one API key for each."""
    config: list[dict[str, Any]] = []
    names = [f"bench-{index}" for index in range(namespaces)]
    for name in names:
        config.append({"apiVersion": "sluicegate.io/v1alpha1", "kind": "LLMBudget", "metadata": {"name": "bench", "namespace": name},
                       "spec": {"ceilingUSD": "1000000", "period": "Monthly"}})
        config.append({"apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy", "metadata": {"name": "default", "namespace": name},
                       "spec": {"local": {"model": "local-model", "endpoint": upstream},
                                "cloud": {"provider": "openai-compatible", "model": "cloud-model", "endpoint": upstream,
                                          "priceUSDPerMillionTokens": {"input": "2", "output": "8"}},
                                "loopGuard": {"maxRepeats": 0}}})
    config_path.write_text(yaml.safe_dump_all(config))
    store = ledger.connect(ledger_url)
    try:
        await store.migrate()
        return [(await store.create_api_key(name))[1] for name in names]
    finally:
        await store.close()


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        with process([sys.executable, "-m", "sluicegate.scripted", "--port", str(upstream_port), "--completion-tokens", "8"]):
            await wait_ready(f"{upstream}/models")
            targets: list[tuple[str, str, list[dict[str, str]], dict[str, Any], contextlib.AbstractContextManager[Any] | None]] = [
                ("upstream direct", f"{upstream}/chat/completions", [{}], {**BODY, "model": "scripted"}, None)]

            database = f"sg_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(args.postgres)
            await admin.execute(f'CREATE DATABASE "{database}"')
            await admin.close()
            postgres_url = args.postgres.rsplit("/", 1)[0] + f"/{database}"
            variants = [
                ("sluicegate, PostgreSQL ledger, 1 namespace", postgres_url, 1),
                ("sluicegate, PostgreSQL ledger, 100 namespaces", postgres_url, 100),
                ("sluicegate, PostgreSQL ledger (synchronous_commit=off), 1 namespace",
                 postgres_url + "?synchronous_commit=off", 1),
                ("sluicegate, SQLite ledger, 1 namespace", f"sqlite:///{workdir}/ledger.db", 1),
            ]
            for index, (name, ledger_url, namespaces) in enumerate(variants):
                config_path = workdir / f"config-{index}.yaml"
                keys = await prepare_sluicegate(config_path, ledger_url=ledger_url, upstream=upstream, namespaces=namespaces)
                port = free_port()
                command = [sys.executable, "-m", "sluicegate.cli", "gateway", "--config", str(config_path),
                           "--ledger", ledger_url, "--port", str(port), "--log-level", "warning"]
                targets.append((name, f"http://127.0.0.1:{port}/v1/chat/completions",
                                [{"Authorization": f"Bearer {key}"} for key in keys], BODY, process(command)))
            if args.litellm_python:
                port = free_port()
                litellm_config = {"model_list": [{"model_name": "cloud", "litellm_params": {
                    "model": "openai/scripted", "api_base": upstream, "api_key": "unused"}}],
                    "general_settings": {"master_key": "sk-bench"}}
                (workdir / "litellm.yaml").write_text(yaml.safe_dump(litellm_config))
                litellm_bin = str(pathlib.Path(args.litellm_python).parent / "litellm")
                command = [litellm_bin, "--config", str(workdir / "litellm.yaml"), "--port", str(port), "--num_workers", "1"]
                targets.append(("LiteLLM 1.108.7 proxy, no database", f"http://127.0.0.1:{port}/v1/chat/completions",
                                [{"Authorization": "Bearer sk-bench"}], BODY,
                                process(command, env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"})))

            if args.only:
                targets = [target for target in targets if target[0] == "upstream direct" or args.only in target[0]]
            for name, url, headers, body, manager in targets:
                with manager if manager is not None else contextlib.nullcontext():
                    base = url.rsplit("/v1/", 1)[0]
                    ready = f"{base}/v1/models" if manager is None else (
                        f"{base}/readyz" if "sluicegate" in name else f"{base}/health/liveliness")
                    await wait_ready(ready)
                    for concurrency in concurrencies:
                        requests = args.requests if concurrency > 1 else max(500, args.requests // 4)
                        measured = await load(url, body=body, headers=headers, requests=requests, concurrency=concurrency)
                        results.append({"target": name, "concurrency": concurrency, "requests": requests, **measured})
                        print(json.dumps(results[-1]), flush=True)
            admin = await asyncpg.connect(args.postgres)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
    return results


def report(results: list[dict[str, Any]]) -> str:
    """Render a markdown table with the latency each proxy adds over the upstream."""
    direct = {r["concurrency"]: r for r in results if r["target"] == "upstream direct"}
    lines = ["| target | clients | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        base = direct[r["concurrency"]]
        lines.append(f"| {r['target']} | {r['concurrency']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['p50_ms'] - base['p50_ms']:.2f} | {r['p99_ms'] - base['p99_ms']:.2f} | {r['rps']:.0f} | {r['errors']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measurement at concurrency above 1")
    parser.add_argument("--concurrency", default="1,64", help="comma-separated numbers of clients in flight")
    parser.add_argument("--only", help="measure only targets whose name contains this text (and the upstream)")
    parser.add_argument("--litellm-python", help="python of a venv with litellm[proxy]==1.108.7, to compare against")
    parser.add_argument("--postgres", default=os.environ.get("SLUICEGATE_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server URL; a throwaway database is created there")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(report(results))


if __name__ == "__main__":
    main()
