#!/usr/bin/env python3
"""Generate reference fixtures from the real ``ultralytics`` package (AGPL-3.0).

Run ONLY with the python of the separate ultralytics virtual environment created by
``benchmarks/reference/setup_ultralytics_venv.sh``; ultralytics is never a dependency of this project.

    VENV_PY=$(bash benchmarks/reference/setup_ultralytics_venv.sh | tail -n1)
    YOLO_OFFLINE=1 $VENV_PY benchmarks/reference/make_ultralytics_fixtures.py \
        --official-blocks ~/.cache/yolov12-platform/official_turbo/official_turbo_blocks.py

Writes into ``tests/fixtures/reference/`` (override with ``--out``):

* ``<name>.pt``: a genuine Ultralytics checkpoint (``Model.save()`` followed by ultralytics' own
  ``strip_optimizer``, the same steps that produce released weights): a pickle of ultralytics classes with the
  model in fp16, plus ``date``, ``version``, ``train_args`` ... Built from YAML only (no weights are downloaded),
  nc=3, and perturbed deterministically (BatchNorm statistics/affine and A2C2f ``gamma``) so that a wrong
  architecture or a wrong layer mapping cannot reproduce the outputs by accident.
* ``<name>.reference.npz``: outputs of the reloaded fp32 model in eval mode for two deterministic inputs.
* ``<name>.reference.json``: versions, inputs, parameter count, state-dict keys/shapes, model yaml, names.
* ``zoo_counts.json``: parameter counts and GFLOPs (as ultralytics reports them) for the nc=80 model zoo.
* ``yolo12n-cls_nc3.*``: the same for ultralytics' YOLO12n classifier (``yolo12n-cls.yaml``, nc=3), whose
  BatchNorms keep PyTorch's eps 1e-5 / momentum 0.1 (ultralytics sets 1e-3 / 0.03 on detection models only). Its
  ``.reference.npz`` holds the softmax probabilities, the logits and the first block's output in float64 and
  float32 (``--only yolo12n-cls_nc3 --skip-zoo`` writes just this fixture).

The turbo-layout YOLOv12 (official sunsmarterjie/yolov12 ``main`` branch) is not on PyPI. Its area-attention
blocks (AAttn / ABlock / A2C2f with ``qk`` + ``v`` convolutions) are read from a file given by
``--official-blocks`` that lives OUTSIDE this repository; without it the turbo fixtures are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import importlib.util
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # never reach for the network
os.environ.setdefault("YOLO_VERBOSE", "False")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "reference"
NAMES = {0: "person", 1: "car", 2: "dog"}
FIXTURE_DATE = "2026-01-01T00:00:00+00:00"  # checkpoint "date" field (pinned for reproducible bytes)
NC = 3
INPUTS = ((0, 640), (1, 320))  # (numpy RandomState seed, square image size)
CLASSIFIER_INPUTS = ((0, 224), (1, 64))  # the first block's output is stored for the small one only (size)
CLASSIFIER_BLOCK_INPUT = 64
CLASSIFIER_CALIB_SHAPE = (1, 3, 224, 224)

# Turbo-layout YOLOv12 (official `main` branch) written from the architecture facts in the project spec.
# Differences to ultralytics' yolo12.yaml: layer 1 Conv [128, 3, 2, 1, 2] (groups 2), layer 3 Conv
# [256, 3, 2, 1, 4] (groups 4); AAttn uses qk (C->2C) + v (C->C) + depthwise 5x5 pe on v; A2C2f at l/x
# scales uses residual=True, mlp_ratio=1.5.
TURBO_YAML = {
    "nc": 80,
    "scales": {
        "n": [0.50, 0.25, 1024],
        "s": [0.50, 0.50, 1024],
        "m": [0.50, 1.00, 512],
        "l": [1.00, 1.00, 512],
        "x": [1.00, 1.50, 512],
    },
    "backbone": [
        [-1, 1, "Conv", [64, 3, 2]],  # 0-P1/2
        [-1, 1, "Conv", [128, 3, 2, 1, 2]],  # 1-P2/4
        [-1, 2, "C3k2", [256, False, 0.25]],
        [-1, 1, "Conv", [256, 3, 2, 1, 4]],  # 3-P3/8
        [-1, 2, "C3k2", [512, False, 0.25]],
        [-1, 1, "Conv", [512, 3, 2]],  # 5-P4/16
        [-1, 4, "A2C2f", [512, True, 4]],
        [-1, 1, "Conv", [1024, 3, 2]],  # 7-P5/32
        [-1, 4, "A2C2f", [1024, True, 1]],  # 8
    ],
    "head": [
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 2, "A2C2f", [512, False, -1]],  # 11
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, 4], 1, "Concat", [1]],
        [-1, 2, "A2C2f", [256, False, -1]],  # 14
        [-1, 1, "Conv", [256, 3, 2]],
        [[-1, 11], 1, "Concat", [1]],
        [-1, 2, "A2C2f", [512, False, -1]],  # 17
        [-1, 1, "Conv", [512, 3, 2]],
        [[-1, 8], 1, "Concat", [1]],
        [-1, 2, "C3k2", [1024, True]],  # 20 (P5/32-large)
        [[14, 17, 20], 1, "Detect", ["nc"]],
    ],
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Turbo blocks: monkeypatch ultralytics with the official turbo AAttn / ABlock / A2C2f
# --------------------------------------------------------------------------------------------------------------
_TURBO_CACHE: dict = {}


def load_turbo_blocks(path: Path) -> tuple[dict, dict]:
    """Load the official turbo blocks from ``path``; returns ({name: class}, info).

    The classes get ``__module__ = 'ultralytics.nn.modules.block'`` so that checkpoints pickle them under the same
    global names as the official turbo checkpoints (``ultralytics.nn.modules.block.AAttn`` ...). Unpickling such a
    checkpoint therefore needs the same patch (``turbo_blocks``) active in the loading process.
    """
    key = str(path)
    if key in _TURBO_CACHE:
        return _TURBO_CACHE[key]
    spec = importlib.util.spec_from_file_location("official_turbo_blocks", str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    OfficialA2C2f = mod.A2C2f

    class A2C2f(OfficialA2C2f):
        """Official turbo A2C2f; maps ultralytics' L/X rule (residual, mlp_ratio 1.2) to the turbo rule (1.5).

        ultralytics.nn.tasks.parse_model appends (True, 1.2) for A2C2f at scales l/x; the official turbo
        tasks.py appends (True, 1.5). Nothing else differs; n/s/m never reach this branch.
        """

        def __init__(self, c1, c2, n=1, a2=True, area=1, residual=False, mlp_ratio=2.0, e=0.5, g=1, shortcut=True):
            if residual and mlp_ratio == 1.2:
                mlp_ratio = 1.5
            super().__init__(c1, c2, n, a2, area, residual, mlp_ratio, e, g, shortcut)

    classes = {"AAttn": mod.AAttn, "ABlock": mod.ABlock, "A2C2f": A2C2f}
    for cls in classes.values():
        cls.__module__ = "ultralytics.nn.modules.block"
        cls.__qualname__ = cls.__name__
    info = {
        "official_blocks_file": path.name,
        "official_blocks_sha256": sha256(path),
        "official_source": "sunsmarterjie/yolov12 (main, turbo) ultralytics/nn/modules/block.py: AAttn, ABlock, A2C2f",
        "patched": [
            "ultralytics.nn.modules.block.AAttn",
            "ultralytics.nn.modules.block.ABlock",
            "ultralytics.nn.modules.block.A2C2f (l/x: residual, mlp_ratio 1.5)",
        ],
    }
    _TURBO_CACHE[key] = (classes, info)
    return classes, info


@contextlib.contextmanager
def turbo_blocks(path: Path):
    """Temporarily replace ultralytics' AAttn/ABlock/A2C2f by the official turbo ones (restored on exit)."""
    import ultralytics.nn.modules as modules_pkg
    import ultralytics.nn.modules.block as block
    import ultralytics.nn.tasks as tasks

    classes, info = load_turbo_blocks(path)
    saved = []
    try:
        for name, cls in classes.items():
            for ns in (block, modules_pkg, tasks):
                if hasattr(ns, name):
                    saved.append((ns, name, getattr(ns, name)))
                    setattr(ns, name, cls)
        yield info
    finally:
        for ns, name, orig in reversed(saved):
            setattr(ns, name, orig)


