"""The config snapshot: every valid LLMBudget and effective RoutePolicy, resolved, plus verdicts.

This module is pure (resources in, snapshot out) and decides everything the gateway will
see:

1. each resource is validated with the same models the gateway loads, and an invalid one
   gets a verdict that names the wrong field and value;
2. one RoutePolicy applies per namespace: the oldest valid one (creationTimestamp, then
   name) wins and the others are in Conflict;
3. a namespace with budgets but no RoutePolicy of its own gets a copy of the RoutePolicy
   named ``default`` in the defaults namespace, with its namespace filled in, so the
   gateway's loader reads the snapshot unchanged;
4. a policy whose cloud route names a Secret that does not exist (or lacks the key) is left
   out, because the gateway rejects a whole config whose key file is missing;
5. local routes without an endpoint get the URL of the Ollama Service that runs the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sluicegate import api
from sluicegate.operator import _names, _ollama, _status
from sluicegate.operator._settings import OperatorSettings

RawObject = dict[str, Any]
SecretKey = tuple[str, str]  # (namespace, name) of a Secret
# The keys present in each referenced Secret; None when the Secret does not exist.
SecretKeys = Mapping[SecretKey, frozenset[str] | None]

LLMBUDGET = "LLMBudget"
ROUTEPOLICY = "RoutePolicy"
DEFAULT_POLICY_NAME = "default"
_MAX_NAMES_IN_MESSAGE = 10


@dataclasses.dataclass(frozen=True, order=True)
class ObjectRef:
    """A custom resource's identity."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The operator's conclusion about one custom resource, written into its status."""

    ref: ObjectRef
    generation: int | None
    conditions: tuple[_status.RawCondition, ...]
    remove: tuple[str, ...] = ()  # condition types that no longer apply
    local_endpoint: str | None = None
    error: str | None = None  # set when the resource is invalid

    @property
    def ready(self) -> bool:
        """True when the Ready condition is True."""
        ready = _status.find(self.conditions, _status.READY)
        return ready is not None and ready["status"] == "True"


@dataclasses.dataclass(frozen=True)
class ProviderSecret:
    """A provider Secret copied into the operator's namespace and mounted into the gateway.

    ``mounts`` lists ``(namespace, key)`` pairs: the gateway reads the key at
    ``<secrets-dir>/<namespace>/<source name>/<key>``. A default policy's Secret is mounted
    once for every namespace that uses a copy of that policy.
    """

    source_namespace: str
    source_name: str
    keys: tuple[str, ...]
    mounts: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """The mirror's name in the operator's namespace."""
        return _names.mirror_secret_name(self.source_namespace, self.source_name)


@dataclasses.dataclass(frozen=True)
class Resources:
    """The custom resources to reconcile, as raw Kubernetes objects."""

    budgets: tuple[RawObject, ...] = ()
    policies: tuple[RawObject, ...] = ()

    @classmethod
    def from_documents(cls, documents: Iterable[RawObject]) -> Resources:
        """Split raw documents by kind; documents of other kinds are ignored."""
        documents = list(documents)
        return cls(
            budgets=tuple(doc for doc in documents if doc.get("kind") == LLMBUDGET),
            policies=tuple(doc for doc in documents if doc.get("kind") == ROUTEPOLICY),
        )


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The resolved configuration and every resource's verdict."""

    budgets: tuple[api.LLMBudget, ...]
    policies: tuple[api.RoutePolicy, ...]
    ollama_models: tuple[_ollama.OllamaModel, ...]
    provider_secrets: tuple[ProviderSecret, ...]
    verdicts: Mapping[ObjectRef, Verdict]
    namespaces: tuple[str, ...]  # namespaces with at least one LLMBudget or RoutePolicy

    def config_text(self) -> str:
        """Return the snapshot as multi-document YAML, the content of ``config.yaml``."""
        return api.dump_documents([*self.budgets, *self.policies])


def referenced_secrets(resources: Resources, *, settings: OperatorSettings) -> list[SecretKey]:
    """Return the Secrets that valid RoutePolicies reference, so the caller can read them."""
    references = set()
    for _, policy, _ in _parsed_policies(resources):
        if policy is not None and policy.spec.cloud and policy.spec.cloud.api_key_secret_ref:
            references.add((policy.metadata.namespace or "", policy.spec.cloud.api_key_secret_ref.name))
    return sorted(references)


