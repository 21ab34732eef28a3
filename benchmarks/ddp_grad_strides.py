"""DDP training step with and without gradients in their parameters' strides: step time and DDP's stride warning.

    .venv/bin/python benchmarks/ddp_grad_strides.py --model yolov12n --imgsz 320 --batch 4 --steps 12

Two gloo ranks on this machine (``--threads`` each), the model wrapped as training wraps it
(:func:`yolov12.engine.distributed.wrap_model`), the detection loss on synthetic boxes, SGD. Two variants in the
same run, each on a fresh process group:

- ``aligned``: the library's model (area attention's ``pe``/``proj`` weights carry channels-last strides, as their
  gradients do);
- ``contiguous``: the same model with those weights set back to contiguous strides (the layout before the fix), so
  the gradients of the 1x1 ``proj`` weights arrive channels-last and DDP copies them into its buckets.

Per variant: median step time over ``--steps`` after 2 warm-up steps (rank 0's wall clock; both ranks wait on the
same all-reduce) and whether DDP warned "Grad strides do not match bucket view strides".
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from bench_common import machine_line

from yolov12.engine.distributed import current_context, wrap_model
from yolov12.engine.losses import build_detection_loss
from yolov12.models import build_model, load_architecture
from yolov12.nn.area_attention import AreaAttention

STRIDE_WARNING = "Grad strides do not match bucket view strides"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _contiguous_attention_weights(model: torch.nn.Module) -> int:
    """The layout before the fix: area attention's pe/proj weights with contiguous strides. Returns how many."""
    changed = 0
    for module in model.modules():
        if isinstance(module, AreaAttention):
            for conv in (module.pe.conv, module.proj.conv):
                # .contiguous() would keep these strides: a 1x1 or one-channel-per-group weight counts as contiguous
                conv.weight.data = conv.weight.data.new_empty(conv.weight.shape).copy_(conv.weight.data)
                changed += 1
    return changed


def _synthetic_batch(batch: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    boxes_per_image = 4
    count = batch * boxes_per_image
    centres = torch.rand(count, 2, generator=generator) * 0.6 + 0.2
    sizes = torch.rand(count, 2, generator=generator) * 0.2 + 0.05
    return {"batch_index": torch.arange(batch).repeat_interleave(boxes_per_image).float(),
            "classes": torch.randint(0, 10, (count,), generator=generator).float(),
            "boxes": torch.cat([centres, sizes], dim=1)}


def _rank(rank: int, port: int, args: argparse.Namespace, variant: str, results: dict) -> None:
    torch.set_num_threads(args.threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = build_model(load_architecture(args.model)).train()
        if variant == "contiguous":
            _contiguous_attention_weights(model)
        loss_fn = build_detection_loss(model)
        wrapped = wrap_model(model, current_context(), torch.device("cpu"))
        optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        images = torch.rand(args.batch, 3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(rank))
        targets = _synthetic_batch(args.batch, rank)
        times = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for step in range(args.steps + 2):
                dist.barrier()
                started = time.perf_counter()
                optimiser.zero_grad(set_to_none=True)
                loss, _ = loss_fn(wrapped(images), targets)
                loss.backward()
                optimiser.step()
                if step >= 2:
                    times.append(time.perf_counter() - started)
        if rank == 0:
            results[variant] = {"median_s": statistics.median(times),
                                "warned": any(STRIDE_WARNING in str(w.message) for w in caught)}
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov12n")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=4, help="images per rank")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2, help="each variant runs this many times, interleaved")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads per rank; with 1, torch's CPU convolution takes a path whose weight "
                             "gradients are contiguous whatever the input, and the two variants do not differ")
    args = parser.parse_args(argv)
    print(machine_line())
    print(f"{args.model}, imgsz {args.imgsz}, {args.batch} images per rank, 2 gloo ranks x {args.threads} threads, "
          f"{args.steps} timed steps")
    results = mp.Manager().dict()
    medians: dict[str, list[float]] = {"aligned": [], "contiguous": []}
    warned: dict[str, bool] = {}
    for _ in range(args.rounds):
        for variant in medians:
            mp.spawn(_rank, args=(_free_port(), args, variant, results), nprocs=2, join=True)
            medians[variant].append(results[variant]["median_s"])
            warned[variant] = warned.get(variant, False) or results[variant]["warned"]
    print(f"{'variant':<12} {'median step ms':>15} {'per round':>22}  DDP stride warning")
    for variant, values in medians.items():
        rounds = ", ".join(f"{v * 1e3:.0f}" for v in values)
        flag = "yes" if warned[variant] else "no"
        print(f"{variant:<12} {statistics.median(values) * 1e3:>15.1f} {rounds:>22}  {flag}")
    ratio = statistics.median(medians["aligned"]) / statistics.median(medians["contiguous"])
    print(f"aligned / contiguous step time: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