# --------------------------------------------------------------------------------------------------------------
# Building, perturbing, saving
# --------------------------------------------------------------------------------------------------------------
def turbo_cfg(scale: str) -> dict:
    d = copy.deepcopy(TURBO_YAML)
    d["scale"] = scale
    d["yaml_file"] = f"yolov12{scale}-turbo.yaml"
    return d


def build_detection_model(cfg, nc: int | None, seed: int = 0):
    """Build an ultralytics DetectionModel from a yaml name or dict, seeding torch first (deterministic init)."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    return DetectionModel(cfg, nc=nc, verbose=False)


CALIB_SEED, CALIB_SHAPE = 1234, (1, 3, 640, 640)
CALIBRATE = True


def perturb(model: torch.nn.Module, seed: int = 0, calibrate: bool = True, calib_shape=CALIB_SHAPE) -> dict:
    """Deterministically randomise BatchNorm statistics/affine parameters and A2C2f gamma (layer scale).

    Draws (torch.manual_seed(seed), modules in named_modules() order): per BatchNorm2d mean noise ~ N(0, 0.1),
    variance factor ~ U(0.5, 1.5), weight ~ U(0.8, 1.2), bias ~ N(0, 0.05); per A2C2f with gamma: gamma ~ U(0.5, 1.0).

    calibrate=False applies them literally (running_mean = noise, running_var = factor). With ultralytics' default
    conv initialisation the activations then shrink layer after layer (std ~0.05 at the head inputs), so the
    outputs hardly depend on the input or on the architecture: a wrong attention layout changes the boxes by
    ~1e-4 px. calibrate=True (default) instead runs one eval-mode forward of a deterministic calibration batch in
    which a pre-hook on every BatchNorm2d measures the per-channel mean/var of the input it actually receives
    (upstream layers already final) and sets running_mean = mean + noise * sqrt(var + eps), running_var =
    var * factor just before it normalises. Every layer's activations then stay O(1) (no compounding), and the
    outputs depend strongly on the input and on every architectural detail.
    """
    bns = [m for _, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    torch.manual_seed(seed)
    draws = {}
    with torch.no_grad():
        for _, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                noise = torch.empty(c).normal_(0.0, 0.1)
                factor = torch.empty(c).uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.normal_(0.0, 0.05)
                draws[m] = (noise, factor)
            elif type(m).__name__ == "A2C2f" and getattr(m, "gamma", None) is not None:
                m.gamma.uniform_(0.5, 1.0)
    n_gamma = sum(1 for m in model.modules() if type(m).__name__ == "A2C2f" and getattr(m, "gamma", None) is not None)

    if calibrate:
        seen = set()

        def pre_hook(m, inp):
            assert m not in seen, "BatchNorm2d called twice in one forward"
            seen.add(m)
            x = inp[0].detach().double()
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            noise, factor = draws[m]
            m.running_mean.copy_((mean + noise.double() * (var + m.eps).sqrt()).float())
            m.running_var.copy_((var * factor.double()).float())
            m.num_batches_tracked.zero_()

        handles = [m.register_forward_pre_hook(pre_hook) for m in bns]
        was_training = model.training
        model.eval()
        x = torch.from_numpy(np.random.RandomState(CALIB_SEED).uniform(0, 1, calib_shape).astype(np.float32))
        try:
            with torch.no_grad():
                model(x)
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        assert len(seen) == len(bns), f"calibration reached {len(seen)} of {len(bns)} BatchNorm2d layers"
    else:
        with torch.no_grad():
            for m, (noise, factor) in draws.items():
                m.running_mean.copy_(noise)
                m.running_var.copy_(factor)
    return {
        "seed": seed,
        "mode": "calibrated" if calibrate else "literal",
        "batchnorm_layers": len(bns),
        "a2c2f_gamma_params": n_gamma,
        "rule": "torch.manual_seed(seed); for each module in named_modules() order: BatchNorm2d: noise~N(0,0.1) "
        "[C], factor~U(0.5,1.5) [C], weight~U(0.8,1.2), bias~N(0,0.05) (drawn in that order); A2C2f: "
        "gamma~U(0.5,1.0). "
        + (
            f"Then calibration: one eval-mode forward (no grad, fp32) of np.random.RandomState({CALIB_SEED})"
            f".uniform(0,1,{list(calib_shape)}).astype(float32); a forward pre-hook on each BatchNorm2d takes the "
            "per-channel mean and biased var (over N,H,W, float64) of its actual input and sets running_mean = "
            "mean + noise*sqrt(var+eps), running_var = var*factor, num_batches_tracked = 0, before it runs."
            if calibrate
            else "running_mean = noise, running_var = factor."
        ),
    }


def save_checkpoint(model, yaml_name: str, path: Path, task: str = "detect") -> None:
    """Save in genuine Ultralytics checkpoint format: Model.save() then ultralytics' strip_optimizer()."""
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.utils.torch_utils import strip_optimizer

    # ultralytics' Model() takes a path or name, not a module: make a throwaway wrapper and swap our model in
    # (built after the fixture model, so it cannot disturb the seeded initialisation).
    wrapper = YOLO("yolov8n.yaml" if task == "detect" else "yolov8n-cls.yaml", task=task, verbose=False)
    wrapper.model = model
    overrides = {"model": yaml_name, "task": task, "seed": 0, "deterministic": True}
    model.args = {**DEFAULT_CFG_DICT, **overrides}
    model.task = task
    wrapper.ckpt = {"train_args": overrides}
    wrapper.save(str(path))
    # epoch=-1, train_args, optimizer=None ... as in released weights. The date is pinned so that regenerating
    # unchanged fixtures gives byte-identical files (no churn of multi-MB blobs in git).
    strip_optimizer(str(path), updates={"date": FIXTURE_DATE})


