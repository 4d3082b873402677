"""The gateway's runtime view of one config: per-namespace routes, prices and budgets.

A Runtime is built from a loaded Config and never changes; a config reload builds a new
one and swaps it in with a single assignment, so a request in flight keeps the runtime it
started with. Upstream clients live in a ClientPool that outlives runtimes, so a reload
does not drop pooled connections.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pathlib
from types import ModuleType

import httpx

from sluicegate import api, ledger
from sluicegate.gateway import _anthropic, _openai, _upstreams
from sluicegate.routing import _pricing

logger = logging.getLogger(__name__)

LOCAL = "local"
CLOUD = "cloud"
ROUTE_ALIASES = ("auto", LOCAL, CLOUD)


@dataclasses.dataclass(frozen=True)
class Route:
    """One route of a namespace: where calls go, what they cost and the largest output."""

    name: str  # "local" or "cloud"
    target: _upstreams.Target
    prices: _pricing.PriceTable
    max_output_tokens: int
    transport: httpx.AsyncBaseTransport = dataclasses.field(repr=False)
    adapter: ModuleType = dataclasses.field(repr=False)

    @property
    def provider_name(self) -> str:
        """Provider as written in ledger rows: openai, anthropic, openai-compatible or local."""
        return self.target.provider.value if self.target.provider else "local"

    @property
    def is_anthropic(self) -> bool:
        """True when calls use the Messages API."""
        return self.adapter is _anthropic


@dataclasses.dataclass(frozen=True)
class NamespaceRuntime:
    """Everything the request path needs about one namespace."""

    namespace: str
    policy: api.RoutePolicySpec
    local: Route
    cloud: Route | None
    budgets: tuple[ledger.BudgetRef, ...]

    def route(self, name: str) -> Route | None:
        """Return the route called ``name`` ("local" or "cloud"), or None."""
        return self.local if name == LOCAL else self.cloud

    @property
    def model_names(self) -> tuple[str, ...]:
        """Names a request may use: the aliases and each route's model."""
        names = [*ROUTE_ALIASES, self.local.target.model]
        if self.cloud is not None:
            names.append(self.cloud.target.model)
        return tuple(names)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """An immutable snapshot of the whole config."""

    config: api.Config
    namespaces: dict[str, NamespaceRuntime]
    budgets: dict[str, tuple[ledger.BudgetRef, ...]]


class ClientPool:
    """Pooled httpx transports, one per upstream base URL and key, shared across reloads.

    NOTE: a transport whose upstream left the config stays open until shutdown; configs
    change rarely, so the few idle pools this keeps are cheaper than tracking their users.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transports: dict[str, httpx.AsyncBaseTransport] = {}
        self._transport = transport  # for tests

    def transport_for(self, target: _upstreams.Target) -> httpx.AsyncBaseTransport:
        """Return the transport of this target, creating it on first use."""
        if self._transport is not None:
            return self._transport
        key_hash = hashlib.sha256((target.api_key or "").encode()).hexdigest()[:16]
        pool_key = f"{target.base_url}|{key_hash}"
        transport = self._transports.get(pool_key)
        if transport is None:
            transport = _upstreams.build_transport()
            self._transports[pool_key] = transport
        return transport

    async def aclose(self) -> None:
        """Close every transport."""
        for transport in self._transports.values():
            await transport.aclose()
        self._transports.clear()


def read_secret(secrets_dir: pathlib.Path | None, *, namespace: str, ref: api.SecretKeyRef) -> str:
    """Read ``<secrets_dir>/<namespace>/<secret name>/<key>``, the layout of mounted Kubernetes Secrets."""
    if secrets_dir is None:
        raise api.ConfigError(
            f"RoutePolicy in namespace {namespace!r} references Secret {ref.name!r} key {ref.key!r}, but no secrets folder is set: "
            f"pass --secrets-dir DIR and put the key in DIR/{namespace}/{ref.name}/{ref.key}"
        )
    path = secrets_dir / namespace / ref.name / ref.key
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise api.ConfigError(
            f"cannot read the API key of namespace {namespace!r} at {path} ({error.strerror}): "
            f"write the key of Secret {ref.name!r} there"
        ) from None
    if not value:
        raise api.ConfigError(f"the API key file {path} is empty: write the provider API key into it")
    return value


def build_runtime(config: api.Config, *, pool: ClientPool, secrets_dir: pathlib.Path | None) -> Runtime:
    """Resolve every namespace's routes; raise ConfigError for a route that cannot be used."""
    budgets: dict[str, tuple[ledger.BudgetRef, ...]] = {}
    for budget in config.budgets:
        namespace = budget.metadata.namespace or ""
        budgets[namespace] = (*budgets.get(namespace, ()), ledger.BudgetRef.from_budget(budget))

    namespaces = {}
    for policy in config.policies:
        namespace = policy.metadata.namespace or ""
        spec = policy.spec
        local = _local_route(spec.local, namespace=namespace, pool=pool)
        cloud = _cloud_route(spec.cloud, namespace=namespace, pool=pool, secrets_dir=secrets_dir) if spec.cloud else None
        namespaces[namespace] = NamespaceRuntime(
            namespace=namespace, policy=spec, local=local, cloud=cloud, budgets=budgets.get(namespace, ())
        )
    return Runtime(config=config, namespaces=namespaces, budgets=budgets)


def _local_route(local: api.LocalRoute, *, namespace: str, pool: ClientPool) -> Route:
    if not local.endpoint:
        raise api.ConfigError(
            f"RoutePolicy of namespace {namespace!r}: spec.local.endpoint is empty. Standalone, no operator runs the model: "
            "set it to an OpenAI-compatible base URL such as http://127.0.0.1:11434/v1 (Ollama)"
        )
    target = _upstreams.Target(provider=None, base_url=local.endpoint, model=local.model, api_key=None,
                               timeout_seconds=local.timeout_seconds)
    return Route(name=LOCAL, target=target, prices=_prices(local.price_usd_per_million_tokens, namespace, LOCAL),
                 max_output_tokens=local.max_output_tokens, transport=pool.transport_for(target), adapter=_openai)


def _cloud_route(cloud: api.CloudRoute, *, namespace: str, pool: ClientPool, secrets_dir: pathlib.Path | None) -> Route:
    api_key = None
    if cloud.api_key_secret_ref is not None:
        api_key = read_secret(secrets_dir, namespace=namespace, ref=cloud.api_key_secret_ref)
    target = _upstreams.Target(provider=cloud.provider, base_url=cloud.base_url, model=cloud.model, api_key=api_key,
                               timeout_seconds=cloud.timeout_seconds)
    adapter = _anthropic if cloud.provider is api.Provider.ANTHROPIC else _openai
    return Route(name=CLOUD, target=target, prices=_prices(cloud.price_usd_per_million_tokens, namespace, CLOUD),
                 max_output_tokens=cloud.max_output_tokens, transport=pool.transport_for(target), adapter=adapter)


def _prices(price: api.Price, namespace: str, route: str) -> _pricing.PriceTable:
    try:
        return _pricing.PriceTable.from_price(price)
    except _pricing.PricingError as error:
        raise api.ConfigError(f"RoutePolicy of namespace {namespace!r}: spec.{route}.priceUSDPerMillionTokens: {error}") from None
