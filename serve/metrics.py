"""Our Prometheus metrics beside Ray Serve's own: images, detections and per-stage latency.

Exported through Ray's metrics agent on each node's metrics port (``ray start --metrics-export-port``, or
``ray.init(_metrics_export_port=...)``), scraped beside Serve's ``ray_serve_*``. Metrics are created inside replicas
(by :func:`serving_metrics`), never at import. Names as exported by Ray 2.60 (prefix ``ray_``, ``_total`` on counters):

- ``ray_yolov12_images_total{model, task}``, ``ray_yolov12_detections_total{model}`` (Detector)
- ``ray_yolov12_request_errors_total{status, route}`` (Ingress; ``route`` is the first path part, e.g. ``v1``)
- ``ray_yolov12_stage_latency_ms_bucket|_count|_sum{stage, model}`` (milliseconds)
- ``ray_yolov12_batch_size_bucket|_count|_sum{model}`` (images per forward)

Ray adds ``application``, ``deployment`` and ``replica`` (and node/worker) labels. Histogram buckets and counts are
exact, but Ray rebuilds ``_sum`` from bucket midpoints, so use the buckets (``histogram_quantile``), not ``_sum``.

Stages: ``decode`` (Detector: bytes -> pixels, per image), ``preprocess``, ``inference``, ``postprocess`` (Detector,
per image share of its batch), ``request`` (ingress: whole request).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ray.serve.metrics import Counter, Histogram

LATENCY_BOUNDARIES_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128]


@dataclass(frozen=True)
class ServingMetrics:
    images: Counter
    detections: Counter
    errors: Counter
    latency: Histogram
    batch_size: Histogram

    def record_stages(self, timing: dict[str, float], model: str) -> None:
        """Observe the stage latencies (milliseconds) in ``timing``."""
        for stage in ("decode", "preprocess", "inference", "postprocess", "request"):
            if stage in timing:
                self.latency.observe(timing[stage], tags={"stage": stage, "model": model})


@lru_cache(maxsize=1)
def serving_metrics() -> ServingMetrics:
    """The process's metric objects (created once per replica)."""
    return ServingMetrics(
        images=Counter("yolov12_images", "Images run through a model", tag_keys=("model", "task")),
        detections=Counter("yolov12_detections", "Objects detected", tag_keys=("model",)),
        errors=Counter("yolov12_request_errors", "Requests answered with an error, by status",
                       tag_keys=("status", "route")),
        latency=Histogram("yolov12_stage_latency_ms", "Latency per stage in milliseconds",
                          boundaries=LATENCY_BOUNDARIES_MS, tag_keys=("stage", "model")),
        batch_size=Histogram("yolov12_batch_size", "Images per model forward (dynamic batching)",
                             boundaries=BATCH_BOUNDARIES, tag_keys=("model",)),
    )
