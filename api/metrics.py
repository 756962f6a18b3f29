"""Prometheus metrics, one registry per app so that several apps (tests) never collide."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_NAMES = 500  # client-chosen labels: bound them so a client cannot explode memory


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "takedown_http_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.graphql_requests = Counter(
            "takedown_graphql_requests", "GraphQL operations by name", ["operation"], registry=self.registry
        )
        self.graphql_latency = Histogram(
            "takedown_graphql_request_seconds",
            "GraphQL operation latency by name",
            ["operation"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.graphql_errors = Counter(
            "takedown_graphql_errors", "GraphQL errors by code", ["code"], registry=self.registry
        )
        self._names: set[str] = set()

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self._names:
            return name
        if not OPERATION_NAME.match(name) or len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(name)
        return name

    def observe_operation(self, name: str | None, seconds: float, error_codes: list[str]) -> None:
        label = self.operation_label(name)
        self.graphql_requests.labels(label).inc()
        self.graphql_latency.labels(label).observe(seconds)
        for code in error_codes:
            self.graphql_errors.labels(code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
