"""Prometheus metrics (recorded by :mod:`.middleware` and the routes), and the request-id helpers.

Each app gets its own CollectorRegistry (no global state: tests can run several apps in one
process). Routes are labelled by their template (``/predict``), never the raw path, so a scan of
random URLs cannot explode the label set. One process per pod: no multiprocess mode needed.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import Scope

from attrition_mlops.serving.loaded import LoadedModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "attrition_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "attrition_http_request_duration_seconds",
            "Request latency by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "attrition_predictions", "Records scored", ["model_version"], registry=r
        )
        self.outliers = Counter(
            "attrition_outliers", "Records flagged as outliers", ["model_version"], registry=r
        )
        self.model_info = Gauge(
            "attrition_model_info",
            "The model being served (value 1)",
            ["model_name", "model_version", "alias", "fast_path"],
            registry=r,
        )
        self.model_swaps = Counter("attrition_model_swaps", "Models swapped in", registry=r)
        self.log_pending = Gauge(
            "attrition_inference_log_pending", "Log entries not yet written", registry=r
        )
        self.log_failed = Gauge(
            "attrition_inference_log_failed", "Log entries that could not be written", registry=r
        )

    def model_swapped(self, old: LoadedModel | None, new: LoadedModel) -> None:
        self.model_info.clear()
        self.model_info.labels(
            new.card.name, new.card.version, new.card.alias or "", str(new.fast_path).lower()
        ).set(1)
        self.model_swaps.inc()

    def scored(self, version: str, n_records: int, n_outliers: int) -> None:
        self.predictions.labels(version).inc(n_records)
        if n_outliers:
            self.outliers.labels(version).inc(n_outliers)


def request_id(scope: Scope) -> str | None:
    return scope.get("state", {}).get("request_id")


def request_started(scope: Scope) -> float | None:
    return scope.get("state", {}).get("request_started")
