"""Dynamic Head v3: routing gates, Detect's output contract, bias init, loss compatibility."""

from __future__ import annotations

import math

import torch

from yolov12.engine.losses import DetectionLoss
from yolov12.nn.conv import Conv
from yolov12.nn.dyhead import DyHeadV3, MultiPathAttention, RoutedPaths, SharedConvLevelNorm
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
        if not param.requires_grad:  # the DFL projection is fixed
            continue
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        if ".norms." not in name:  # a level's box-path norms see gradients only where that level has positives
            assert param.grad.abs().sum() > 0, name


def test_every_parameter_shapes_some_output() -> None:
    """Each per-level norm and every gate reaches the maps (nothing is dead at initialisation)."""
    torch.manual_seed(0)
    head = DyHeadV3(3, (16, 32, 64))
    head.stride = torch.tensor([8.0, 16.0, 32.0])
    sum(m.square().sum() for m in head.train()(_features())).backward()
    for name, param in head.named_parameters():
        assert not param.requires_grad or param.grad is not None and param.grad.abs().sum() > 0, name


def test_attention_gates_start_at_one_and_stay_in_range() -> None:
    """At initialisation every gate is ~1 (features pass unchanged); trained gates stay inside (0, 2)."""
    torch.manual_seed(0)
    attention = MultiPathAttention(16)
    f = torch.randn(2, 16, 6, 6)
    for gate in attention.gates(f).values():
        torch.testing.assert_close(gate, torch.ones_like(gate), atol=0.05, rtol=0)
    with torch.no_grad():
        for p in attention.parameters():
            p.normal_(0, 5)
    for gate in attention.gates(f * 10).values():
        assert (gate >= 0).all() and (gate <= 2).all()


def test_tower_kernels_are_shared_and_normalisation_is_per_level() -> None:
    head = DyHeadV3(4, (16, 32, 64), depth=2)
    assert head.box_tower is not head.cls_tower  # one tower per task, each shared by the levels
    for tower in (head.box_tower, head.cls_tower):
        assert len(tower.layers) == 2
        for layer in tower.layers:
            assert isinstance(layer.conv, torch.nn.Conv2d) and layer.conv.kernel_size == (3, 3)
            assert len(layer.norms) == head.nl
    for routed in (head.box_paths, head.cls_paths):
        assert all(len(p.norms) == head.nl for p in routed.pointwise)


def test_routed_paths_are_residual() -> None:
    """With every path's output zeroed (BN scale 0, shift 0) the routing block passes its input through."""
    routing = RoutedPaths(8, levels=2, paths=2).eval()
    with torch.no_grad():
        for pointwise in routing.pointwise:
            for norm in pointwise.norms:
                norm.weight.zero_()
                norm.bias.zero_()
    f = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(routing(f, 1), f)


def test_fuse_folds_each_levels_norm_and_keeps_outputs() -> None:
    torch.manual_seed(0)
    head = DyHeadV3(5, (16, 32, 64))
    head.stride = torch.tensor([8.0, 16.0, 32.0])
    for module in head.modules():  # non-trivial statistics per level, so a fold with the wrong level shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 1.5)
            module.running_mean.normal_(0, 0.2)
            module.weight.data.uniform_(0.5, 1.5)
    head.eval()
    features = _features()
    with torch.no_grad():
        before = head(features)
        for module in list(head.modules()):
            if isinstance(module, (Conv, SharedConvLevelNorm)):
                module.fuse()
        after = head(features)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in head.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
