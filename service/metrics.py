"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from facecore.manifest import ModelManifest

# Latency and batch buckets describe the service, not a model; kappa and score buckets come from the manifest.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_MAX_SCORE_BUCKETS = 30
_UNCONFIGURED = (0.0,)  # prometheus needs two buckets; replaced once a model loads


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
            "dprime_decisions_total",
            "Decisions by kind, outcome and the quality band that decided",
            ["kind", "outcome", "band"],
            registry=r,
        )
        # Until a model is loaded its buckets are unknown: one +Inf bucket, replaced by configure_buckets.
        self.kappa = Histogram("dprime_face_kappa", "kappa of embedded faces", buckets=_UNCONFIGURED, registry=r)
        self.score = Histogram("dprime_verify_cosine", "Cosine of verified pairs", buckets=_UNCONFIGURED, registry=r)
        self.model_info = Gauge("dprime_model_active", "1 for the active model", ["model_id"], registry=r)
        self.gallery_faces = Gauge("dprime_gallery_faces", "Faces in the search index", registry=r)
        # Over a shared gallery only the replica leading a switch should count the whole gallery here.
        self.reembedded = Counter(
            "dprime_gallery_reembedded_faces", "Gallery faces this process embedded with a new model", registry=r
        )
        self.rejected = Counter("dprime_rejected_total", "Requests refused with an error code", ["code"], registry=r)
        self.in_flight = Gauge("dprime_requests_in_flight", "Requests admitted and not yet answered", registry=r)
        self.shed = Gauge("dprime_requests_shed", "Requests refused at capacity since start (503)", registry=r)

    def configure_buckets(self, manifest: ModelManifest) -> None:
        """kappa and score histograms with the buckets the serving model's manifest records."""
        kappa_buckets = tuple(manifest.uncertainty.kappa_buckets) or _UNCONFIGURED
        calibration = manifest.calibration
        histogram = calibration.decision_set.histogram if calibration and calibration.decision_set else None
        edges = histogram.edges if histogram else []
        step = max(1, -(-len(edges) // _MAX_SCORE_BUCKETS))
        score_buckets = tuple(edges[::step]) or _UNCONFIGURED
        for old in (self.kappa, self.score):
            self.registry.unregister(old)
        self.kappa = Histogram(
            "dprime_face_kappa", "kappa of embedded faces", buckets=kappa_buckets, registry=self.registry
        )
        self.score = Histogram(
            "dprime_verify_cosine", "Cosine of verified pairs", buckets=score_buckets, registry=self.registry
        )

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
