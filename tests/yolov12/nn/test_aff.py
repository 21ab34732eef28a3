"""AFF fusion node: Gaussian smoothing, normalised non-negative fusion weights, resizing paths."""

from __future__ import annotations

import pytest
import torch

from yolov12.nn.aff import AFFusion, GaussianSmooth, gaussian_kernel


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7, 3.0])
def test_gaussian_kernel_sums_to_one_and_is_symmetric(sigma: float) -> None:
    kernel = gaussian_kernel(sigma)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernel, kernel.flip(0))
    torch.testing.assert_close(kernel, kernel.T)
    assert kernel[kernel.shape[0] // 2, kernel.shape[0] // 2] == kernel.max()


def test_smoothing_is_a_fixed_buffer_that_keeps_constant_images() -> None:
    smooth = GaussianSmooth(4, sigma=1.0)
    assert not list(smooth.parameters()) and "kernel" not in smooth.state_dict()
    flat = torch.full((2, 4, 9, 11), 0.7)
    torch.testing.assert_close(smooth(flat), flat)  # kernel sums to 1 and borders are replicated
    noisy = torch.rand(1, 4, 32, 32)
    assert smooth(noisy).std() < noisy.std()  # low-pass: suppresses pixel noise
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(0.0)


def test_fusion_weights_stay_non_negative_and_normalised_under_training() -> None:
    torch.manual_seed(0)
    node = AFFusion((8, 16, 4), 8, (1, 2, 0.5))
    inputs = [torch.rand(2, 8, 16, 16), torch.rand(2, 16, 8, 8), torch.rand(2, 4, 32, 32)]
    assert node(inputs).shape == (2, 8, 16, 16)
    optimiser = torch.optim.SGD([node.weight], lr=5.0)
    for _ in range(20):  # push every raw weight down hard: the normalised weights must stay a valid mixture
        optimiser.zero_grad()
        (node(inputs).sum() + node.weight.sum() * 100).backward()
        optimiser.step()
        w = node.fusion_weights()
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    assert (node.weight < 0).all()  # raw weights did go negative: normalisation is what keeps the mixture valid
    with torch.no_grad():
        node.weight.copy_(torch.tensor([3.0, -1.0, 1.0]))
    w = node.fusion_weights().detach()
    assert w[1] < 1e-3 and abs(float(w[0] / w[2]) - 3.0) < 1e-2


def test_resize_paths_and_bad_strides() -> None:
    node = AFFusion((8, 8), 8, (2, 1), sigma=0.8)
    up_path = node.resize[0]
    assert any(isinstance(m, GaussianSmooth) for m in up_path.modules())  # up-sampled inputs are smoothed
    assert isinstance(node.resize[1], torch.nn.Identity)  # same scale and width: untouched
    with pytest.raises(ValueError, match="power of two"):
        AFFusion((8, 8), 8, (3, 1))
    with pytest.raises(ValueError, match="relative strides"):
        AFFusion((8, 8), 8, (2,))