def build(resources: Resources, *, settings: OperatorSettings, secrets: SecretKeys | None) -> Snapshot:
    """Resolve resources into a snapshot; ``secrets`` None assumes every referenced key exists."""
    verdicts: dict[ObjectRef, Verdict] = {}

    # Invalid resources are reported and left out; valid ones are cleaned of cluster metadata.
    budgets = _valid_budgets(resources, verdicts)
    winners = _choose_policies(resources, verdicts)

    # A missing provider key would make the gateway reject the whole snapshot.
    published = _policies_with_secrets(winners, secrets, verdicts)

    # Namespaces with budgets and no policy of their own use the default policy.
    default_policy = published.get(settings.default_policy_namespace)
    if default_policy is not None and default_policy.metadata.name != DEFAULT_POLICY_NAME:
        default_policy = None
    owners = {ref_of(raw).namespace for raw in resources.policies}
    copies = _default_copies(default_policy, budgets=budgets, owners=owners)

    # Local routes without an endpoint run on Ollama; the snapshot gets the Service URL.
    models = _ollama.resolve(_ollama_requests(published.values()))
    policies = [_with_endpoint(policy, settings=settings) for policy in (*published.values(), *copies)]
    _policy_verdicts(published, copies, models, verdicts, settings=settings)
    _budget_verdicts(budgets, policies, verdicts)

    present = {str(raw.get("metadata", {}).get("namespace", "")) for raw in (*resources.budgets, *resources.policies)}
    return Snapshot(
        budgets=tuple(sorted((_cleaned(budget) for budget in budgets), key=_document_key)),
        policies=tuple(sorted(policies, key=_document_key)),
        ollama_models=models,
        provider_secrets=_provider_secrets(published.values(), copies, default_namespace=settings.default_policy_namespace),
        verdicts=verdicts,
        namespaces=tuple(sorted(name for name in present if name)),
    )


def _document_key(document: api.LLMBudget | api.RoutePolicy) -> tuple[str, str]:
    return (document.metadata.namespace or "", document.metadata.name)


def ref_of(raw: Mapping[str, Any]) -> ObjectRef:
    """Return the identity of a raw custom resource."""
    metadata = raw.get("metadata") or {}
    return ObjectRef(kind=str(raw.get("kind", "")), namespace=str(metadata.get("namespace", "")), name=str(metadata.get("name", "")))


def _generation(raw: Mapping[str, Any]) -> int | None:
    generation = (raw.get("metadata") or {}).get("generation")
    return generation if isinstance(generation, int) else None


def _parse(raw: Mapping[str, Any]) -> tuple[api.LLMBudget | api.RoutePolicy | None, str | None]:
    # Only what a user writes is validated: the status and server-side metadata are not theirs.
    ref = ref_of(raw)
    document = {key: raw[key] for key in ("apiVersion", "kind", "spec") if key in raw}
    document["metadata"] = {"name": ref.name, "namespace": ref.namespace, "generation": _generation(raw)}
    try:
        return api.parse_document(document, label=f"{ref.kind} {ref}"), None
    except api.ConfigError as error:
        return None, str(error)


def _invalid(raw: Mapping[str, Any], error: str) -> Verdict:
    ready = _status.condition(
        type=_status.READY, status=False, reason=_status.INVALID, message=error, generation=_generation(raw)
    )
    return Verdict(ref=ref_of(raw), generation=_generation(raw), conditions=(ready,), remove=(_status.OLLAMA_SETTINGS,), error=error)


def _valid_budgets(resources: Resources, verdicts: dict[ObjectRef, Verdict]) -> list[api.LLMBudget]:
    budgets = []
    for raw in resources.budgets:
        parsed, error = _parse(raw)
        if error is not None or not isinstance(parsed, api.LLMBudget):
            verdicts[ref_of(raw)] = _invalid(raw, error or "not an LLMBudget")
            continue
        budgets.append(parsed)
    return budgets


def _parsed_policies(resources: Resources) -> list[tuple[RawObject, api.RoutePolicy | None, str | None]]:
    result: list[tuple[RawObject, api.RoutePolicy | None, str | None]] = []
    for raw in resources.policies:
        parsed, error = _parse(raw)
        result.append((raw, parsed if isinstance(parsed, api.RoutePolicy) else None, error))
    return result


def _age_key(raw: Mapping[str, Any]) -> tuple[str, str]:
    # RFC 3339 timestamps in UTC ("Z") sort as text; a document without one counts as oldest.
    metadata = raw.get("metadata") or {}
    return (str(metadata.get("creationTimestamp") or ""), str(metadata.get("name", "")))


