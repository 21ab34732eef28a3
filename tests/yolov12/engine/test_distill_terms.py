"""GKD building blocks: DFL-bin resampling, KL terms, per-anchor weights, fade-out, the distill config section."""

from __future__ import annotations

import pytest
import torch

from yolov12.config import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.engine.distill import anchor_weights, fade_factor
from yolov12.engine.distill.terms import (
    FeatureAdapters,
    bin_distribution,
    bin_kl,
    class_kl,
    feature_imitation,
    resampling_matrix,
)


@pytest.mark.parametrize(("source", "target"), [(16, 16), (32, 16), (8, 16), (16, 7)])
def test_reg_max_resampling_preserves_mass(source: int, target: int) -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4 * source) * 3
    probs = bin_distribution(logits, target, temperature=1.0)
    assert probs.shape == (2, 5, 4, target) and (probs >= 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 5, 4))
    torch.testing.assert_close(resampling_matrix(source, target).sum(1), torch.ones(source))


def test_resampling_keeps_the_expected_distance_in_range() -> None:
    torch.manual_seed(0)
    source = torch.randn(3, 1, 4 * 32)
    source[..., :].view(3, 1, 4, 32)[..., 14:] = -1e4  # all teacher mass below distance 14 (< 16 bins)
    teacher = bin_distribution(source, 32, 1.0)
    student_bins = bin_distribution(source, 16, 1.0)
    expected_32 = teacher @ torch.arange(32.0)
    expected_16 = student_bins @ torch.arange(16.0)
    torch.testing.assert_close(expected_16, expected_32)
    far = torch.full((1, 1, 4 * 32), -1e4)
    far.view(1, 1, 4, 32)[..., 30] = 0.0  # all mass at distance 30: clamped into the last of 16 bins
    assert torch.allclose(bin_distribution(far, 16, 1.0)[..., 15], torch.ones(1, 1, 4))


def test_kl_terms_vanish_with_zero_gradient_when_student_matches_teacher() -> None:
    torch.manual_seed(0)
    cls_logits = torch.randn(2, 6, 3, requires_grad=True)
    box_logits = torch.randn(2, 6, 64, requires_grad=True)
    for t in (1.0, 2.5):
        cls = class_kl(cls_logits, (cls_logits.detach() / t).sigmoid(), t)
        box = bin_kl(box_logits, bin_distribution(box_logits.detach(), 16, t), t)
        assert cls.abs().max() < 1e-5 and box.abs().max() < 1e-5
        grads = torch.autograd.grad((cls.sum() + box.sum()), (cls_logits, box_logits))
        assert all(g.abs().max() < 1e-6 for g in grads)
    other = class_kl(cls_logits, torch.rand(2, 6, 3), 1.0)
    assert (other > 0).all()


def test_anchor_weights_follow_confidence_and_disagreement() -> None:
    confidence = torch.tensor([[0.9, 0.9, 0.1, 0.0]])
    disagreement = torch.tensor([[0.0, 2.0, 2.0, 2.0]])
    w = anchor_weights(confidence, disagreement)
    assert w[0, 0] == 0 and w[0, 3] == 0  # agreement or an unsure teacher: no distillation
    assert w[0, 1] > w[0, 2] > 0 and not w.requires_grad


def test_feature_imitation_adapters_and_mask() -> None:
    adapters = FeatureAdapters([4, 8], [[4, 16]])
    student = [torch.rand(1, 4, 2, 2), torch.rand(1, 8, 1, 1)]
    adapted = adapters(student, 0)
    torch.testing.assert_close(adapted[0], student[0])  # equal widths start as identity
    assert adapted[1].shape == (1, 16, 1, 1)
    teacher = [student[0].clone(), torch.zeros(1, 16, 1, 1)]
    assert feature_imitation(adapted, teacher, torch.tensor([[1.0, 1, 1, 1, 0]])) == 0  # masked mismatch
    assert feature_imitation(adapted, teacher, torch.tensor([[0.0, 0, 0, 0, 1]])) > 0


def test_fade_out_over_the_last_epochs() -> None:
    assert [fade_factor(e, 10, 0) for e in range(10)] == [1.0] * 10
    factors = [fade_factor(e, 10, 3) for e in range(10)]
    assert factors[:7] == [1.0] * 7 and factors[7] > factors[8] > factors[9] > 0


def test_distill_config_section_and_flat_keys() -> None:
    assert not TrainConfig().distill.teachers  # off by default
    config = TrainConfig.from_overrides(distill={"teachers": ["t.safetensors"], "terms": ["cls", "box", "feat"],
                                                 "temperature": 3.0, "ratio": 0.25, "fade_epochs": 2})
    assert config.distill.terms == ["cls", "box", "feat"] and config.distill.ratio == 0.25
    flat = config.to_flat()
    assert flat["distill_teachers"] == ["t.safetensors"] and "teachers" not in flat
    assert TrainConfig.from_overrides(flat) == config
    cli = TrainConfig.from_overrides(distill_teachers="a.safetensors, b.pt", distill_weighting="constant")
    assert cli.distill.teachers == ["a.safetensors", "b.pt"] and cli.distill.weighting == "constant"
    with pytest.raises(ConfigError, match="distill_temperature"):
        TrainConfig.from_overrides(distill_temprature=2)
    with pytest.raises(ConfigError, match="terms"):
        TrainConfig.from_overrides(distill={"terms": ["cls", "kd"]})
