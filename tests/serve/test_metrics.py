"""Prometheus metrics scraped from Ray's metrics agent: ours (``ray_yolov12_*``, serve/metrics.py) agree with the
requests the test sent, and Serve's own ``ray_serve_*`` count them too."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from serve_support import IMGSZ, ServeNode, running_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "yolov12-metrics"
MODEL = "metrics-probe"  # the `model` tag; the `application` tag keeps other modules' series out
REQUESTS = 12
DETECTOR_STAGES = ("decode", "preprocess", "inference", "postprocess")
INGRESS_STAGES = ("request",)
SCRAPE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def serve_node(serve_instances) -> ServeNode:  # noqa: ANN001 - conftest's ServeInstances
    """This module's Ray + Serve, with Ray's metrics export on (off by default in the test processes)."""
    return serve_instances.current(metrics=True)


@pytest.fixture(scope="module")
def app_url(serve_port: int, confident_weights: Path) -> Iterator[str]:
    args = {"model": str(confident_weights), "name": MODEL, "backend": "torch", "imgsz": IMGSZ, "max_batch_size": 4,
            "num_cpus": 1, "threads": 1}
    with running_app(serve_port, args, name=APP) as url:
        yield url


Samples = list[tuple[str, dict[str, str], float]]


def scrape(url: str) -> Samples:
    """(sample name, labels, value) of every sample on a Prometheus text endpoint."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url, timeout=10).text
    return [(sample.name, sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples]


def matching(samples: Samples, name: str, labels: dict[str, str]) -> Iterator[tuple[dict[str, str], float]]:
    for sample, tags, value in samples:
        if sample == name and all(tags.get(key) == wanted for key, wanted in labels.items()):
            yield tags, value


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (over replicas and worker processes)."""
    return sum(value for _, value in matching(samples, name, labels))


def buckets(samples: Samples, name: str, **labels: str) -> dict[float, float]:
    """Cumulative counts of histogram ``name`` by upper bound (``le``, ``inf`` included), summed like :func:`total`."""
    found: dict[float, float] = {}
    for tags, value in matching(samples, f"{name}_bucket", labels):
        found[float(tags["le"])] = found.get(float(tags["le"]), 0.0) + value
    return found


def observed(samples: Samples) -> dict[str, object]:
    """What the test checks, by a readable key (only this application's series)."""
    ours = {"application": APP, "model": MODEL}
    values: dict[str, object] = {
        "images": total(samples, "ray_yolov12_images_total", **ours, task="detect", deployment="Detector"),
        "detections": total(samples, "ray_yolov12_detections_total", **ours, deployment="Detector"),
        "forwards": total(samples, "ray_yolov12_batch_size_count", **ours, deployment="Detector"),
        "forwards of one image": buckets(samples, "ray_yolov12_batch_size", **ours).get(1.0),
        "415 errors": total(samples, "ray_yolov12_request_errors_total", application=APP, status="415", route="v1",
                            deployment="Detector"),  # the default layout: the model's deployment is the ingress
        "serve POST 200": total(samples, "ray_serve_num_http_requests_total", application=APP, method="POST",
                                status_code="200"),
        "serve POST 200 latency count": total(samples, "ray_serve_http_request_latency_ms_count", application=APP,
                                              method="POST", status_code="200"),
    }
    for stage in (*DETECTOR_STAGES, *INGRESS_STAGES):  # all recorded by the one deployment of the default layout
        tags = {**ours, "stage": stage, "deployment": "Detector"}
        values[f"{stage} count"] = total(samples, "ray_yolov12_stage_latency_ms_count", **tags)
        values[f"{stage} buckets"] = buckets(samples, "ray_yolov12_stage_latency_ms", **tags)
    return values


def bucket_counts_agree(got: object, latencies: list[float]) -> bool:
    """Each cumulative bucket holds the latencies at or below its bound (the responses round to 0.01 ms)."""
    from serve.metrics import LATENCY_BOUNDARIES_MS

    if not isinstance(got, dict) or set(got) != {*map(float, LATENCY_BOUNDARIES_MS), math.inf}:
        return False
    return all(sum(t <= bound - 0.01 for t in latencies) <= count <= sum(t <= bound + 0.01 for t in latencies)
               for bound, count in got.items())


def test_our_stage_metrics_and_serve_metrics_count_the_requests_sent(
        app_url: str, serve_node: ServeNode, sample_jpegs: list[bytes]) -> None:
    session = requests.Session()
    detections, latencies = 0, {stage: [] for stage in DETECTOR_STAGES + INGRESS_STAGES}
    for index in range(REQUESTS):  # one at a time: every forward is a batch of one image
        response = session.post(f"{app_url}/v1/detect", data=sample_jpegs[index % len(sample_jpegs)], timeout=120,
                                headers={"Content-Type": "image/jpeg"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"]["name"] == MODEL
        detections += len(body["detections"])
        for stage, values in latencies.items():
            values.append(body["timing_ms"][stage])
    refused = session.post(f"{app_url}/v1/detect", data=b"hello", headers={"Content-Type": "text/plain"}, timeout=60)
    assert refused.status_code == 415
    assert detections > 0

    expected: dict[str, object] = {
        "images": REQUESTS, "detections": detections, "forwards": REQUESTS, "forwards of one image": REQUESTS,
        "415 errors": 1, "serve POST 200": REQUESTS, "serve POST 200 latency count": REQUESTS}
    expected.update({f"{stage} count": REQUESTS for stage in latencies})
    # Ray exports each worker's metrics every METRICS_REPORT_INTERVAL_MS: poll until all of them have arrived.
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    while True:
        values = observed(scrape(serve_node.metrics_url))
        counts = {key: values[key] for key in expected}
        agree = {stage: bucket_counts_agree(values[f"{stage} buckets"], latencies[stage]) for stage in latencies}
        if (counts == expected and all(agree.values())) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert counts == expected, f"after {SCRAPE_TIMEOUT_S}s of scraping {serve_node.metrics_url}"
    # Bucket counts are exact; Ray rebuilds `_sum` from bucket midpoints, so it is not compared with the responses.
    assert all(agree.values()), {stage: (values[f"{stage} buckets"], latencies[stage]) for stage in latencies}