def _choose_policies(resources: Resources, verdicts: dict[ObjectRef, Verdict]) -> dict[str, tuple[RawObject, api.RoutePolicy]]:
    by_namespace: dict[str, list[tuple[RawObject, api.RoutePolicy]]] = {}
    for raw, policy, error in _parsed_policies(resources):
        if policy is None:
            verdicts[ref_of(raw)] = _invalid(raw, error or "not a RoutePolicy")
            continue
        by_namespace.setdefault(policy.metadata.namespace or "", []).append((raw, policy))

    winners = {}
    for namespace, candidates in by_namespace.items():
        candidates.sort(key=lambda candidate: _age_key(candidate[0]))
        winner_raw, winner = candidates[0]
        winners[namespace] = (winner_raw, winner)
        for raw, policy in candidates[1:]:
            message = (
                f"namespace {namespace!r} already has RoutePolicy {winner.metadata.name!r}, which is older; one RoutePolicy "
                f"applies per namespace, so delete {policy.metadata.name!r} or merge it into {winner.metadata.name!r}"
            )
            ready = _status.condition(
                type=_status.READY, status=False, reason=_status.CONFLICT, message=message, generation=_generation(raw)
            )
            verdicts[ref_of(raw)] = Verdict(
                ref=ref_of(raw), generation=_generation(raw), conditions=(ready,), remove=(_status.OLLAMA_SETTINGS,)
            )
    return winners


def _policies_with_secrets(
    winners: Mapping[str, tuple[RawObject, api.RoutePolicy]],
    secrets: SecretKeys | None,
    verdicts: dict[ObjectRef, Verdict],
) -> dict[str, api.RoutePolicy]:
    published = {}
    for namespace in sorted(winners, key=lambda name: _age_key(winners[name][0])):
        raw, policy = winners[namespace]
        reference = policy.spec.cloud.api_key_secret_ref if policy.spec.cloud else None
        if reference is not None and secrets is not None:
            keys = secrets.get((namespace, reference.name))
            if keys is None or reference.key not in keys:
                missing = "does not exist" if keys is None else f"has no key {reference.key!r}"
                message = (
                    f"spec.cloud.apiKeySecretRef names Secret {namespace}/{reference.name}, which {missing}: create it with "
                    f"the provider API key under {reference.key!r}; until then this policy is not published"
                )
                ready = _status.condition(
                    type=_status.READY, status=False, reason=_status.SECRET_NOT_FOUND, message=message, generation=_generation(raw)
                )
                verdicts[ref_of(raw)] = Verdict(
                    ref=ref_of(raw), generation=_generation(raw), conditions=(ready,), remove=(_status.OLLAMA_SETTINGS,)
                )
                continue
        published[namespace] = policy
    return published


def _default_copies(
    default_policy: api.RoutePolicy | None, *, budgets: Iterable[api.LLMBudget], owners: set[str]
) -> list[api.RoutePolicy]:
    if default_policy is None:
        return []
    namespaces = sorted({budget.metadata.namespace or "" for budget in budgets} - owners)
    return [
        default_policy.model_copy(update={"metadata": api.ObjectMeta(name=DEFAULT_POLICY_NAME, namespace=namespace)})
        for namespace in namespaces
    ]


def _ollama_requests(policies: Iterable[api.RoutePolicy]) -> list[_ollama.OllamaRequest]:
    return [
        _ollama.OllamaRequest(model=policy.spec.local.model, policy=f"{policy.metadata.namespace}/{policy.metadata.name}",
                              settings=policy.spec.local.ollama)
        for policy in policies
        if not policy.spec.local.endpoint
    ]


def _cleaned(budget: api.LLMBudget) -> api.LLMBudget:
    metadata = api.ObjectMeta(name=budget.metadata.name, namespace=budget.metadata.namespace)
    return budget.model_copy(update={"metadata": metadata, "status": None})


def _with_endpoint(policy: api.RoutePolicy, *, settings: OperatorSettings) -> api.RoutePolicy:
    # The snapshot carries only what the gateway reads: name, namespace and spec.
    metadata = api.ObjectMeta(name=policy.metadata.name, namespace=policy.metadata.namespace)
    local = policy.spec.local
    if not local.endpoint:
        endpoint = _names.ollama_endpoint(local.model, namespace=settings.namespace)
        local = local.model_copy(update={"endpoint": endpoint})
    spec = policy.spec.model_copy(update={"local": local})
    return policy.model_copy(update={"metadata": metadata, "spec": spec, "status": None})


