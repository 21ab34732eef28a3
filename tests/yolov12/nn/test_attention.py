"""Area attention: SDPA path == plain softmax reference; FlashAttention path guarded with a clear reason."""

from __future__ import annotations

import pytest
import torch

from yolov12.nn.area_attention import A2C2f, AreaAttention
from yolov12.nn.attention_kernels import AttentionBackendUnavailable, attention, reference_attention


@pytest.mark.parametrize("layout", ["v1.0", "turbo"])
@pytest.mark.parametrize("area", [1, 4])
def test_sdpa_matches_softmax_reference(layout: str, area: int) -> None:
    torch.manual_seed(0)
    block = AreaAttention(dim=64, num_heads=2, area=area, layout=layout).eval()
    x = torch.randn(2, 64, 16, 12)
    with torch.no_grad():
        block.backend = "sdpa"
        fast = block(x)
        block.backend = "reference"
        slow = block(x)
    assert fast.shape == x.shape
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)


def test_kernels_agree_on_random_heads() -> None:
    torch.manual_seed(1)
    q, k, v = (torch.randn(3, 4, 50, 32) for _ in range(3))
    torch.testing.assert_close(attention(q, k, v, "sdpa"), reference_attention(q, k, v), atol=1e-5, rtol=1e-4)


def test_area_attention_is_local_to_its_stripe() -> None:
    """Changing a token in the last stripe must not change the attention output of the first stripe."""
    torch.manual_seed(2)
    block = AreaAttention(dim=32, num_heads=1, area=4, layout="turbo").eval()
    block.pe = torch.nn.Identity()  # the depth-wise position conv mixes neighbours; isolate attention
    x = torch.randn(1, 32, 8, 8)
    y = x.clone()
    y[:, :, -1, -1] += 10.0
    with torch.no_grad():
        a, b = block(x), block(y)
    torch.testing.assert_close(a[:, :, :2], b[:, :, :2])  # rows 0-1 are the first of 4 stripes of 8x8 tokens
    assert not torch.allclose(a[:, :, -2:], b[:, :, -2:])


def test_flash_backend_fails_with_one_clear_line_on_cpu() -> None:
    q = torch.randn(1, 1, 4, 32)
    with pytest.raises(AttentionBackendUnavailable) as info:
        attention(q, q, q, "flash")
    message = str(info.value)
    assert "\n" not in message
    assert "flash_attn is not installed" in message or "CUDA" in message


def test_auto_backend_runs_sdpa_on_cpu() -> None:
    q = torch.randn(1, 2, 8, 32)
    torch.testing.assert_close(attention(q, q, q, "auto"), attention(q, q, q, "sdpa"))


def test_tokens_not_divisible_by_area_is_a_clear_error() -> None:
    block = AreaAttention(dim=32, num_heads=1, area=4).eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        block(torch.randn(1, 32, 3, 3))


def test_a2c2f_hidden_width_must_hold_whole_heads() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        A2C2f(16, 40, n=1)


@pytest.mark.parametrize("layout", ["v1.0", "turbo"])
@pytest.mark.parametrize("backend", ["sdpa", "reference"])
def test_weight_gradients_have_their_parameters_strides(layout: str, backend: str) -> None:
    """DDP takes a gradient as a view of its bucket only when its strides equal the parameter's; otherwise it copies
    it every step and warns "Grad strides do not match bucket view strides"."""
    torch.manual_seed(4)
    block = AreaAttention(dim=64, num_heads=2, area=4, layout=layout).train()
    block.backend = backend
    block(torch.randn(2, 64, 16, 8)).square().sum().backward()
    mismatched = {name: (p.stride(), p.grad.stride()) for name, p in block.named_parameters()
                  if p.grad.stride() != p.stride()}
    assert not mismatched


def test_a_zoo_model_trains_with_gradients_in_their_parameters_strides() -> None:
    from yolov12.models.model import build_model
    from yolov12.models.zoo import load_architecture

    torch.manual_seed(5)
    model = build_model(load_architecture("yolov12n")).train()
    outputs = model(torch.randn(2, 3, 64, 64))
    sum(t.float().sum() for t in (outputs if isinstance(outputs, (list, tuple)) else [outputs])).backward()
    mismatched = [name for name, p in model.named_parameters() if p.grad is not None and p.grad.stride() != p.stride()]
    assert not mismatched
