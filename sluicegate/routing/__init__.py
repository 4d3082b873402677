"""The domain of routing: the zero-token classifier, pricing and cost estimates."""

from sluicegate.routing._classifier import Classification, Tier, classify, classify_text

__all__ = [
    "Classification",
    "Tier",
    "classify",
    "classify_text",
]
