"""Tracking benchmark: MOTA, IDF1 and HOTA of ByteTrack and BoT-SORT, and frames/s of detection + tracking.

Quality: the generated sequence of moving digits (``yolov12.track.synthetic``: 8 digits, 2 pairs crossing head-on,
``--frames`` frames of 320x320) with ground-truth boxes turned into a simulated detector's output (5 % corner jitter,
10 % of boxes missed, low scores under occlusion, stray boxes; ``noisy_detections``), scored with motmetrics
(MOTA, IDF1) and trackeval (HOTA).
BoT-SORT runs with each motion-compensation method on the rendered frames (the camera is still: compensation can
only add noise here, which the rows show with its cost).

Speed: ``yolov12n`` (random weights: detection time does not depend on the weights) predicting the rendered frames
at ``--imgsz`` on the CPU, alone and followed by each tracker fed the frame and its simulated detections (random
weights find nothing worth tracking), frames/s over the whole loop; plus each tracker alone on 50 moving boxes a
frame. Run with ``python benchmarks/tracking.py``; OMP/MKL threads follow the environment.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_common import machine_line

from yolov12 import YOLO
from yolov12.config.tracker import load_tracker_config
from yolov12.track import create_tracker
from yolov12.track.metrics import evaluate_tracks
from yolov12.track.synthetic import MovingDigits, SequenceSpec, noisy_detections

TRACKER_ROWS = (("bytetrack", "none"), ("botsort", "none"), ("botsort", "sparseOptFlow"), ("botsort", "ecc"))


def quality_rows(frames: list, video: MovingDigits) -> None:
    """MOTA, IDF1, HOTA (DetA, AssA), id switches and tracker milliseconds a frame on the noisy ground truth."""
    print(f"{'tracker':<30}{'MOTA':>7}{'IDF1':>7}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'switches':>10}{'ms/frame':>10}")
    for name, gmc in TRACKER_ROWS:
        tracker = create_tracker(load_tracker_config(name, gmc_method=gmc))
        rng = np.random.default_rng(1)
        truth, tracks, elapsed = [], [], 0.0
        for image, frame_truth in frames:
            boxes, scores, classes = noisy_detections(frame_truth, rng, image_size=video.spec.image_size)
            start = time.perf_counter()
            output = tracker.update(boxes, scores, classes, image)
            elapsed += time.perf_counter() - start
            truth.append((frame_truth.boxes, frame_truth.ids))
            tracks.append((boxes[output.indices], output.ids))
        metrics = evaluate_tracks(truth, tracks)
        print(f"{name + ' (gmc ' + gmc + ')':<30}{metrics.mota:>7.3f}{metrics.idf1:>7.3f}{metrics.hota:>7.3f}"
              f"{metrics.deta:>7.3f}{metrics.assa:>7.3f}{metrics.id_switches:>10d}"
              f"{1000 * elapsed / len(frames):>10.2f}")


def crowd_row(boxes_per_frame: int = 50, count: int = 300) -> None:
    """Tracker milliseconds a frame on ``boxes_per_frame`` boxes moving at constant speed (no image, no GMC)."""
    rng = np.random.default_rng(0)
    position = rng.uniform(0, 1200, (boxes_per_frame, 2))
    velocity, size = rng.uniform(-4, 4, (boxes_per_frame, 2)), rng.uniform(20, 60, (boxes_per_frame, 2))
    frames = []
    for _ in range(count):
        position = position + velocity
        boxes = np.concatenate([position, position + size], 1) + rng.normal(0, 1, (boxes_per_frame, 4))
        frames.append((boxes, rng.uniform(0.3, 0.95, boxes_per_frame)))
    for name in ("bytetrack", "botsort"):
        tracker = create_tracker(load_tracker_config(name, gmc_method="none"))
        start = time.perf_counter()
        for boxes, scores in frames:
            tracker.update(boxes, scores, np.zeros(boxes_per_frame))
        print(f"{name} alone, {boxes_per_frame} boxes a frame: "
              f"{1000 * (time.perf_counter() - start) / count:.2f} ms/frame")


def speed_rows(frames: list, video: MovingDigits, imgsz: int, repeats: int = 2) -> None:
    """Frames/s of yolov12n detection on the rendered frames, alone and followed by each tracker.

    A random-weight detector finds nothing worth tracking, so each tracker gets the frame's simulated detections
    (as in :func:`quality_rows`) and the frame itself: the detector's compute and the tracker's work are both real.
    """
    model = YOLO("yolov12n.yaml")
    _detect_and_track(model, frames, video, imgsz, None, None)  # warm-up pass, not reported
    for label, name, gmc in (("detection only", None, None), ("+ bytetrack", "bytetrack", "none"),
                             ("+ botsort (gmc sparseOptFlow)", "botsort", "sparseOptFlow")):
        rates = [_detect_and_track(model, frames, video, imgsz, name, gmc) for _ in range(repeats)]
        print(f"yolov12n {imgsz}px {label:<32}{max(rates):>8.1f} frames/s (best of {repeats})")


def _detect_and_track(model: YOLO, frames: list, video: MovingDigits, imgsz: int, name: str | None,
                      gmc: str | None) -> float:
    """Frames/s of one pass: detection on every frame, then (with ``name``) the tracker on simulated detections."""
    tracker = create_tracker(load_tracker_config(name, gmc_method=gmc)) if name else None
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    results = model.predict([image for image, _ in frames], imgsz=imgsz, conf=0.1, device="cpu", stream=True)
    for result, (_, frame_truth) in zip(results, frames):
        if tracker is not None:
            boxes, scores, classes = noisy_detections(frame_truth, rng, image_size=video.spec.image_size)
            tracker.update(boxes, scores, classes, result.orig_img)
    return len(frames) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames of the generated sequence")
    parser.add_argument("--imgsz", type=int, default=320, help="detector input size for the speed rows")
    args = parser.parse_args(argv)
    print(machine_line())
    video = MovingDigits(SequenceSpec(num_frames=args.frames))
    frames = list(video)
    quality_rows(frames, video)
    crowd_row()
    speed_rows(frames, video, args.imgsz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
