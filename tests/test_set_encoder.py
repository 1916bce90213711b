# Speed, measured while writing this module (torch 2.13 CPU, torch.set_num_threads(2), default
# SetEncoderConfig, 640 k parameters): forward + backward on batch 64 x 100 points x 4 columns
# (max_dims=3) takes ~145 ms median, i.e. ~440 samples/s for the encoder alone; forward only ~45 ms.
# max_dims=10 (11 columns, 7 of them zero-padded) costs the same.
import doctest
import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chatsr.model.set_encoder as set_transformer
from chatsr.model.set_encoder import (
    ISAB,
    MAB,
    PMA,
    SAB,
    PointEmbedding,
    SetEncoder,
    SetEncoderConfig,
)

MAX_DIMS = 3
C = MAX_DIMS + 1


def tiny_encoder(**overrides) -> SetEncoder:
    torch.manual_seed(0)
    options = dict(max_dims=MAX_DIMS, d_model=16, num_heads=2, num_inducing=4, num_isab=2,
                   num_outputs=3)
    return SetEncoder(SetEncoderConfig(**{**options, **overrides})).eval()


@functools.cache
def shared_encoder() -> SetEncoder:
    """One encoder for property tests, which call it many times."""
    return tiny_encoder()


def mixed_magnitudes(*shape: int, seed: int = 0) -> torch.Tensor:
    """Values of both signs with magnitudes log-uniform in 1e-3..1e5."""
    rng = np.random.default_rng(seed)
    values = rng.choice([-1.0, 1.0], size=shape) * 10 ** rng.uniform(-3, 5, size=shape)
    return torch.tensor(values, dtype=torch.float32)


def test_doctest_example_runs():
    assert doctest.testmod(set_transformer, raise_on_error=True).attempted > 0


def test_output_shape_and_default_config():
    encoder = tiny_encoder()
    out = encoder(torch.randn(5, 20, C), torch.ones(5, 20, dtype=torch.bool))  # (B, k, d)
    assert out.shape == (5, 3, 16)
    assert encoder(torch.randn(5, 20, C)).shape == (5, 3, 16)  # mask=None: all points real
    config = SetEncoderConfig()
    assert (config.max_dims, config.d_model, config.num_heads) == (10, 128, 4)
    assert (config.num_inducing, config.num_isab, config.num_outputs) == (16, 2, 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_invariance(seed):
    encoder = tiny_encoder()
    torch.manual_seed(seed)
    points = torch.randn(4, 30, C)
    mask = torch.rand(4, 30) < 0.7
    mask[:, 0] = True
    perm = torch.randperm(30)
    expected = encoder(points, mask)
    torch.testing.assert_close(encoder(points[:, perm], mask[:, perm]), expected,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer_norm", [True, False])
def test_padding_does_not_change_the_output(layer_norm):
    encoder = tiny_encoder(layer_norm=layer_norm)
    points = torch.randn(2, 25, C)
    garbage = torch.tensor([float("nan"), float("inf"), -1e30, 7.0]).repeat(2, 10, 1)  # (2, 10, C)
    padded = torch.cat([points, garbage], dim=1)  # (2, 35, C)
    mask = torch.cat([torch.ones(2, 25, dtype=torch.bool), torch.zeros(2, 10, dtype=torch.bool)], 1)
    torch.testing.assert_close(encoder(padded, mask), encoder(points), atol=1e-5, rtol=1e-5)


def test_set_alone_equals_set_in_padded_batch():
    encoder = tiny_encoder()
    small, large = torch.randn(1, 8, C), torch.randn(1, 40, C)
    batch = torch.cat([torch.cat([small, torch.randn(1, 32, C)], dim=1), large])  # (2, 40, C)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[0, 8:] = False
    out = encoder(batch, mask)
    torch.testing.assert_close(out[:1], encoder(small), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1:], encoder(large), atol=1e-5, rtol=1e-5)


def test_standardisation_is_scale_free_but_magnitude_is_kept():
    embed = PointEmbedding(MAX_DIMS, 16)
    points = torch.randn(3, 50, C)
    scaled = points.clone()
    scaled[..., 1] *= 1000.0
    torch.testing.assert_close(embed.standardize(scaled), embed.standardize(points),
                               atol=1e-5, rtol=1e-5)
    # The log/sign features still tell the two apart.
    assert not torch.allclose(embed(scaled), embed(points))


def test_standardisation_uses_real_points_only():
    embed = PointEmbedding(MAX_DIMS, 16)
    points = 1e4 + 5.0 * torch.randn(2, 40, C, dtype=torch.float64)
    points[:, 30:] = -1e6  # padding far from the data must not shift mean or std
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[:, 30:] = False
    z = embed.standardize(points, mask)  # (B, N, C)
    torch.testing.assert_close(z[:, :30].mean(dim=1), torch.zeros(2, C, dtype=torch.float64))
    torch.testing.assert_close(z[:, :30].std(dim=1, unbiased=False),
                               torch.ones(2, C, dtype=torch.float64))


def test_constant_columns_standardise_to_zero_and_outliers_are_clipped():
    embed = PointEmbedding(MAX_DIMS, 16)
    points = torch.randn(1, 1000, C)
    points[..., 0] = 0.0  # a zero-padded unused x column
    points[..., 1] = 12345.678  # a constant column of large magnitude
    points[0, 0, 2] = 1e5  # one outlier among N(0, 1) values
    z = embed.standardize(points)
    assert torch.equal(z[..., :2], torch.zeros_like(z[..., :2]))
    assert z[0, 0, 2] == set_transformer.Z_CLIP


def test_attention_is_scaled_by_head_width():
    torch.manual_seed(0)
    mab = MAB(d_model=16, num_heads=4).eval()
    assert mab.head_dim == 4
    assert mab.scale == pytest.approx(1 / 4**0.5)  # 1 / sqrt(head_dim), not 1 / sqrt(d_model)
    x, y = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    y_mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    # Attention written out by hand, heads split explicitly.
    q = mab.q(x).view(2, 5, 4, 4).transpose(1, 2)  # (B, h, Nx, hd)
    k, v = mab.kv(y).view(2, 7, 2, 4, 4).permute(2, 0, 3, 1, 4)  # (B, h, Ny, hd)
    logits = q @ k.transpose(-1, -2) / 4**0.5  # (B, h, Nx, Ny)
    logits = logits.masked_fill(~y_mask[:, None, None, :], float("-inf"))
    a = (logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 16)  # (B, Nx, d)
    hidden = mab.ln1(x + mab.out(a))
    expected = mab.ln2(hidden + mab.ff(hidden))
    torch.testing.assert_close(mab(x, y, y_mask), expected, atol=1e-5, rtol=1e-5)


def test_blocks_hide_masked_points():
    torch.manual_seed(0)
    x = torch.randn(1, 9, 16)
    mask = torch.tensor([[True] * 6 + [False] * 3])
    for block in (SAB(16, 2), ISAB(16, 2, num_inducing=3), PMA(16, 2, num_seeds=2)):
        block.eval()
        full, real = block(x, mask), block(x[:, :6])
        if not isinstance(block, PMA):  # per-point outputs: compare the real points
            full = full[:, :6]
        torch.testing.assert_close(full, real, atol=1e-5, rtol=1e-5)


def test_outputs_finite_for_mixed_magnitudes_and_zero_padded_columns():
    encoder = tiny_encoder()
    points = mixed_magnitudes(4, 60, C)
    points[..., 1] = 0.0  # unused x column, zero-padded as in the data format
    out = encoder(points)
    assert torch.isfinite(out).all()
    assert torch.isfinite(encoder.embed(points)).all()


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1e5, 1e5, width=32), min_size=C, max_size=40 * C),
    constant_column=st.integers(0, C - 1),
)
def test_any_finite_values_give_finite_output(values, constant_column):
    encoder = shared_encoder()
    n = len(values) // C
    points = torch.tensor(values[: n * C], dtype=torch.float32).view(1, n, C)
    points[..., constant_column] = points[0, 0, constant_column]
    assert torch.isfinite(encoder(points)).all()


