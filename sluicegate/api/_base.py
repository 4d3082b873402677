"""Shared pieces of the resource models: camelCase fields, metadata, conditions.

Field names in Python are snake_case; on the wire they are the camelCase names of the
public API (``ceilingUSD``, ``timeZone``). Unknown fields are rejected, so a misspelled
field fails loudly instead of silently taking its default.
"""

from __future__ import annotations

import re
from typing import Annotated

import pydantic
from pydantic.alias_generators import to_camel

API_GROUP = "sluicegate.io"
API_VERSION = "v1alpha1"
API_GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

# Kubernetes object names (RFC 1123 subdomain) and namespaces (RFC 1123 label).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _camel(name: str) -> str:
    # The public API spells these acronyms in capitals: ceilingUSD, webhookURL.
    camel = to_camel(name)
    for suffix, fixed in (("Usd", "USD"), ("Url", "URL")):
        if camel.endswith(suffix):
            camel = camel[: -len(suffix)] + fixed
    return camel.replace("UsdPer", "USDPer")


class Model(pydantic.BaseModel):
    """Base of every resource model: camelCase aliases, unknown fields rejected, immutable."""

    model_config = pydantic.ConfigDict(
        alias_generator=_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    def to_raw(self) -> dict[str, object]:
        """Dump as the JSON document a user would write, with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_name(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"invalid name {value!r}: use lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (at most 253 characters)"
        )
    return value


def _check_namespace(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"invalid namespace {value!r}: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (at most 63 characters)"
        )
    return value


ObjectName = Annotated[str, pydantic.AfterValidator(_check_name)]
NamespaceName = Annotated[str, pydantic.AfterValidator(_check_namespace)]


class ObjectMeta(pydantic.BaseModel):
    """The parts of Kubernetes metadata that sluicegate reads; other keys are kept as given."""

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    name: ObjectName
    namespace: NamespaceName | None = None
    uid: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)


class Condition(Model):
    """A Kubernetes-style status condition, such as Ready or Exhausted."""

    type: str
    status: str = pydantic.Field(pattern=r"^(True|False|Unknown)$")
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None
