"""Helpers for the export tests: models whose outputs depend on the input, exports, torch references."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from support.models import perturb_batchnorm
from torch import nn

from yolov12.export import export_model
from yolov12.infer import sample_images
from yolov12.infer.nms import non_max_suppression
from yolov12.infer.preprocess import letterbox_batch
from yolov12.models import build_model, load_architecture


def make_model(name: str, num_classes: int = 3, seed: int = 0) -> nn.Module:
    """A model with non-trivial BatchNorm statistics and a strong class branch, so scores spread over (0, 1).

    Random initialisation alone gives near-constant scores (~0.004 for every anchor), where detections after NMS
    would be decided by float32 ties.
    """
    config = load_architecture(name).with_overrides(num_classes=num_classes)
    torch.manual_seed(seed)
    model = build_model(config, names={i: f"thing{i}" for i in range(num_classes)})
    perturb_batchnorm(model, seed)
    with torch.no_grad():
        if model.task == "detect":
            for branch in model.head.cv3:
                branch[-1].weight.mul_(30.0)
                branch[-1].bias.zero_()
    return model.eval()


def make_photo_model(name: str, num_classes: int = 3, seed: int = 0, imgsz: int = 320) -> nn.Module:
    """A model whose detections depend on the photo: BatchNorm statistics measured on the letterboxed sample photos.

    (Plain random weights make every layer shrink its input, so the output is nearly the same for any image and
    full of float32 ties.) Its float32 box noise is larger (~1e-2 px against float64), so it is compared after NMS.
    """
    config = load_architecture(name).with_overrides(num_classes=num_classes)
    torch.manual_seed(seed)
    model = build_model(config, names={i: f"thing{i}" for i in range(num_classes)})
    images = torch.from_numpy(letterbox_batch(sample_photos(), imgsz).to_float_nchw())
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 1.0  # running statistics := statistics of this one batch
    model.train()
    with torch.no_grad():
        model(torch.cat((images, images.flip(3))))
    return model.eval()


def export_cached(model: nn.Module, tmp_path_factory, name: str, **settings) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    return export_model(model, output=str(folder / name), **settings)


def torch_output(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def sample_photos() -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sample_images()]


def gap_threshold(outputs: np.ndarray, per_image: int = 3, candidates: int = 100) -> float:
    """A confidence threshold in the widest gap between ranked best-class scores, below which every image keeps at
    least ``per_image`` anchors.

    Comparing detections at a threshold far from every score keeps float32 noise from deciding which anchors pass.
    """
    best = outputs[:, 4:].max(1)  # (B, A)
    ceiling = min(np.sort(row)[::-1][per_image - 1] for row in best)
    ranked = np.sort(best[best <= ceiling])[::-1][: candidates + 1]
    k = int(np.argmax(ranked[:-1] - ranked[1:]))
    return float((ranked[k] + ranked[k + 1]) / 2)


def assert_same_detections(expected: list, got: list, atol_px: float = 0.05) -> None:
    """Same number of detections, same classes, boxes within ``atol_px`` and scores within 1e-5, in order."""
    for want, have in zip(expected, got, strict=True):
        want = want.numpy() if isinstance(want, torch.Tensor) else want
        have = have.numpy() if isinstance(have, torch.Tensor) else have
        assert want.shape == have.shape, (want.shape, have.shape)
        np.testing.assert_array_equal(want[:, 5], have[:, 5])
        np.testing.assert_allclose(have[:, :4], want[:, :4], atol=atol_px, rtol=0)
        np.testing.assert_allclose(have[:, 4], want[:, 4], atol=1e-5, rtol=0)


def nms(outputs: np.ndarray, conf: float, max_det: int = 300) -> list[np.ndarray]:
    return [d.numpy() for d in non_max_suppression(outputs, conf=conf, max_det=max_det)]
