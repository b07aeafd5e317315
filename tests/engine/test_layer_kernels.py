"""The native kernels of the quantized linear layers, RMS norm and rotary embedding, each against the
PyTorch path the engine takes where they cannot be built (which is also what the kernels replace)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from agentforge.engine import layers, quant
from agentforge.engine.kernels import native_ops
from agentforge.engine.quant import GROUP, SMALL_BATCH, Int4Linear, Int6Linear, Int8Linear

pytestmark = pytest.mark.skipif(native_ops() is None, reason="no C++ toolchain to build the native kernels")


def q4_1_linear(out_features: int, in_features: int, bias: bool = False) -> nn.Linear:
    """A linear layer whose weights are exactly Q4_1 blocks (q * d + m, q spanning 0..15, bfloat16 d and m)."""
    g = torch.Generator().manual_seed(1)
    q = torch.randint(0, 16, (out_features, in_features // GROUP, GROUP), generator=g)
    q[..., 0], q[..., 1] = 0, 15
    d = (torch.rand(out_features, in_features // GROUP, 1, generator=g) * 0.02 + 0.001).bfloat16().float()
    m = (torch.randn(out_features, in_features // GROUP, 1, generator=g) * 0.05).bfloat16().float()
    linear = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        linear.weight.copy_((q * d + m).view(out_features, in_features))
    return linear


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).norm() / expected.float().norm())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 2, 5, 7, SMALL_BATCH])
# groups of 32 inputs: 8 (the AVX-512 kernel takes two at a time, sixteen scales at a time), 18 (sixteen, then a
# remainder) and 3 (an odd count: the two-group step cannot pair them, the one-group kernel runs)
@pytest.mark.parametrize("in_features", [256, 576, 96])
# weight rows four at a time where the rows of x are one or two (AVX2), and 90: a thread's run ends mid-four
@pytest.mark.parametrize("out_features", [96, 90])
def test_the_int4_kernel_multiplies_q4_1_weights(dtype, rows, in_features, out_features):
    linear = q4_1_linear(out_features, in_features)
    layer = Int4Linear(linear)
    x = torch.randn(rows, in_features).to(dtype)
    with torch.inference_mode():
        got = layer(x)
        exact = F.linear(x.float(), linear.weight)
    assert got.dtype == dtype and got.shape == (rows, out_features)
    # activations quantized to int16 per group of 32: ~1e-5; a bfloat16 output is rounded (2^-9)
    assert relative_error(got, exact) < (1e-4 if dtype == torch.float32 else 4e-3)
    assert relative_error(got, exact) > 0  # the kernel really ran (the dequantized matmul is exact)


def test_the_int4_layer_keeps_leading_dimensions_and_switches_to_a_float_matmul_for_many_rows():
    linear = q4_1_linear(64, 128, bias=True)
    layer = Int4Linear(linear)
    with torch.inference_mode():
        x = torch.randn(2, 3, 128)
        assert relative_error(layer(x), F.linear(x, linear.weight, linear.bias)) < 1e-4
        x = torch.randn(SMALL_BATCH + 1, 128)  # a prompt chunk: dequantized weights, exact
        assert torch.allclose(layer(x), F.linear(x, linear.weight, linear.bias), atol=1e-5)
        assert torch.equal(layer.dequantize(torch.float32), linear.weight)


def test_without_the_kernels_the_int4_layer_computes_the_same_weights(monkeypatch):
    linear = q4_1_linear(64, 128)
    layer = Int4Linear(linear)
    native = layer.dequantize(torch.float32)
    monkeypatch.setattr(quant, "native_ops", lambda: None)
    assert torch.allclose(layer.dequantize(torch.float32), native, atol=1e-6)  # q * d + m, fused or not
    x = torch.randn(3, 128)
    with torch.inference_mode():
        assert torch.allclose(layer(x), F.linear(x, linear.weight), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 3, 6, SMALL_BATCH])
@pytest.mark.parametrize("in_features", [576, 96])
def test_the_int6_kernel_multiplies_its_dequantized_weights(monkeypatch, dtype, rows, in_features):
    torch.manual_seed(0)
    layer = Int6Linear(nn.Linear(in_features, 200, bias=False))
    native = layer.dequantize(torch.float32)
    ids = torch.tensor([5, 0, 199, 5])
    looked_up = layer.dequantize(torch.bfloat16, ids)  # an embedding lookup
    x = torch.randn(rows, in_features).to(dtype)
    with torch.inference_mode():
        got = layer(x)
        monkeypatch.setattr(quant, "native_ops", lambda: None)
        assert torch.equal(layer.dequantize(torch.float32), native)  # the same unpacking, in PyTorch
        assert torch.equal(layer.dequantize(torch.bfloat16, ids), looked_up)
        expected = layer(x)  # no kernel: the dequantized weights' matmul
    assert torch.equal(looked_up, native[ids].bfloat16())
    assert got.dtype == dtype and got.shape == (rows, 200)
    assert 0 < relative_error(got, expected) < (1e-4 if dtype == torch.float32 else 4e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_int8_kernel_matches_the_per_channel_int8_weights(dtype):
    linear = nn.Linear(192, 1000, bias=False)
    layer = Int8Linear(linear)
    dequantized = layer.values.float() * layer.scales[:, None]
    x = torch.randn(3, 192).to(dtype)
    with torch.inference_mode():
        got = layer(x)
        assert got.dtype == dtype
        assert 0 < relative_error(got, x.float() @ dequantized.T) < (1e-4 if dtype == torch.float32 else 4e-3)
        x = torch.randn(3, 100)  # not a multiple of the kernel's group: PyTorch's int8 matmul
        odd = Int8Linear(nn.Linear(100, 10))
        assert torch.allclose(odd(x), x @ (odd.values.float() * odd.scales[:, None]).T + odd.bias, atol=1e-4)


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.bfloat16, 1.6e-2)])  # bfloat16: 2 ulps
@pytest.mark.parametrize("unit_offset", [False, True])
@pytest.mark.parametrize("dim", [64, 70])  # whole vectors; a size the vector loop does not divide
def test_the_native_rms_norm_matches_pytorch(monkeypatch, dtype, rtol, unit_offset, dim):
    norm = layers.RMSNorm(dim, 1e-6, unit_offset=unit_offset).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(dim))
    x = (torch.randn(5, 3, dim) * 4).to(dtype)
    with torch.inference_mode():
        native = norm(x)
        monkeypatch.setattr(layers, "native_ops", lambda: None)
        expected = norm(x)
    assert native.dtype == dtype and torch.allclose(native.float(), expected.float(), rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_the_native_rotary_embedding_matches_pytorch(monkeypatch, dtype, atol):
    from transformers import LlamaConfig

    rope = layers.RotaryEmbedding(LlamaConfig(hidden_size=256, num_attention_heads=4, rope_theta=10000.0))
    cos, sin = rope(torch.tensor([0, 7, 300]), dtype)
    x = torch.randn(3, 5, 64).to(dtype)
    with torch.inference_mode():
        native = layers.apply_rotary(x, cos, sin)
        monkeypatch.setattr(layers, "native_ops", lambda: None)
        expected = layers.apply_rotary(x, cos, sin)
    assert native.dtype == dtype and (native.float() - expected.float()).abs().max() < atol
    assert not torch.allclose(native.float(), x.float())  # positions other than 0 really rotate


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.bfloat16, 1.6e-2)])  # bfloat16: 2 ulps
@pytest.mark.parametrize("inter", [64, 40])  # whole vectors; a remainder after them
def test_the_native_silu_times_up_matches_pytorch(monkeypatch, dtype, rtol, inter):
    torch.manual_seed(0)
    mlp = layers.MLP(32, inter, "silu").to(dtype)
    x = (torch.randn(7, 32) * 3).to(dtype)
    with torch.inference_mode():
        gate_up = torch.cat([mlp.gate_proj(x), mlp.up_proj(x)], -1)
        native = mlp(x)
        monkeypatch.setattr(layers, "native_ops", lambda: None)
        expected = mlp(x)
    # against SiLU(gate) * up in float32, rounded once: PyTorch's two ops round twice in bfloat16
    exact = (F.silu(gate_up[:, :inter].float()) * gate_up[:, inter:].float()).to(dtype)
    scale = expected.float().abs().max()  # bfloat16 roundings before down_proj spread over its sums
    assert native.dtype == dtype and (native.float() - expected.float()).abs().max() <= 2 * rtol * scale
    if native_ops() is not None:
        assert torch.allclose(native_ops().silu_mul(gate_up).float(), exact.float(), rtol=rtol, atol=1e-5)
    gate_up = torch.tensor([[-200.0, -30.0, 0.0, 30.0, 200.0] + [1.0] * 5])  # SiLU's tails: no inf, no NaN
    if native_ops() is not None:
        out = native_ops().silu_mul(gate_up)
        assert torch.allclose(out, F.silu(gate_up[:, :5]), atol=1e-6)
