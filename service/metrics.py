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
        # What an operator alerts on: a version the workers refuse, statistics not being written.
        self.model_load_error = Gauge("postsieve_model_load_error",
                                      "1 while a worker cannot load the version ACTIVE names (it keeps serving "
                                      "the one it has; /readyz's last_error says why).",
                                      multiprocess_mode="livemax", registry=registry)
        self.decision_log_failing = Gauge("postsieve_decision_log_failing",
                                          "1 while a worker's writes of served decisions fail (they wait, "
                                          "up to a bound; the log says why).",
                                          multiprocess_mode="livemax", registry=registry)
        self.decisions_dropped = Counter("postsieve_decisions_dropped",
                                         "Served decisions never written to the database (the wait bound "
                                         "passed, or the database refused the row).", registry=registry)
        self._shown_version: str | None = None
        self._shown_load_error: bool | None = None
        self._shown_log_failing: bool | None = None
        self._counted_dropped = 0
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

    def serving(self, version: str, load_error: bool = False) -> None:
        """Record the model version this process answers with, and whether it fails to load the
        one ACTIVE names (cheap when unchanged)."""
        if version != self._shown_version:
            if self._shown_version is not None:
                self.model_info.labels(self._shown_version).set(0)
            self.model_info.labels(version).set(1)
            self._shown_version = version
        if load_error is not self._shown_load_error:
            self.model_load_error.set(int(load_error))
            self._shown_load_error = load_error

    def observe_decision_log(self, decision_log) -> None:
        """Whether this process's decision log is failing, and the rows it dropped since last
        asked (cheap when unchanged)."""
        failing = decision_log.last_error is not None
        if failing is not self._shown_log_failing:
            self.decision_log_failing.set(int(failing))
            self._shown_log_failing = failing
        dropped = decision_log.dropped
        if dropped > self._counted_dropped:
            self.decisions_dropped.inc(dropped - self._counted_dropped)
            self._counted_dropped = dropped

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self._registry
        return generate_latest(registry), CONTENT_TYPE_LATEST