def test_gradients_flow_and_are_finite_with_padding_and_constant_columns():
    encoder = tiny_encoder().train()
    points = mixed_magnitudes(3, 20, C, seed=1)
    points[..., 0] = 0.0
    points[:, 15:] = float("nan")  # padding holds anything
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[:, 15:] = False
    points.requires_grad_(True)
    encoder(points, mask).square().mean().backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    assert torch.isfinite(points.grad).all()
    assert torch.equal(points.grad[:, 15:], torch.zeros_like(points.grad[:, 15:]))


def test_dropout_only_in_training():
    encoder = tiny_encoder(dropout=0.5)
    points = torch.randn(2, 10, C)
    torch.testing.assert_close(encoder(points), encoder(points))
    encoder.train()
    assert not torch.allclose(encoder(points), encoder(points))


def test_output_sab_is_optional():
    assert tiny_encoder(output_sab=False).sab is None
    assert tiny_encoder(output_sab=False)(torch.randn(2, 10, C)).shape == (2, 3, 16)


@pytest.mark.parametrize(
    ("points", "mask", "error", "match"),
    [
        (torch.randn(2, 10, 5), None, ValueError, r"max_dims \+ 1 = 4 columns.*got 5"),
        (torch.randn(10, C), None, ValueError,
         r"points must be a 3-D array of shape \(batch, num_points, max_dims \+ 1\), got "
         r"shape \(10, 4\); add a batch dimension"),
        (torch.ones(2, 10, C, dtype=torch.long), None, TypeError, "floating-point.*int64"),
        (torch.randn(2, 10, C), torch.ones(2, 11, dtype=torch.bool), ValueError,
         r"mask must be a 2-D array of shape \(2, 10\), got shape \(2, 11\); \(batch, "
         r"num_points\), to match points"),
        (torch.randn(2, 10, C), torch.ones(2, 10), TypeError, "mask must be a bool.*float32"),
        (torch.randn(2, 10, C), torch.tensor([[True] * 10, [False] * 10]), ValueError,
         r"at least one real point.*rows \[1\]"),
        (torch.randn(2, 0, C), None, ValueError, "at least one real point"),
    ],
)
def test_bad_input_errors(points, mask, error, match):
    encoder = tiny_encoder()
    with pytest.raises(error, match=match):
        encoder(points, mask)
    with pytest.raises(error, match=match):
        encoder.embed(points, mask)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_real_points_are_rejected(bad):
    points = torch.randn(2, 10, C)
    points[1, 4, 2] = bad
    with pytest.raises(ValueError, match=r"1 NaN/inf value.*points\[1, 4, 2\]"):
        tiny_encoder()(points)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"d_model": 10, "num_heads": 4}, "d_model must be divisible by num_heads"),
        ({"num_outputs": 0}, "num_outputs must be a positive integer, got 0"),
        ({"num_isab": -1}, "num_isab must be a non-negative integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_config_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        SetEncoderConfig(**overrides)


def test_config_round_trips_through_a_dict():
    config = SetEncoderConfig(d_model=64, num_outputs=8, layer_norm=False)
    assert SetEncoderConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown SetEncoderConfig field\(s\) \['width'\]"):
        SetEncoderConfig.from_dict({"width": 3})
