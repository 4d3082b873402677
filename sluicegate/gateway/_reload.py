"""Config reload: watch the config and the secrets it references, swap a new runtime in atomically.

The operator updates the snapshot ConfigMap, and the kubelet swaps the mounted file; a
user edits their YAML by hand. Either way the file's content changes, so the watcher
compares content hashes (cheap for files of this size) rather than trusting mtimes,
which a ConfigMap's symlink swap does not always change. A config that fails to load
leaves the running one in place, and the error is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pathlib

from sluicegate import api, ledger
from sluicegate.gateway import _runtime, _state

logger = logging.getLogger(__name__)


def fingerprint(config_path: pathlib.Path, secrets_dir: pathlib.Path | None) -> str:
    """Hash the content of every config file and of every file under the secrets folder."""
    digest = hashlib.sha256()
    files = sorted(config_path.iterdir()) if config_path.is_dir() else [config_path]
    if secrets_dir is not None and secrets_dir.is_dir():
        files.extend(sorted(path for path in secrets_dir.rglob("*") if path.is_file()))
    for path in files:
        try:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            digest.update(str(path).encode() + b"\0missing\0")
    return digest.hexdigest()


def load_runtime(config_path: pathlib.Path, *, pool: _runtime.ClientPool, secrets_dir: pathlib.Path | None) -> _runtime.Runtime:
    """Load and resolve a config; raise ConfigError naming the problem."""
    config = api.load_path(config_path)
    return _runtime.build_runtime(config, pool=pool, secrets_dir=secrets_dir)


async def sync_budgets(ledger_: ledger.Ledger, runtime: _runtime.Runtime) -> None:
    """Publish the config's budget definitions to the ledger (for reports)."""
    await ledger_.sync_budgets([budget for budgets in runtime.budgets.values() for budget in budgets])


async def watch(state: _state.GatewayState, *, stop: asyncio.Event) -> None:
    """Reload whenever the config or a secret changes, until ``stop`` is set."""
    settings = state.settings
    seen = await asyncio.to_thread(fingerprint, settings.config_path, settings.secrets_dir)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.reload_interval_seconds)
            return
        except TimeoutError:
            pass
        current = await asyncio.to_thread(fingerprint, settings.config_path, settings.secrets_dir)
        if current == seen:
            continue
        seen = current
        await reload_once(state)


async def reload_once(state: _state.GatewayState) -> bool:
    """Load the config again and swap it in; keep the running one on any error."""
    settings = state.settings
    try:
        runtime = await asyncio.to_thread(load_runtime, settings.config_path, pool=state.pool, secrets_dir=settings.secrets_dir)
    except api.ConfigError as error:
        state.metrics.config_reloads.labels("error").inc()
        logger.error("config reload failed, keeping the running config: %s", error)
        return False
    try:
        await sync_budgets(state.ledger, runtime)
    except ledger.LedgerError as error:
        logger.warning("config reloaded, but its budgets could not be published to the ledger yet: %s", error)
    state.runtime = runtime
    state.metrics.config_reloads.labels("ok").inc()
    logger.info("config reloaded: %d namespaces, %d budgets", len(runtime.namespaces), len(runtime.config.budgets))
    return True
