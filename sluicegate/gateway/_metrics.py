"""Prometheus metrics of one gateway app, in a registry of its own (no module globals)."""

from __future__ import annotations

import prometheus_client


class Metrics:
    """Counters and histograms of the request path."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "sluicegate_requests", "Chat requests by namespace, answering route, decision and outcome.",
            ["namespace", "route", "decision", "outcome"], registry=self.registry)
        self.escalations = prometheus_client.Counter(
            "sluicegate_escalations", "Local failures retried on the cloud route.", ["namespace"], registry=self.registry)
        self.rejections = prometheus_client.Counter(
            "sluicegate_rejections", "Requests refused, by error code.", ["namespace", "code"], registry=self.registry)
        self.spend = prometheus_client.Counter(
            "sluicegate_spend_usd", "Charged spend in USD by namespace and route.", ["namespace", "route"], registry=self.registry)
        self.upstream_latency = prometheus_client.Histogram(
            "sluicegate_upstream_latency_seconds", "Time to the upstream's first byte (streams) or full answer.",
            ["route", "provider"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.ledger_errors = prometheus_client.Counter(
            "sluicegate_ledger_errors", "Ledger operations that failed.", ["operation"], registry=self.registry)
        self.config_reloads = prometheus_client.Counter(
            "sluicegate_config_reloads", "Config reloads by result.", ["result"], registry=self.registry)

    def render(self) -> bytes:
        """Render every metric in the Prometheus text exposition format."""
        return prometheus_client.generate_latest(self.registry)
