"""Prometheus metrics: requests by endpoint and status, latency, decisions, the model version.

Under `postsieve serve` several gunicorn workers answer requests, so each writes its numbers to
files in PROMETHEUS_MULTIPROC_DIR (set by `serve` before gunicorn starts) and /metrics adds
them up across workers. Without that variable (tests, `flask run`) the numbers live in this
app's own registry. Either way nothing is registered globally, so tests can build many apps.
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.008, 0.013, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The app's metric objects and their rendering."""

    def __init__(self):
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = None if self.multiprocess else CollectorRegistry()
        self._registry = registry
        self.requests = Counter("postsieve_http_requests", "HTTP requests by endpoint, method and status.",
                                ["endpoint", "method", "status"], registry=registry)
        self.latency = Histogram("postsieve_http_request_duration_seconds", "Time to answer, by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=registry)
        self.decisions = Counter("postsieve_decisions", "Posts scored, by predicted label and decision.",
                                 ["label", "decision"], registry=registry)
        self.model_info = Gauge("postsieve_model_info", "1 for the model version a worker serves.",
                                ["version"], multiprocess_mode="livemax", registry=registry)
        self._shown_version: str | None = None
        self._decision_children: dict[tuple[str, str], Counter] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_scored(self, scored) -> None:
        # labels() validates and locks on every call; there are only nine (label, decision) pairs
        key = (scored.label, scored.decision)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        child.inc()

    def serving(self, version: str) -> None:
        """Record the model version this process answers with (cheap when unchanged)."""
        if version != self._shown_version:
            if self._shown_version is not None:
                self.model_info.labels(self._shown_version).set(0)
            self.model_info.labels(version).set(1)
            self._shown_version = version

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self._registry
        return generate_latest(registry), CONTENT_TYPE_LATEST