def load_reference_model(path: Path):
    """Reload a checkpoint with ultralytics' own loader; fp32, eval mode."""
    from ultralytics.nn.tasks import load_checkpoint

    model, ckpt = load_checkpoint(str(path), device="cpu", fuse=False)
    model = model.float().eval()
    return model, ckpt


def checkpoint_facts(pt: Path, ckpt: dict, stored_dtype: str, safe_ok: bool) -> dict:
    """What every fixture's JSON records of its checkpoint file and of the software that wrote it."""
    import ultralytics

    return {
        "checkpoint": pt.name,
        "checkpoint_sha256": sha256(pt),
        "checkpoint_bytes": pt.stat().st_size,
        "checkpoint_keys": sorted(ckpt.keys()),
        "checkpoint_model_class": f"{type(ckpt['model']).__module__}.{type(ckpt['model']).__qualname__}",
        "checkpoint_model_dtype": stored_dtype,
        "ultralytics_safe_load_ok": safe_ok,
        "ultralytics_version": ultralytics.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }


def check_safe_load(path: Path) -> tuple[bool, str | None]:
    """Whether ultralytics' own restricted (weights_only + allow-list) loader accepts the checkpoint, and the
    stored dtype of the model's parameters."""
    from ultralytics.nn.tasks import torch_safe_load

    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
        ok = isinstance(ckpt.get("model"), torch.nn.Module)
        return ok, str(next(ckpt["model"].parameters()).dtype).replace("torch.", "") if ok else None
    except Exception as e:  # pragma: no cover - informational only
        log(f"  restricted load of {path.name} failed: {e}")
        return False, None


