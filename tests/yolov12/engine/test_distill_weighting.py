"""The gradient-aware global weight keeps |grad distill| / |grad detection| at the configured ratio."""

from __future__ import annotations

import pytest
import torch

from yolov12.engine.distill import GradientBalancer, gradient_norm


@pytest.mark.parametrize("ratio", [0.1, 2.0])
def test_adapted_weight_holds_the_gradient_norm_ratio_on_a_toy_problem(ratio: float) -> None:
    """Shared layer -> two heads trained with minibatch SGD; the distillation loss has a 25x larger raw scale.

    After a short warm-up the weighted distillation gradient is ``ratio`` times the detection gradient, on average
    and in the median step within 15 % (the EMA lags the shrinking norms a little); single steps scatter with the
    minibatch noise.
    """
    torch.manual_seed(0)
    shared = torch.nn.Linear(8, 16)
    det_head, kd_head = torch.nn.Linear(16, 1), torch.nn.Linear(16, 4)
    optimiser = torch.optim.SGD([*shared.parameters(), *det_head.parameters(), *kd_head.parameters()], lr=0.02)
    balancer = GradientBalancer(ratio, momentum=0.8)
    det_norms, kd_norms = [], []
    for step in range(150):
        x = torch.randn(32, 8)
        features = torch.relu(shared(x))
        det = (det_head(features).squeeze(1) - x.sum(1)).pow(2).mean()
        kd = 25.0 * (kd_head(features) - x[:, :4] * 3).pow(2).mean()
        g_det, g_kd = (float(gradient_norm(loss, list(shared.parameters()))) for loss in (det, kd))
        weight = balancer.update(g_det, g_kd)
        # the norm of the weighted distillation gradient, measured independently of the balancer
        applied = float(gradient_norm(weight * kd, list(shared.parameters())))
        if step >= 30:
            det_norms.append(g_det)
            kd_norms.append(applied)
        optimiser.zero_grad()
        (det + weight * kd).backward()
        optimiser.step()
    det_norms, kd_norms = torch.tensor(det_norms), torch.tensor(kd_norms)
    assert abs(float(kd_norms.mean() / det_norms.mean()) / ratio - 1) < 0.15
    assert abs(float((kd_norms / det_norms).median()) / ratio - 1) < 0.15
    assert balancer.weight < 0.2 * ratio  # the weight absorbed the 25x scale instead of a hand-tuned constant


def test_constant_mode_and_vanishing_distillation_gradient() -> None:
    assert GradientBalancer(0.5, mode="constant", constant=0.3).update(1.0, 100.0) == 0.3
    balancer = GradientBalancer(0.5, momentum=0.5)
    assert balancer.update(1.0, 0.0) == 0.0  # nothing to balance yet
    first = balancer.update(2.0, 4.0)
    assert first == pytest.approx(0.25)
    assert balancer.update(2.0, 0.0) == first  # a vanished distillation gradient leaves the weight alone
    assert balancer.update(4.0, 4.0) == pytest.approx(0.5 * 3.0 / 4.0)  # EMAs of the norms: (2+4)/2, (4+4)/2
    assert balancer.update(1e3, 1e-4) == pytest.approx(0.5 * 3.0 / 4.0)  # round-off (1e-7 relative): vanished too
    assert GradientBalancer(1.0, max_weight=10.0).update(1.0, 1e-5) == 10.0  # clipped
    with pytest.raises(ValueError, match="weighting"):
        GradientBalancer(0.5, mode="adaptive")
