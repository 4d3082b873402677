"""Status conditions, built in one place so every writer uses the same types and reasons.

Conditions follow the Kubernetes conventions: ``type``, ``status`` (True, False or Unknown),
a CamelCase ``reason``, a ``message`` for people, ``lastTransitionTime`` (kept while the
status does not change) and ``observedGeneration``. Several writers own different
condition types of one object (the fleet reconciliation owns Ready, the budget timer owns
Exhausted), so updates merge by type instead of replacing the whole list.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

READY = "Ready"
EXHAUSTED = "Exhausted"
OLLAMA_SETTINGS = "OllamaSettings"

# Reasons of Ready.
PUBLISHED = "Published"
INVALID = "Invalid"
CONFLICT = "Conflict"
SECRET_NOT_FOUND = "SecretNotFound"
# Reasons of Exhausted.
CEILING_REACHED = "CeilingReached"
WITHIN_CEILING = "WithinCeiling"
# Reasons of OllamaSettings.
APPLIED = "Applied"
OVERRIDDEN = "Overridden"

RawCondition = dict[str, Any]


def now_rfc3339(clock: datetime.datetime | None = None) -> str:
    """Return a UTC timestamp in the form Kubernetes writes, e.g. ``2025-01-31T12:00:00Z``."""
    moment = clock or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    *,
    type: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
) -> RawCondition:
    """Build a condition; ``status`` None means Unknown. The transition time is set by ``merge``."""
    if status is None:
        text = "Unknown"
    elif status:
        text = "True"
    else:
        text = "False"
    result: RawCondition = {"type": type, "status": text, "reason": reason, "message": message}
    if generation is not None:
        result["observedGeneration"] = generation
    return result


def merge(
    existing: Iterable[Mapping[str, Any]] | None,
    updates: Sequence[RawCondition],
    *,
    remove: Iterable[str] = (),
    now: str,
) -> list[RawCondition]:
    """Return ``existing`` with each update replacing the condition of its type.

    A condition whose status did not change keeps its ``lastTransitionTime``; types listed
    in ``remove`` are dropped; the result is sorted by type so unchanged lists compare equal.
    """
    by_type: dict[str, RawCondition] = {str(item.get("type")): dict(item) for item in existing or ()}
    for name in remove:
        by_type.pop(name, None)
    for update in updates:
        previous = by_type.get(update["type"])
        merged = dict(update)
        if previous is not None and previous.get("status") == update["status"] and previous.get("lastTransitionTime"):
            merged["lastTransitionTime"] = previous["lastTransitionTime"]
        else:
            merged["lastTransitionTime"] = now
        by_type[update["type"]] = merged
    return [by_type[name] for name in sorted(by_type)]


def find(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> Mapping[str, Any] | None:
    """Return the condition of ``type``, or None."""
    for item in conditions or ():
        if item.get("type") == type:
            return item
    return None


def differs(live: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Tell whether writing ``desired`` would change the live status (transition times aside)."""
    live = live or {}
    for key, value in desired.items():
        if key == "conditions":
            if _without_times(live.get("conditions")) != _without_times(value):
                return True
        elif live.get(key) != value:
            return True
    return False


def _without_times(conditions: Any) -> list[dict[str, Any]]:
    result = []
    for item in conditions or ():
        copy = {key: value for key, value in item.items() if key != "lastTransitionTime"}
        result.append(copy)
    return sorted(result, key=lambda item: str(item.get("type")))