def make_input(seed: int, size: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).uniform(0, 1, (1, 3, size, size)).astype(np.float32))


def raw_level_maps(model, preds: dict, feats_shapes) -> list[np.ndarray]:
    """Per-level raw head maps (B, 4*reg_max + nc, H, W): box branch cv2[i] and class branch cv3[i] concatenated.

    ultralytics >= 8.4 returns the raw predictions as a dict {"boxes": (B, 4*reg_max, A), "scores": (B, nc, A),
    "feats": [...]}; older releases returned the per-level list [cat(cv2[i](x_i), cv3[i](x_i), 1)]. This
    rebuilds the latter from the former (and cross-checks it against the head's own branches).
    """
    head = model.model[-1]
    out, start = [], 0
    for i, (b, _, h, w) in enumerate(feats_shapes):
        n = h * w
        box = preds["boxes"][..., start : start + n].reshape(b, -1, h, w)
        cls = preds["scores"][..., start : start + n].reshape(b, -1, h, w)
        start += n
        raw = torch.cat((box, cls), 1)
        with torch.no_grad():
            direct = torch.cat((head.cv2[i](preds["feats"][i]), head.cv3[i](preds["feats"][i])), 1)
        assert torch.equal(raw, direct), "raw map reconstruction mismatch"
        out.append(raw.numpy())
    return out


