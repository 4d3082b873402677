"""The RoutePolicy resource: a namespace's local and cloud routes and how to choose.

One RoutePolicy applies per namespace. The local route is required (it is what a
downgrade falls back to); the cloud route is optional, and without it every request is
served locally.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

import pydantic

from sluicegate.api import _money
from sluicegate.api._base import Condition, Model, ObjectMeta
from sluicegate.api._budget import USDAmount

# Kubernetes quantities such as 20Gi or 500M, and Go durations such as 24h or 30m.
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DURATION = re.compile(r"^-1|0|([0-9]+(ns|us|ms|s|m|h))+$")


class Provider(str, enum.Enum):
    """The wire protocol of a cloud route."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai-compatible"


DEFAULT_CLOUD_ENDPOINTS = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.ANTHROPIC: "https://api.anthropic.com/v1",
}


class Price(Model):
    """USD per million tokens, per token kind, as decimal strings.

    ``input`` and ``output`` are required on paid routes, so no model is ever priced at $0
    by omission. ``cachedInput`` (a prompt-cache read) and ``cacheWrite`` default to
    ``input``.
    """

    input: USDAmount = pydantic.Field(description="USD per million prompt tokens.")
    output: USDAmount = pydantic.Field(description="USD per million output tokens, reasoning tokens included.")
    cached_input: USDAmount | None = pydantic.Field(
        default=None, description="USD per million prompt tokens read from a provider cache; defaults to input."
    )
    cache_write: USDAmount | None = pydantic.Field(
        default=None, description="USD per million prompt tokens written to a provider cache; defaults to input."
    )

    @property
    def is_free(self) -> bool:
        """True when every token kind costs $0."""
        amounts = (self.input, self.output, self.cached_input or "0", self.cache_write or "0")
        return all(_money.parse_usd(amount) == 0 for amount in amounts)


def _free_price() -> Price:
    return Price(input="0", output="0", cached_input="0", cache_write="0")


class Ollama(Model):
    """Ollama settings the operator uses to run a local model when the route has no endpoint."""

    replicas: int = pydantic.Field(default=1, ge=1, le=100, description="Ollama pods for this model.")
    gpus: int = pydantic.Field(default=1, ge=0, le=16, description="nvidia.com/gpu per pod; 0 runs on CPU.")
    node_selector: dict[str, str] = pydantic.Field(default_factory=dict, description="Node labels the pods require.")
    tolerations: list[dict[str, Any]] = pydantic.Field(default_factory=list, description="Tolerations, e.g. for GPU taints.")
    keep_alive: str = pydantic.Field(
        default="24h",
        description="How long Ollama keeps the model loaded after a request (OLLAMA_KEEP_ALIVE), as a Go duration; -1 keeps it forever.",
        json_schema_extra={"pattern": r"^(-1|0|([0-9]+(ns|us|ms|s|m|h))+)$"},
    )
    storage: str = pydantic.Field(
        default="20Gi",
        description="Size of the volume for pulled models, as a Kubernetes quantity.",
        json_schema_extra={"pattern": _QUANTITY.pattern},
    )

    @pydantic.field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.fullmatch(value):
            raise ValueError(f"invalid duration {value!r}: write a Go duration such as \"24h\" or \"30m\", or \"-1\" for forever")
        return value

    @pydantic.field_validator("storage")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.fullmatch(value):
            raise ValueError(f"invalid storage size {value!r}: write a Kubernetes quantity such as \"20Gi\"")
        return value


class LocalRoute(Model):
    """The local route: a small model on Ollama or any OpenAI-compatible server."""

    model: str = pydantic.Field(min_length=1, description="Model name sent upstream, e.g. llama3.2:3b.")
    endpoint: str = pydantic.Field(
        default="",
        description="OpenAI-compatible base URL. Empty in a cluster: the operator runs the model on Ollama.",
        json_schema_extra={"pattern": r"^(https?://.+)?$"},
    )
    price_usd_per_million_tokens: Price = pydantic.Field(
        default_factory=_free_price, description="Price of the local route; $0 unless you charge for your own GPUs."
    )
    timeout_seconds: float = pydantic.Field(
        default=30, gt=0, le=3600, description="Wait for the first byte, then also the longest gap between chunks."
    )
    max_output_tokens: int = pydantic.Field(default=2048, ge=1, le=10_000_000, description="Largest max_tokens this route accepts.")
    ollama: Ollama = pydantic.Field(
        default_factory=Ollama, description="How the operator runs the model on Ollama; used only when endpoint is empty."
    )

    @pydantic.field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _check_endpoint(value)


class SecretKeyRef(Model):
    """A key of a Secret in the policy's namespace."""

    name: str = pydantic.Field(min_length=1, description="Secret name.")
    key: str = pydantic.Field(min_length=1, description="Key within the Secret.")


