"""Ray Serve vs the same engine in-process: throughput and latency at several concurrencies, and replica memory.

For each concurrency C: the in-process row runs the ServingModel the Detector holds (same backend, threads, image
size) on batches of min(C, max_batch_size) images, JPEG decode included, one batch after the other (measured
before and after the Serve rows; the faster of the two is kept, the fair choice on a shared machine); the Serve row
sends ``--requests`` POST /v1/detect requests from C client threads over HTTP to one Detector replica with dynamic
batching. "added p50" is Serve's p50 minus the in-process per-request latency at batch 1 (concurrency 1 only).
The resident memory is the Detector replica's VmRSS after the run.

    PYTHONPATH=. .venv/bin/python benchmarks/serve_load.py --imgsz 320 --requests 300 --concurrency 1 8 32
    RAY_SERVE_ENABLE_HA_PROXY=1 PYTHONPATH=. .venv/bin/python benchmarks/serve_load.py --layout split ...

``--layout single`` (the application's default) serves the app whose Detector is the HTTP ingress itself;
``--layout split`` puts an Ingress deployment in front of it (one handle call per request);
``RAY_SERVE_ENABLE_HA_PROXY=1`` in the environment (read by Ray when it starts) puts Ray's HAProxy ingress in front
instead of Serve's Python proxy actor, so requests go from HAProxy straight to the ingress replica's own HTTP server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import ray
import requests
from ray import serve

from serve.app import build_app
from serve.images import decode_image
from serve.runtime import InferenceRequest, load_serving_model
from yolov12.infer.samples import sample_images
from yolov12.models import build_model, load_architecture
from yolov12.weights import save_checkpoint


def confident_weights(folder: Path) -> Path:
    """yolov12n (1 class) whose class bias makes it detect everywhere: realistic NMS/postprocess work."""
    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=1), names={0: "thing"})
    for branch in model.model[-1].cv3:
        branch[-1].bias.data[:] = 2.0
    return save_checkpoint(model, folder / "bench.safetensors")


def in_process(model, jpegs: list[bytes], batch: int, seconds: float) -> tuple[float, float]:
    """(images/s, ms per batch) of decode + predict on batches of ``batch`` for about ``seconds``."""
    done, times = 0, []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        started = time.perf_counter()
        images = [decode_image(jpegs[(done + i) % len(jpegs)], 10**8) for i in range(batch)]
        model.predict([InferenceRequest(image) for image in images])
        times.append(time.perf_counter() - started)
        done += batch
    return done / sum(times), statistics.median(times) * 1000


def over_http(url: str, jpegs: list[bytes], total: int, clients: int) -> tuple[float, float, float, int, dict]:
    """(requests/s, p50 ms, p99 ms, errors, median ms per stage) for ``total`` requests from ``clients`` threads.

    The stages are the server's own ``timing_ms`` (Detector decode/preprocess/inference/postprocess, ingress
    request) plus ``client``, the latency the client saw; the bodies are parsed after the clock stops.
    """
    local = threading.local()

    def one(index: int) -> tuple[bytes | None, float]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        try:
            response = session.post(f"{url}/v1/detect", data=jpegs[index % len(jpegs)], timeout=300,
                                    headers={"Content-Type": "image/jpeg"})
            body = response.content if response.status_code == 200 else None
        except requests.RequestException:
            body = None
        return body, (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(min(total, 2 * clients))))  # warm-up
        started = time.perf_counter()
        results = list(pool.map(one, range(total)))
        wall = time.perf_counter() - started
    latencies = [ms for _, ms in results]
    p50, p99 = np.percentile(latencies, [50, 99])
    stages: dict[str, list[float]] = {"client": latencies}
    for body, _ in results:
        for stage, ms in (json.loads(body).get("timing_ms", {}) if body else {}).items():
            stages.setdefault(stage, []).append(ms)
    medians = {stage: statistics.median(values) for stage, values in stages.items()}
    return total / wall, float(p50), float(p99), sum(body is None for body, _ in results), medians


WRK_SCRIPT = """
local paths = {%s}
local requests_ = {}
for i, path in ipairs(paths) do
  local file = assert(io.open(path, "rb"))
  requests_[i] = wrk.format("POST", "/v1/detect", {["Content-Type"] = "image/jpeg"}, file:read("*all"))
  file:close()