def run_reference(model) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for seed, size in INPUTS:
            x = make_input(seed, size)
            res = model(x)
            y = res[0] if isinstance(res, (tuple, list)) else res
            arrays[f"out_{size}"] = y.float().numpy()
            if size == 640:
                preds = res[1]
                if isinstance(preds, dict):
                    levels = raw_level_maps(model, preds, [f.shape for f in preds["feats"]])
                else:  # older ultralytics: list of per-level maps
                    levels = [p.numpy() for p in preds]
                for name, arr in zip(("raw_p3", "raw_p4", "raw_p5"), levels):
                    arrays[name] = arr.astype(np.float32)
    return arrays


def attention_layout(model) -> str | None:
    """'qkv' (ultralytics / v1.0), 'qk+v' (official turbo) or None (no area attention)."""
    for m in model.modules():
        if type(m).__name__ == "AAttn":
            return "qk+v" if hasattr(m, "qk") else "qkv"
    return None


def make_fixture(
    name: str, cfg, yaml_name: str, out: Path, extra: dict | None = None, expect_layout: str | None = None
) -> dict:
    log(f"[{name}] building {yaml_name} nc={NC}")
    model = build_detection_model(cfg, nc=NC, seed=0)
    layout = attention_layout(model)
    assert layout in (None, expect_layout), f"{name}: attention layout {layout}, expected {expect_layout}"
    model.names = dict(NAMES)
    pert = perturb(model, seed=0, calibrate=CALIBRATE)
    pt = out / f"{name}.pt"
    save_checkpoint(model, yaml_name, pt)
    log(f"[{name}] saved {pt} ({pt.stat().st_size / 1e6:.2f} MB)")

    ref_model, ckpt = load_reference_model(pt)
    arrays = run_reference(ref_model)
    np.savez_compressed(out / f"{name}.reference.npz", **arrays)

    sd = ref_model.state_dict()
    safe_ok, stored_dtype = check_safe_load(pt)
    meta = {
        "name": name,
        **checkpoint_facts(pt, ckpt, stored_dtype, safe_ok),
        "yaml": yaml_name,
        "attention_layout": layout,
        "nc": NC,
        "names": {str(k): v for k, v in ref_model.names.items()},
        "stride": [float(s) for s in ref_model.stride],
        "perturbation": pert,
        "inputs": [
            {
                "key": f"out_{size}",
                "seed": seed,
                "shape": [1, 3, size, size],
                "recipe": "torch.from_numpy(np.random.RandomState(seed).uniform(0, 1, shape).astype(np.float32))",
            }
            for seed, size in INPUTS
        ],
        "reference_model": "ultralytics.nn.tasks.load_checkpoint(pt, fuse=False) -> .float().eval(); "
        "out_* = first element of the eval output tuple, raw_p3..raw_p5 = per-level cat(cv2[i](f), cv3[i](f)) "
        "at 640 (4*reg_max box channels then nc class logits)",
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
        "output_checksums": {
            k: {"sum": float(v.astype(np.float64).sum()), "abs_mean": float(np.abs(v).mean())}
            for k, v in arrays.items()
        },
        "parameter_count": int(sum(p.numel() for p in ref_model.parameters())),
        "state_dict": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()],
        "model_yaml": ref_model.yaml,
    }
    if extra:
        meta.update(extra)
    (out / f"{name}.reference.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    log(
        f"[{name}] params={meta['parameter_count']:,} out_640={arrays['out_640'].shape} "
        f"safe_load={meta['ultralytics_safe_load_ok']}"
    )
    return meta


