"""Gateway settings: one typed object built once at start-up from flags and the environment.

Every option can come from an environment variable, so that ledger DSNs with passwords
stay out of process lists. This module is the only place that reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping

DEFAULT_LEDGER_URL = "sqlite:///./sluicegate-ledger.db"


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    """Settings of one gateway process."""

    config_path: pathlib.Path
    """YAML file or folder of LLMBudget and RoutePolicy documents."""
    ledger_url: str = DEFAULT_LEDGER_URL
    """postgresql://... for a fleet, or sqlite:///path for a single gateway."""
    secrets_dir: pathlib.Path | None = None
    """Folder laid out as <namespace>/<secret name>/<key>, like mounted Kubernetes Secrets."""
    host: str = "127.0.0.1"
    """Listen address; 127.0.0.1 so a gateway started by hand is not exposed by accident."""
    port: int = 8080
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted, in bytes; 8 MiB fits long agent contexts with images."""
    reload_interval_seconds: float = 1.0
    """How often the config file and secrets are checked for changes."""
    reservation_grace_seconds: float = 60.0
    """Added to a route's timeout to make a reservation's TTL, so a live call never loses its hold."""
    shutdown_drain_seconds: float = 30.0
    """How long shutdown waits for streams to settle in the ledger."""
    workers: int = 1
    """uvicorn worker processes sharing the port; each keeps its own cache and loop guard."""


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value else None


def from_environment(
    *,
    config_path: str | None,
    ledger_url: str | None,
    secrets_dir: str | None,
    host: str | None,
    port: int | None,
    workers: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> GatewaySettings:
    """Build settings from flags, falling back to SLUICEGATE_* variables, then defaults.

    Raises ValueError naming the option when the config path is missing or a number is invalid.
    """
    env = os.environ if environ is None else environ
    config = config_path or _env(env, "SLUICEGATE_CONFIG")
    if not config:
        raise ValueError("no config given: pass --config PATH (or set SLUICEGATE_CONFIG) with your LLMBudget and RoutePolicy YAML")
    secrets = secrets_dir or _env(env, "SLUICEGATE_SECRETS_DIR")
    return GatewaySettings(
        config_path=pathlib.Path(config),
        ledger_url=ledger_url or _env(env, "SLUICEGATE_LEDGER_URL") or DEFAULT_LEDGER_URL,
        secrets_dir=pathlib.Path(secrets) if secrets else None,
        host=host or _env(env, "SLUICEGATE_HOST") or "127.0.0.1",
        port=port if port is not None else _int(env, "SLUICEGATE_PORT", 8080),
        max_body_bytes=_int(env, "SLUICEGATE_MAX_BODY_BYTES", 8 * 1024 * 1024),
        reload_interval_seconds=float(_int(env, "SLUICEGATE_RELOAD_INTERVAL_MS", 1000)) / 1000,
        workers=workers if workers is not None else _int(env, "SLUICEGATE_WORKERS", 1),
    )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _env(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None
    if number < 0:
        raise ValueError(f"{name}={value!r} must not be negative")
    return number
