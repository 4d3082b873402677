"""Loading LLMBudget and RoutePolicy documents from YAML files.

One loader serves both ways in: a user's hand-written YAML (``sluicegate gateway --config
budgets.yaml``) and the config snapshot the operator mounts into every gateway pod. A
path may be a file or a folder; files hold one or more documents separated by ``---``, as
``kubectl apply -f`` takes them. Every error names the file, the document, the field path
and the bad value, and tells what to write instead.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
import yaml

from sluicegate.api._budget import LLMBudget
from sluicegate.api._policy import RoutePolicy

YAML_SUFFIXES = (".yaml", ".yml", ".json")


class ConfigError(ValueError):
    """A config file or document that cannot be used; the message names where and why."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Every budget and policy, validated, with one policy per namespace."""

    budgets: tuple[LLMBudget, ...] = ()
    policies: tuple[RoutePolicy, ...] = ()

    def policy_for(self, namespace: str) -> RoutePolicy | None:
        """Return the namespace's RoutePolicy, or None when it has none."""
        for policy in self.policies:
            if policy.metadata.namespace == namespace:
                return policy
        return None

    def budgets_for(self, namespace: str) -> tuple[LLMBudget, ...]:
        """Return every LLMBudget that binds the namespace."""
        return tuple(budget for budget in self.budgets if budget.metadata.namespace == namespace)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Namespaces that have a budget or a policy, sorted."""
        documents: tuple[LLMBudget | RoutePolicy, ...] = (*self.budgets, *self.policies)
        names = {doc.metadata.namespace for doc in documents}
        return tuple(sorted(name for name in names if name))


def load_path(path: str | pathlib.Path) -> Config:
    """Load every document of a YAML file, or of the YAML files in a folder (sorted, not recursive).

    Raises ConfigError for a missing path, unparsable YAML, an unknown kind, a document
    without ``metadata.namespace``, a field that fails validation, or two RoutePolicies
    for one namespace.
    """
    root = pathlib.Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in YAML_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise ConfigError(f"{root}: the folder has no .yaml, .yml or .json files; put the LLMBudget and RoutePolicy documents there")
    elif root.is_file():
        files = [root]
    else:
        raise ConfigError(f"{root}: no such file or folder; pass the YAML file or folder of LLMBudget and RoutePolicy documents")

    documents: list[tuple[str, Any]] = []
    for file in files:
        documents.extend(_read_documents(file))
    return build_config(documents)


def load_text(text: str, *, source: str = "<text>") -> Config:
    """Load documents from a YAML string; ``source`` names it in errors."""
    return build_config(_parse_documents(text, source))


def build_config(documents: Iterable[tuple[str, Any]]) -> Config:
    """Validate raw documents, each given with a label such as ``budgets.yaml, document 2``."""
    budgets: list[LLMBudget] = []
    policies: list[RoutePolicy] = []
    for label, raw in documents:
        parsed = parse_document(raw, label=label)
        if parsed.metadata.namespace is None:
            raise ConfigError(
                f"{label} ({parsed.kind} {parsed.metadata.name}): metadata.namespace is missing; "
                "every budget and policy belongs to a namespace, so set metadata.namespace"
            )
        if isinstance(parsed, LLMBudget):
            budgets.append(parsed)
        else:
            policies.append(parsed)

    _check_unique(budgets, kind="LLMBudget")
    _check_unique(policies, kind="RoutePolicy")
    seen: dict[str, str] = {}
    for policy in policies:
        namespace = policy.metadata.namespace or ""
        if namespace in seen:
            raise ConfigError(
                f"namespace {namespace!r} has two RoutePolicies, {seen[namespace]!r} and {policy.metadata.name!r}: "
                "one policy applies per namespace, so remove or merge one of them"
            )
        seen[namespace] = policy.metadata.name
    return Config(budgets=tuple(budgets), policies=tuple(policies))


def parse_document(raw: Any, *, label: str) -> LLMBudget | RoutePolicy:
    """Validate one raw document as an LLMBudget or a RoutePolicy."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label}: expected a mapping with apiVersion, kind, metadata and spec, got {type(raw).__name__}")
    kind = raw.get("kind")
    model: type[LLMBudget] | type[RoutePolicy]
    if kind == "LLMBudget":
        model = LLMBudget
    elif kind == "RoutePolicy":
        model = RoutePolicy
    else:
        raise ConfigError(f"{label}: unsupported kind {kind!r}; expected LLMBudget or RoutePolicy (apiVersion sluicegate.io/v1alpha1)")

    name = raw.get("metadata", {}).get("name") if isinstance(raw.get("metadata"), Mapping) else None
    where = f"{label} ({kind} {name})" if name else f"{label} ({kind})"
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as error:
        raise ConfigError(f"{where}: " + describe_validation_error(error, raw)) from None


def describe_validation_error(error: pydantic.ValidationError, raw: Any) -> str:
    """Turn pydantic's errors into lines of ``field.path: problem (got value)``."""
    lines = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if item["type"] == "missing":
            lines.append(f"{location}: required field is missing")
        elif item["type"] == "extra_forbidden":
            lines.append(f"{location}: unknown field; check its spelling against the documented fields")
        elif item["type"] == "string_type":
            # YAML reads 20 or 0.5 as numbers; money and names must stay exact strings.
            value = _value_at(raw, item["loc"])
            lines.append(f"{location}: expected a quoted string, got {value!r}; quote it in YAML, e.g. \"{value}\"")
        else:
            value = repr(_value_at(raw, item["loc"]))
            lines.append(f"{location}: {message}" + ("" if value in message else f" (got {value})"))
    return "; ".join(lines)


def _value_at(raw: Any, location: tuple[int | str, ...]) -> Any:
    value = raw
    for part in location:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return value
    return value


def _read_documents(file: pathlib.Path) -> list[tuple[str, Any]]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: cannot read the file: {error}") from error
    return _parse_documents(text, str(file))


def _parse_documents(text: str, source: str) -> list[tuple[str, Any]]:
    stream = io.StringIO(text)
    stream.name = source  # so YAML errors name the file, not "<unicode string>"
    try:
        raw_documents = list(yaml.safe_load_all(stream))
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: invalid YAML: {error}") from error
    documents: list[tuple[str, Any]] = []
    for index, raw in enumerate(raw_documents, start=1):
        if raw is None:
            continue
        if isinstance(raw, Mapping) and raw.get("kind") == "List" and isinstance(raw.get("items"), list):
            documents.extend((f"{source}, document {index}, item {item}", entry) for item, entry in enumerate(raw["items"], 1))
            continue
        documents.append((f"{source}, document {index}", raw))
    return documents


def _check_unique(documents: list[LLMBudget] | list[RoutePolicy], *, kind: str) -> None:
    seen: set[tuple[str | None, str]] = set()
    for document in documents:
        key = (document.metadata.namespace, document.metadata.name)
        if key in seen:
            raise ConfigError(f"{kind} {key[0]}/{key[1]} is defined twice: give each document a unique name in its namespace")
        seen.add(key)


def dump_documents(documents: Iterable[LLMBudget | RoutePolicy]) -> str:
    """Write documents as multi-document YAML that ``load_text`` reads back unchanged."""
    return yaml.safe_dump_all([doc.to_raw() for doc in documents], sort_keys=False)