def _names_list(names: Iterable[str]) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_MAX_NAMES_IN_MESSAGE])
    if len(names) > _MAX_NAMES_IN_MESSAGE:
        shown += f" and {len(names) - _MAX_NAMES_IN_MESSAGE} more"
    return shown


def _policy_verdicts(
    published: Mapping[str, api.RoutePolicy],
    copies: list[api.RoutePolicy],
    models: tuple[_ollama.OllamaModel, ...],
    verdicts: dict[ObjectRef, Verdict],
    *,
    settings: OperatorSettings,
) -> None:
    model_index = _ollama.models_by_policy(models)
    for namespace, policy in published.items():
        ref = ObjectRef(ROUTEPOLICY, namespace, policy.metadata.name)
        generation = policy.metadata.generation
        message = f"published in the config snapshot for namespace {namespace!r}"
        if namespace == settings.default_policy_namespace and copies and policy.metadata.name == DEFAULT_POLICY_NAME:
            message += f", and as the default of namespaces without a RoutePolicy: {_names_list(p.metadata.namespace or '' for p in copies)}"
        conditions = [_status.condition(type=_status.READY, status=True, reason=_status.PUBLISHED, message=message, generation=generation)]
        remove: tuple[str, ...] = ()

        model = model_index.get(str(ref))
        if model is None:
            remove = (_status.OLLAMA_SETTINGS,)
            endpoint = policy.spec.local.endpoint
        else:
            conditions.append(_ollama_condition(model, policy=str(ref), generation=generation))
            endpoint = _names.ollama_endpoint(model.model, namespace=settings.namespace)
        verdicts[ref] = Verdict(ref=ref, generation=generation, conditions=tuple(conditions), remove=remove, local_endpoint=endpoint)


def _ollama_condition(model: _ollama.OllamaModel, *, policy: str, generation: int | None) -> _status.RawCondition:
    if policy in model.overridden:
        message = (
            f"model {model.model!r} is shared and runs with the ollama settings of RoutePolicy {model.chosen_from} "
            f"({_ollama.describe(model.settings)}), the largest request; this policy's settings are not used"
        )
        return _status.condition(type=_status.OLLAMA_SETTINGS, status=False, reason=_status.OVERRIDDEN, message=message, generation=generation)
    message = f"model {model.model!r} runs on Ollama with {_ollama.describe(model.settings)}"
    return _status.condition(type=_status.OLLAMA_SETTINGS, status=True, reason=_status.APPLIED, message=message, generation=generation)


def _budget_verdicts(budgets: list[api.LLMBudget], policies: list[api.RoutePolicy], verdicts: dict[ObjectRef, Verdict]) -> None:
    routed = {policy.metadata.namespace for policy in policies}
    for budget in budgets:
        namespace = budget.metadata.namespace or ""
        ref = ObjectRef(LLMBUDGET, namespace, budget.metadata.name)
        message = f"published in the config snapshot for namespace {namespace!r}"
        if namespace not in routed:
            message += (
                "; the namespace has no published RoutePolicy and no default applies, so its requests get no route "
                "until one is created"
            )
        ready = _status.condition(
            type=_status.READY, status=True, reason=_status.PUBLISHED, message=message, generation=budget.metadata.generation
        )
        verdicts[ref] = Verdict(ref=ref, generation=budget.metadata.generation, conditions=(ready,))


def _provider_secrets(
    published: Iterable[api.RoutePolicy], copies: Iterable[api.RoutePolicy], *, default_namespace: str
) -> tuple[ProviderSecret, ...]:
    keys: dict[SecretKey, set[str]] = {}
    mounts: dict[SecretKey, set[tuple[str, str]]] = {}
    own = [(policy, policy.metadata.namespace or "") for policy in published]
    # A copy reads the default policy's Secret, which lives in the defaults namespace.
    borrowed = [(policy, default_namespace) for policy in copies]
    for policy, source_namespace in (*own, *borrowed):
        reference = policy.spec.cloud.api_key_secret_ref if policy.spec.cloud else None
        if reference is None:
            continue
        source = (source_namespace, reference.name)
        keys.setdefault(source, set()).add(reference.key)
        mounts.setdefault(source, set()).add((policy.metadata.namespace or "", reference.key))
    return tuple(
        ProviderSecret(source_namespace=namespace, source_name=name, keys=tuple(sorted(keys[(namespace, name)])),
                       mounts=tuple(sorted(mounts[(namespace, name)])))
        for namespace, name in sorted(keys)
    )
