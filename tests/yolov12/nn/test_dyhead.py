"""Dynamic Head v3: routing gates, Detect's output contract, bias init, loss compatibility."""

from __future__ import annotations

import math

import torch

from yolov12.engine.losses import DetectionLoss
from yolov12.nn.dyhead import DyHeadV3, RoutedPaths
from yolov12.nn.heads import Detect


def _features(batch: int = 2) -> list[torch.Tensor]:
    return [torch.rand(batch, 16, 8, 8), torch.rand(batch, 32, 4, 4), torch.rand(batch, 64, 2, 2)]


def test_routing_gates_sum_to_one_per_level_and_image() -> None:
    torch.manual_seed(0)
    routing = RoutedPaths(16, levels=3, paths=3)
    with torch.no_grad():
        routing.level_logits.normal_(0, 2)
    for level in range(3):
        gates = routing.gates(torch.randn(4, 16, 5, 5) * 3, level)
        assert gates.shape == (4, 3) and (gates >= 0).all()
        torch.testing.assert_close(gates.sum(1), torch.ones(4))


def test_same_output_contract_as_detect() -> None:
    torch.manual_seed(0)
    head, reference = DyHeadV3(5, (16, 32, 64)), Detect(5, (16, 32, 64))
    for module in (head, reference):
        module.stride = torch.tensor([8.0, 16.0, 32.0])
    features = _features()
    train_maps, reference_maps = head.train()(features), reference.train()(features)
    assert [m.shape for m in train_maps] == [m.shape for m in reference_maps]
    head.eval()
    reference.eval()
    assert head(features).shape == reference(features).shape == (2, 4 + 5, 64 + 16 + 4)
    assert isinstance(head, Detect) and head.no == reference.no


def test_bias_init_matches_detect_priors() -> None:
    head = DyHeadV3(10, (16, 32, 64))
    head.stride = torch.tensor([8.0, 16.0, 32.0])
    head.initialize_biases()
    assert torch.all(head.box_pred.bias == 1.0)
    expected = [math.log(5 / 10 / (640 / s) ** 2) for s in (8, 16, 32)]
    torch.testing.assert_close(head.cls_bias.detach(), torch.tensor(expected))


def test_detection_loss_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    head = DyHeadV3(3, (16, 32, 64))
    head.stride = torch.tensor([8.0, 16.0, 32.0])
    head.initialize_biases()
    batch = {"batch_index": torch.tensor([0, 1, 1]), "classes": torch.tensor([1, 2, 0]),
             "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.3, 0.6, 0.2, 0.2], [0.7, 0.3, 0.5, 0.5]])}
    loss, parts = DetectionLoss(3, head.stride)(head.train()(_features()), batch)
    loss.backward()
    assert set(parts) == {"box", "cls", "dfl"} and torch.isfinite(loss)
    for name, param in head.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name