# --------------------------------------------------------------------------------------------------------------
# Classification fixture
# --------------------------------------------------------------------------------------------------------------
def build_classification_model(cfg, nc: int, seed: int = 0):
    """Build an ultralytics ClassificationModel from a yaml name, seeding torch first (deterministic init)."""
    from ultralytics.nn.tasks import ClassificationModel

    torch.manual_seed(seed)
    return ClassificationModel(cfg, nc=nc, verbose=False)


def batch_norm_settings(model) -> list[list]:
    """The distinct ``[eps, momentum, count]`` of the model's BatchNorms (a state dict holds neither value)."""
    counts: dict[tuple, int] = {}
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            counts[(m.eps, m.momentum)] = counts.get((m.eps, m.momentum), 0) + 1
    return [[eps, momentum, n] for (eps, momentum), n in counts.items()]


def run_classifier_reference(model) -> dict[str, np.ndarray]:
    """Softmax probabilities and logits of each input, and the first block's output for the small input, from a
    float64 and a float32 copy of the model (the fp16 checkpoint weights are exact in both)."""
    arrays: dict[str, np.ndarray] = {}
    for suffix, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        m = copy.deepcopy(model).to(dtype).eval()
        with torch.no_grad():
            for seed, size in CLASSIFIER_INPUTS:
                x = make_input(seed, size).to(dtype)
                probs, logits = m(x)  # eval mode: (softmax probabilities, logits)
                arrays[f"probs_{size}_{suffix}"] = probs.numpy()
                arrays[f"logits_{size}_{suffix}"] = logits.numpy()
                if size == CLASSIFIER_BLOCK_INPUT:
                    arrays[f"block0_{size}_{suffix}"] = m.model[0](x).numpy()
    return arrays