class CloudRoute(Model):
    """The cloud route: a frontier model behind a paid API."""

    provider: Provider = pydantic.Field(description="Wire protocol of the cloud API: openai, anthropic or openai-compatible.")
    model: str = pydantic.Field(min_length=1, description="Model name sent upstream, e.g. gpt-4.1.")
    endpoint: str = pydantic.Field(
        default="",
        description="Base URL; defaults to the provider's public API. Required for openai-compatible.",
        json_schema_extra={"pattern": r"^(https?://.+)?$"},
    )
    api_key_secret_ref: SecretKeyRef | None = pydantic.Field(
        default=None, description="Secret holding the provider API key. Required unless provider is openai-compatible."
    )
    price_usd_per_million_tokens: Price = pydantic.Field(description="Price of the cloud route; input and output are required.")
    timeout_seconds: float = pydantic.Field(default=120, gt=0, le=3600, description="Wait for the first byte, then the longest gap between chunks.")
    max_output_tokens: int = pydantic.Field(default=8192, ge=1, le=10_000_000, description="Largest max_tokens this route accepts.")

    @pydantic.field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _check_endpoint(value)

    @pydantic.model_validator(mode="after")
    def _provider_rules(self) -> CloudRoute:
        if self.provider is Provider.OPENAI_COMPATIBLE and not self.endpoint:
            raise ValueError("endpoint is required when provider is openai-compatible: set the server's base URL, e.g. http://vllm:8000/v1")
        if self.provider is not Provider.OPENAI_COMPATIBLE and self.api_key_secret_ref is None:
            raise ValueError(
                f"apiKeySecretRef is required when provider is {self.provider.value}: name the Secret and key that hold the API key"
            )
        return self

    @property
    def base_url(self) -> str:
        """The endpoint, or the provider's public API when none is set."""
        return self.endpoint or DEFAULT_CLOUD_ENDPOINTS[self.provider]


def _check_endpoint(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"invalid endpoint {value!r}: use an http:// or https:// base URL, e.g. http://127.0.0.1:8081/v1")
    return value.rstrip("/")


def _check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"invalid regular expression {value!r}: {error}") from error
    return value


class Classifier(Model):
    """Thresholds of the zero-token classifier."""

    complex_at_signals: int = pydantic.Field(default=2, ge=1, le=100, description="Signals that make a request complex.")
    long_prompt_chars: int = pydantic.Field(default=2000, ge=1, description="Prompt length, in characters, that counts as a signal.")
    extra_complex_patterns: list[Annotated[str, pydantic.AfterValidator(_check_pattern)]] = pydantic.Field(
        default_factory=list, description="Regular expressions (Python syntax); each match is one more signal."
    )


class Escalation(Model):
    """Whether a failed local call is retried once on the cloud route."""

    on_local_failure: bool = pydantic.Field(
        default=True, description="Retry a failed local call once on the cloud route; the retry is charged like any call."
    )


class ResponseCache(Model):
    """The exact-match response cache for non-streamed requests with temperature 0."""

    enabled: bool = pydantic.Field(default=False, description="Serve repeated identical requests from the cache at $0.")
    ttl_seconds: int = pydantic.Field(default=3600, ge=1, le=30 * 86400, description="Lifetime of a cached response, in seconds.")


class Cache(Model):
    """Response cache and provider prompt caching."""

    response: ResponseCache = pydantic.Field(
        default_factory=ResponseCache, description="Exact-match cache of non-streamed answers to requests with temperature 0."
    )
    provider_prompt_caching: bool = pydantic.Field(default=True, description="Mark the stable prompt prefix cacheable (Anthropic cache_control).")


class LoopGuard(Model):
    """Rejects a namespace that repeats one request too often: a runaway agent loop."""

    max_repeats: int = pydantic.Field(default=8, ge=0, description="Identical valid requests (same body, streaming flags aside) allowed per window; 0 turns the guard off.")
    window_seconds: int = pydantic.Field(default=60, ge=1, le=86400, description="Length of the sliding window, in seconds.")


class RoutePolicySpec(Model):
    """The routes of one namespace and the rules for choosing between them."""

    local: LocalRoute = pydantic.Field(description="The local route; also where downgraded requests go.")
    cloud: CloudRoute | None = pydantic.Field(default=None, description="The optional cloud route; without it every request is served locally.")
    classifier: Classifier = pydantic.Field(default_factory=Classifier, description="How requests are classified simple or complex.")
    escalation: Escalation = pydantic.Field(default_factory=Escalation, description="What happens when the local route fails.")
    default_max_tokens: int = pydantic.Field(default=1024, ge=1, le=10_000_000, description="Output tokens assumed and sent when a request sets none.")
    strict_ceiling: bool = pydantic.Field(
        default=False, description="Estimate prompts by UTF-8 bytes, an upper bound, so spend cannot pass the ceiling."
    )
    cache: Cache = pydantic.Field(default_factory=Cache, description="Response cache and provider prompt caching.")
    loop_guard: LoopGuard = pydantic.Field(
        default_factory=LoopGuard, description="Rejects a namespace that repeats one request too often."
    )

    @pydantic.model_validator(mode="after")
    def _distinct_models(self) -> RoutePolicySpec:
        if self.cloud is not None and self.cloud.model == self.local.model:
            raise ValueError(
                f"local.model and cloud.model are both {self.local.model!r}: give the routes different model names so requests can name them"
            )
        if self.local.model in ("auto", "local", "cloud") or (self.cloud and self.cloud.model in ("auto", "local", "cloud")):
            raise ValueError("route models may not be named auto, local or cloud: those names are the gateway's route aliases")
        return self


class RoutePolicyStatus(Model):
    """Conditions written by the operator."""

    conditions: list[Condition] = pydantic.Field(
        default_factory=list, description="Ready (published, or why not) and OllamaSettings (whose Ollama settings a shared model runs with)."
    )
    observed_generation: int | None = pydantic.Field(default=None, description="The metadata.generation this status describes.")
    local_endpoint: str | None = pydantic.Field(
        default=None, description="The local route's endpoint as published, e.g. the Ollama Service the operator runs."
    )


class RoutePolicy(Model):
    """A RoutePolicy document as written in YAML or stored in Kubernetes."""

    api_version: Literal["sluicegate.io/v1alpha1"] = "sluicegate.io/v1alpha1"
    kind: Literal["RoutePolicy"] = "RoutePolicy"
    metadata: ObjectMeta
    spec: RoutePolicySpec
    status: RoutePolicyStatus | None = None
