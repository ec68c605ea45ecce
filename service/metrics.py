"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_COSINE_BUCKETS = tuple(round(-0.2 + 0.05 * i, 2) for i in range(25))
_KAPPA_BUCKETS = (1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)


class Metrics:
    """Every metric the service exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "dprime_request_latency_seconds",
            "Request latency by route",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_latency = Histogram(
            "dprime_stage_latency_seconds",
            "Latency of one pipeline stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "dprime_inference_batch_size", "Faces per model batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("dprime_inference_queue_depth", "Faces waiting for the model", registry=r)
        self.decisions = Counter(
            "dprime_decisions_total", "Decisions by kind and outcome", ["kind", "outcome"], registry=r
        )
        self.kappa = Histogram("dprime_face_kappa", "kappa of embedded faces", buckets=_KAPPA_BUCKETS, registry=r)
        self.score = Histogram("dprime_verify_cosine", "Cosine of verified pairs", buckets=_COSINE_BUCKETS, registry=r)
        self.model_info = Gauge("dprime_model_active", "1 for the active model", ["model_id"], registry=r)
        self.gallery_faces = Gauge("dprime_gallery_faces", "Faces in the search index", registry=r)
        self.rejected = Counter("dprime_rejected_total", "Requests refused with an error code", ["code"], registry=r)

    def observe_batch(self, size: int, depth: int, seconds: float) -> None:
        """Engine callback after each batch."""
        self.batch_size.observe(size)
        self.queue_depth.set(depth)
        self.stage_latency.labels(stage="model").observe(seconds)

    def set_active_model(self, model_id: str) -> None:
        """Mark exactly one model as active."""
        self.model_info.clear()
        self.model_info.labels(model_id=model_id).set(1)

    def render(self) -> bytes:
        """Text exposition format."""
        return generate_latest(self.registry)