end
local sent = 0
request = function()
  sent = sent + 1
  return requests_[(sent %% #requests_) + 1]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def over_wrk(url: str, jpeg_paths: list[str], clients: int, seconds: float) -> tuple[float, float, float, int, dict]:
    """(requests/s, p50 ms, p99 ms, errors, {}) from ``wrk`` (one C thread, ``clients`` connections) for
    ``seconds`` after a 2 s warm-up: a load generator that takes far less CPU than Python threads, which on this
    2-core machine share the cores with the server."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    if shutil.which("wrk") is None:
        raise SystemExit("--client wrk needs wrk on PATH (Debian: apt-get install wrk)")
    script = Path(tempfile.mkdtemp(prefix="wrk-")) / "post.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(str(p)) for p in jpeg_paths))
    results = {}
    for phase, duration in (("warm-up", 2), ("measure", max(1, round(seconds)))):
        out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{duration}s", "--timeout", "60s", "-s", str(script),
                              url], capture_output=True, text=True, check=True).stdout
        line = next(line for line in out.splitlines() if line.startswith("WRK "))
        results[phase] = json.loads(line[4:])
    r = results["measure"]
    return r["requests"] / (r["duration_us"] / 1e6), r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"], {}


def print_breakdown(stages: dict[str, float], single_deployment: bool, haproxy: bool) -> None:
    """Where a request's time goes at concurrency 1 (medians, so the parts need not add up exactly)."""
    detector = sum(stages.get(stage, 0.0) for stage in ("decode", "preprocess", "inference", "postprocess"))
    inside = stages.get("request", float("nan"))
    hop = "batching queue, encoding" if single_deployment else "handle call, batching queue, encoding"
    front = "HAProxy" if haproxy else "proxy actor, proxy -> ingress call"
    print("\nconcurrency 1, median ms: " + ", ".join(f"{stage} {ms:.1f}" for stage, ms in stages.items()))
    print(f"  Detector stages {detector:.1f}; ingress request minus Detector stages {inside - detector:.1f} "
          f"({hop}); client minus ingress {stages['client'] - inside:.1f} (HTTP client, {front}, HTTP server)")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="weights / exported model / models:/NAME@alias (default: a yolov12n)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait", type=float, default=0.005)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="in-process measuring time per row")
    parser.add_argument("--client", choices=("python", "wrk"), default="python",
                        help="python: C threads of requests, with the server's per-stage timing; wrk: the C load "
                             "generator (apt-get install wrk), fixed --wrk-seconds per concurrency")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--layout", choices=("single", "split"), default="single",
                        help="single (default): one deployment is both HTTP ingress and model; split: Ingress -> "
                             "Detector (serve.config single_deployment=false)")
    args = parser.parse_args()

    haproxy = os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1"
    scratch = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    model_source = args.model or str(confident_weights(scratch))
    jpegs = [Path(p).read_bytes() for p in sample_images()]
    common = {"backend": args.backend, "imgsz": args.imgsz, "threads": args.threads, "cache_dir": str(scratch)}
    local = load_serving_model(model_source, max_batch=args.max_batch_size, **common)
    print(f"model {model_source}: {local.engine}", file=sys.stderr)
    before = {c: in_process(local, jpegs, min(c, args.max_batch_size), args.seconds) for c in args.concurrency}

    ray.init(address="local", num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    port = 18000 + os.getpid() % 1000
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = build_app({"model": model_source, "max_batch_size": args.max_batch_size, "num_replicas": 1,
                     "batch_wait_timeout_s": args.batch_wait, "max_ongoing_requests": 2 * max(args.concurrency),
                     "num_cpus": args.threads,
                     **({"ingress_max_ongoing_requests": 4 * max(args.concurrency)} if args.layout == "split" else {}),
                     "single_deployment": args.layout == "single", **common})
    serve.run(app, name="bench", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    rows, breakdown = [], {}
    try:
        for clients in args.concurrency:
            if args.client == "wrk":
                throughput, p50, p99, errors, stages = over_wrk(url, sample_images(), clients, args.wrk_seconds)
            else:
                throughput, p50, p99, errors, stages = over_http(url, jpegs, args.requests, clients)
            rows.append((clients, throughput, p50, p99, errors))
            breakdown.setdefault(clients, stages)
        pid = serve.get_deployment_handle("Detector", app_name="bench").ping.remote().result()["pid"]
        memory = rss_mb(pid)
    finally:
        serve.shutdown()
        ray.shutdown()
    # measured again after Serve is gone: on a shared machine the load changes, so keep the better of the two
    after = {c: in_process(local, jpegs, min(c, args.max_batch_size), args.seconds) for c in args.concurrency}
    baseline = {c: max(before[c], after[c]) for c in args.concurrency}
    single_ms = min(in_process(local, jpegs, 1, args.seconds)[1], before[min(args.concurrency)][1])

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; {Path(model_source).name}, backend {args.backend}, imgsz {args.imgsz}, "
          f"max_batch_size {args.max_batch_size}, batch wait {args.batch_wait * 1000:.0f} ms, {args.threads} threads; "
          f"client {args.client}; "
          f"{'one deployment (Detector is the ingress)' if args.layout == 'single' else 'Ingress -> Detector'}, "
          f"{'HAProxy' if haproxy else 'Serve proxy actor'} in front\n")
    print("| concurrency | in-process img/s (batch) | Serve req/s | ratio | Serve p50 ms | Serve p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for clients, throughput, p50, p99, errors in rows:
        local_rate = baseline[clients][0]
        print(f"| {clients} | {local_rate:.1f} ({min(clients, args.max_batch_size)}) | {throughput:.1f} | "
              f"{throughput / local_rate:.2f} | {p50:.0f} | {p99:.0f} | {errors} |")
    breakdown = {clients: stages for clients, stages in breakdown.items() if stages}  # wrk reads no bodies
    print("\nmedians per concurrency (server timing_ms): " + "; ".join(
        f"C={clients}: batch {stages.get('batch_size', float('nan')):.0f}, inference "
        f"{stages.get('inference', float('nan')):.1f} ms/img, request {stages.get('request', float('nan')):.0f} ms"
        for clients, stages in breakdown.items()))
    p50_one = next((p50 for clients, _, p50, _, _ in rows if clients == 1), None)
    if p50_one is not None:
        print(f"\nin-process latency at batch 1: {single_ms:.1f} ms; Serve p50 at concurrency 1: {p50_one:.1f} ms "
              f"(added {p50_one - single_ms:.1f} ms)")
    if 1 in breakdown:
        print_breakdown(breakdown[1], args.layout == "single", haproxy)
    print(f"Detector replica RSS: {memory:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