def make_classification_fixture(name: str, yaml_name: str, out: Path) -> dict:
    """A perturbed nc=3 classifier checkpoint with its float64 / float32 reference outputs."""
    log(f"[{name}] building {yaml_name} nc={NC}")
    model = build_classification_model(yaml_name, nc=NC, seed=0)
    model.names = dict(NAMES)
    pert = perturb(model, seed=0, calibrate=CALIBRATE, calib_shape=CLASSIFIER_CALIB_SHAPE)
    pt = out / f"{name}.pt"
    save_checkpoint(model, yaml_name, pt, task="classify")
    log(f"[{name}] saved {pt} ({pt.stat().st_size / 1e6:.2f} MB)")

    ref_model, ckpt = load_reference_model(pt)
    arrays = run_classifier_reference(ref_model)
    np.savez_compressed(out / f"{name}.reference.npz", **arrays)
    safe_ok, stored_dtype = check_safe_load(pt)
    meta = {
        "name": name,
        **checkpoint_facts(pt, ckpt, stored_dtype, safe_ok),
        "yaml": yaml_name,
        "task": "classify",
        "attention_layout": attention_layout(ref_model),
        "nc": NC,
        "names": {str(k): v for k, v in ref_model.names.items()},
        "batch_norm": batch_norm_settings(ref_model),
        "perturbation": pert,
        "inputs": [
            {
                "seed": seed,
                "shape": [1, 3, size, size],
                "keys": [f"probs_{size}_*", f"logits_{size}_*"]
                + ([f"block0_{size}_*"] if size == CLASSIFIER_BLOCK_INPUT else []),
                "recipe": "torch.from_numpy(np.random.RandomState(seed).uniform(0, 1, shape).astype(np.float32)), "
                "then cast to the model's dtype",
            }
            for seed, size in CLASSIFIER_INPUTS
        ],
        "reference_model": "ultralytics.nn.tasks.load_checkpoint(pt, fuse=False) -> .float().eval(), then a deep "
        "copy cast to float64 (*_f64) or float32 (*_f32); probs_* and logits_* = the eval output tuple, "
        "block0_* = model.model[0](x) (Conv + BatchNorm + SiLU)",
        "arrays": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
        "parameter_count": int(sum(p.numel() for p in ref_model.parameters())),
        "state_dict": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in ref_model.state_dict().items()],
        "model_yaml": ref_model.yaml,
    }
    (out / f"{name}.reference.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    log(f"[{name}] params={meta['parameter_count']:,} batch_norm={meta['batch_norm']} safe_load={safe_ok}")
    return meta


# --------------------------------------------------------------------------------------------------------------
# Zoo counts
# --------------------------------------------------------------------------------------------------------------
def count_model(model, imgsz: int) -> dict:
    from ultralytics.utils.torch_utils import get_flops, get_num_params, model_info

    model.eval()
    rec = {"params_unfused": int(get_num_params(model)), "gflops_unfused_thop": round(get_flops(model, imgsz), 4)}
    n_l, _, _, _ = model_info(model, verbose=True, imgsz=imgsz)
    rec["layers_unfused"] = int(n_l)
    model.fuse(verbose=False)
    n_l, n_p, _, flops = model_info(model, verbose=True, imgsz=imgsz)
    attn = attention_matmul_gflops(model, imgsz)
    rec.update(
        {
            "params_fused": int(n_p),
            "gflops_fused_thop": round(float(flops), 4),
            "layers_fused": int(n_l),
            "info_line_gflops": float(f"{flops:.1f}"),
            "gflops_area_attention_matmuls": round(attn, 4),
            "gflops_fused_thop_minus_area_attention_matmuls": round(float(flops) - attn, 4),
        }
    )
    return rec


def attention_matmul_gflops(model, imgsz: int) -> float:
    """GFLOPs (2 x MACs) of the QK^T and AV matmuls of every AAttn, for one image at imgsz x imgsz.

    The ultralytics-thop installed with ultralytics 8.4.190 (2.2.3) counts these matmuls; the published YOLOv12
    figures do not, so both are recorded.
    Per AAttn with input (B, C, H, W): 2 * [area * heads * (HW/area)^2 * head_dim] MACs (QK^T and AV).
    """
    total = 0.0

    def hook(m, inp, out):
        nonlocal total
        _, _, h, w = inp[0].shape
        n = h * w // m.area
        total += 2 * 2 * m.area * m.num_heads * n * n * m.head_dim

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m).__name__ == "AAttn"]
    try:
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, imgsz, imgsz, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
    return total / 1e9


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def make_zoo(out: Path, blocks: Path | None) -> None:
    import ultralytics
    from ultralytics.nn.tasks import ClassificationModel

    zoo: dict = {
        "ultralytics_version": ultralytics.__version__,
        "torch_version": torch.__version__,
        "ultralytics_thop_version": _dist_version("ultralytics-thop"),
        "note": "nc=80 (cls: 1000) built from yaml, no weights. params_* = sum(p.numel()); gflops_* = "
        "ultralytics.utils.torch_utils.get_flops (ultralytics-thop; this version DOES count the attention matmuls) at "
        "imgsz; "
        "*_fused after DetectionModel.fuse() (Conv+BN folding) - what model.info() reports. "
        "gflops_area_attention_matmuls = 2*MACs of the AAttn QK^T and AV matmuls (in gflops_*_thop, but not in the "
        "published YOLOv12 figures); gflops_fused_thop_minus_area_attention_matmuls is comparable to those. "
        "yolo11 C2PSA attention matmuls are not separated out.",
        "imgsz_detect": 640,
        "imgsz_classify": 224,
        "models": {},
    }
    names = [f"yolov8{s}" for s in "nsmlx"] + [f"yolo11{s}" for s in "nsmlx"] + [f"yolo12{s}" for s in "nsmlx"]
    for n in names:
        torch.manual_seed(0)
        zoo["models"][n] = {"yaml": f"{n}.yaml", **count_model(build_detection_model(f"{n}.yaml", nc=None), 640)}
        log(f"[zoo] {n}: {zoo['models'][n]}")
    if blocks:
        with turbo_blocks(blocks):
            for s in "nsmlx":
                n = f"yolov12{s}-turbo"
                m = build_detection_model(turbo_cfg(s), nc=None)
                assert attention_layout(m) == "qk+v"
                zoo["models"][n] = {
                    "yaml": "turbo layout (official main), see make_ultralytics_fixtures.TURBO_YAML",
                    **count_model(m, 640),
                }
                log(f"[zoo] {n}: {zoo['models'][n]}")
    for s in "nsmlx":  # ultralytics' own yolo12-cls (differs from the official Cls branch, see spec)
        n = f"yolo12{s}-cls"
        torch.manual_seed(0)
        try:
            zoo["models"][n] = {
                "yaml": f"{n}.yaml",
                **count_model(ClassificationModel(f"{n}.yaml", verbose=False), 224),
            }
            log(f"[zoo] {n}: {zoo['models'][n]}")
        except Exception as e:  # optional
            log(f"[zoo] {n} skipped: {e}")
    (out / "zoo_counts.json").write_text(json.dumps(zoo, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument(
        "--official-blocks",
        type=Path,
        default=None,
        help="file with the official turbo AAttn/ABlock/A2C2f (kept outside this repo)",
    )
    ap.add_argument("--skip-zoo", action="store_true")
    ap.add_argument(
        "--literal-bn",
        action="store_true",
        help="apply the BN draws literally instead of calibrated (not discriminative, see perturb())",
    )
    ap.add_argument("--only", nargs="*", default=None, help="subset of fixture names to build")
    args = ap.parse_args()
    args.out = args.out.expanduser().resolve()
    if args.official_blocks:
        args.official_blocks = args.official_blocks.expanduser().resolve()

    import ultralytics  # noqa: F401  (fail early outside the venv)

    global CALIBRATE
    CALIBRATE = not args.literal_bn
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # ultralytics may write runs/ or settings next to the cwd; keep the repo clean
        try:
            _run(args)
        finally:
            os.chdir(cwd)


def _run(args) -> None:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    args.out.mkdir(parents=True, exist_ok=True)
    blocks = None
    if args.official_blocks:
        blocks = args.official_blocks
        if not blocks.is_file():
            sys.exit(f"--official-blocks {blocks} does not exist")
    else:
        log("no --official-blocks given: skipping the turbo fixtures")

    def wanted(name):
        return not args.only or name in args.only

    for name, yaml_name in (
        ("yolo12n_nc3", "yolo12n.yaml"),
        ("yolo11n_nc3", "yolo11n.yaml"),
        ("yolov8n_nc3", "yolov8n.yaml"),
    ):
        if wanted(name):
            make_fixture(name, yaml_name, yaml_name, args.out, expect_layout="qkv")
    if wanted("yolo12n-cls_nc3"):
        make_classification_fixture("yolo12n-cls_nc3", "yolo12n-cls.yaml", args.out)
    if blocks and wanted("yolov12n_turbo_nc3"):
        with turbo_blocks(blocks) as info:
            make_fixture(
                "yolov12n_turbo_nc3",
                turbo_cfg("n"),
                "yolov12n-turbo.yaml",
                args.out,
                extra={"turbo": info},
                expect_layout="qk+v",
            )
    if not args.skip_zoo:
        make_zoo(args.out, blocks)


if __name__ == "__main__":
    main()
