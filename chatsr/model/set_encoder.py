"""Set Transformer encoder for point sets of varying size (Lee et al. 2019, arXiv 1810.00825).

A batch of point sets ``(B, N, D+1)`` with rows ``[x1..xD, y]`` and a mask ``(B, N)``, True for
real points, becomes ``num_outputs`` vectors per set: the data tokens the language model reads.

Two departures from juho-lee/set_transformer, the reference implementation:

* attention logits are scaled by ``1/sqrt(head_dim)``, as in the paper and Vaswani et al., not by
  ``1/sqrt(d_model)``, which flattens every head's attention more as heads are added;
* every block takes a padding mask. Padded points get ``-inf`` logits, so neither the inducing
  points (ISAB) nor the pooling seeds (PMA) see them, and a set's output does not depend on how
  much padding its batch needed, nor on what the padding holds (NaN included).

Numeric input (`PointEmbedding`). Values span 1e-3..1e5 with both signs, and a network fed raw
floats learns mostly about their magnitude. Each value is described by three features:

* ``(v - mean) / std`` per set and column over the real points only, so that the shape of the
  data, which is what a formula has to explain, looks the same at any scale. Clipped to ±10 so an
  outlier cannot saturate the first layer. The std is floored at ``1e-6 * (1 + |mean|)``, about
  float32's relative resolution, so constant columns (the zero-padded unused x columns, sets of
  one point) give 0 and not 0/0; the statistics are computed in float64 so that they give
  exactly 0.
* ``sign(v)`` and ``log10(|v| + 1e-10) / 5`` (about -2..1 over 0..1e5): the magnitude that
  standardisation throws away but a formula often needs, e.g. whether x crosses zero (log and sqrt
  domains) or spans decades.

The ``3 (D+1)`` features go through one Linear to ``d_model``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chatsr.symbolic.validation import check_shape

__all__ = ["MAB", "SAB", "ISAB", "PMA", "PointEmbedding", "SetEncoderConfig", "SetEncoder"]

Z_CLIP = 10.0  # standardised values beyond this many stds are outliers, not shape
STD_FLOOR = 1e-6  # relative to the column's magnitude: float32 resolves nothing finer
LOG_EPS = 1e-10  # log10 of exact zeros (padded columns) stays finite
LOG_SCALE = 5.0  # brings log10 magnitudes of typical data to about ±1


@dataclass
class SetEncoderConfig:
    """Hyper-parameters of `SetEncoder`; `to_dict` / `from_dict` round-trip it (for nesting)."""

    max_dims: int = 10  # number of x columns; points have max_dims + 1 columns [x1..xD, y]
    d_model: int = 128  # width of every vector in the encoder and of its outputs
    num_heads: int = 4  # attention heads; must divide d_model
    num_inducing: int = 16  # inducing points per ISAB: attention costs O(N m), not O(N^2)
    num_isab: int = 2  # ISAB layers over the points
    num_outputs: int = 8  # k, PMA seeds = output vectors per set (data tokens for the LM)
    output_sab: bool = True  # SAB among the k outputs after pooling, as the paper's decoder
    layer_norm: bool = True  # post-LayerNorm in every MAB, as in the paper
    dropout: float = 0.0  # on attention weights and residual branches, training only

    def __post_init__(self) -> None:
        for name in ("max_dims", "d_model", "num_heads", "num_inducing", "num_outputs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_isab, int) or self.num_isab < 0:
            raise ValueError(f"num_isab must be a non-negative integer, got {self.num_isab!r}")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads, got d_model={self.d_model} and "
                f"num_heads={self.num_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> SetEncoderConfig:
        unknown = sorted(set(config) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown SetEncoderConfig field(s) {unknown} in config {config}")
        return cls(**config)


def _feed_forward(d_model: int, dropout: float) -> nn.Sequential:
    """Row-wise feed-forward (the paper's rFF) of hidden width d_model.

    It runs on every point in every layer: a hidden width of 2 d_model made the whole encoder
    about 40 % slower on CPU (batch 64 x 100 points, forward + backward).
    """
    return nn.Sequential(
        nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model),
        nn.Dropout(dropout),
    )


class MAB(nn.Module):
    """Multihead attention block ``MAB(X, Y) = LN(H + rFF(H))``, ``H = LN(X + Multihead(X, Y, Y))``.

    ``y_mask`` (B, Ny), True for real rows of ``y``, hides the other rows from every query; each
    batch row needs one True, or softmax over no keys gives NaN (`SetEncoder` checks this).
    """

    def __init__(
        self, d_model: int, num_heads: int, *, layer_norm: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        # Each head's logit sums head_dim products, so that is the width whose variance to undo.
        self.scale = self.head_dim**-0.5
        self.dropout = dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))
        self.ff = _feed_forward(d_model, dropout)
        self.ln1 = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.ln2 = nn.LayerNorm(d_model) if layer_norm else nn.Identity()

    def forward(self, x: Tensor, y: Tensor, y_mask: Tensor | None = None) -> Tensor:
        B, Nx, d = x.shape
        Ny, h = y.shape[1], self.num_heads
        q = self.q(x).view(B, Nx, h, self.head_dim).transpose(1, 2)  # (B, h, Nx, hd)
        k, v = self.kv(y).view(B, Ny, 2, h, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, h, Ny, hd)
        attn_mask = None if y_mask is None else y_mask[:, None, None, :]  # (B, 1, 1, Ny)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, scale=self.scale,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, h, Nx, hd)
        a = a.transpose(1, 2).reshape(B, Nx, d)  # (B, Nx, d)
        hidden = self.ln1(x + self.out(a))  # (B, Nx, d)
        return self.ln2(hidden + self.ff(hidden))  # (B, Nx, d)


class SAB(nn.Module):
    """Set attention block ``SAB(X) = MAB(X, X)``: O(N^2), used on the k pooled outputs."""

    def __init__(self, d_model: int, num_heads: int, **mab_options: Any) -> None:
        super().__init__()
        self.mab = MAB(d_model, num_heads, **mab_options)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(x, x, mask)  # (B, N, d)


class ISAB(nn.Module):
    """Induced set attention block ``ISAB(X) = MAB(X, MAB(I, X))`` with m learned points I."""

    def __init__(
        self, d_model: int, num_heads: int, num_inducing: int, **mab_options: Any
    ) -> None:
        super().__init__()
        inducing = nn.init.xavier_uniform_(torch.empty(num_inducing, d_model))  # (m, d)
        self.inducing = nn.Parameter(inducing[None])  # (1, m, d)
        self.mab_in = MAB(d_model, num_heads, **mab_options)
        self.mab_out = MAB(d_model, num_heads, **mab_options)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        inducing = self.inducing.expand(x.shape[0], -1, -1)  # (B, m, d)
        summary = self.mab_in(inducing, x, mask)  # (B, m, d) built from real points only
        return self.mab_out(x, summary)  # (B, N, d)


class PMA(nn.Module):
    """Pooling by multihead attention ``PMA_k(Z) = MAB(S, rFF(Z))`` with k learned seeds S."""

    def __init__(self, d_model: int, num_heads: int, num_seeds: int, **mab_options: Any) -> None:
        super().__init__()
        seeds = nn.init.xavier_uniform_(torch.empty(num_seeds, d_model))  # (k, d)
        self.seeds = nn.Parameter(seeds[None])  # (1, k, d)
        self.ff = _feed_forward(d_model, mab_options.get("dropout", 0.0))
        self.mab = MAB(d_model, num_heads, **mab_options)

    def forward(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        seeds = self.seeds.expand(z.shape[0], -1, -1)  # (B, k, d)
        return self.mab(seeds, self.ff(z), mask)  # (B, k, d)


def _check_points(points: Tensor, mask: Tensor | None, max_dims: int) -> Tensor:
    """Validate a batch of point sets and return the mask (all True when None)."""
    if not isinstance(points, Tensor) or not points.is_floating_point():
        got = points.dtype if isinstance(points, Tensor) else type(points).__name__
        raise TypeError(f"points must be a floating-point torch.Tensor, got {got}")
    check_shape("points", points.shape, ("batch", "num_points", "max_dims + 1"),
                hint="add a batch dimension with points[None] for a single set")
    B, N, C = points.shape
    if C != max_dims + 1:
        raise ValueError(
            f"points must have max_dims + 1 = {max_dims + 1} columns [x1..x{max_dims}, y], got "
            f"{C}; pad unused x columns with zeros or build the encoder with max_dims={C - 1}"
        )
    if mask is None:
        mask = torch.ones(B, N, dtype=torch.bool, device=points.device)
    elif not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"mask must be a bool torch.Tensor (True for real points), got {got}")
    else:
        check_shape("mask", mask.shape, (B, N), hint="(batch, num_points), to match points")
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"every point set needs at least one real point, but mask rows {empty} are all False "
            f"(num_points={N})"
        )
    bad = ~torch.isfinite(points) & mask[..., None]  # (B, N, C)
    if bad.any():
        b, n, c = bad.nonzero()[0].tolist()
        raise ValueError(
            f"points contain {int(bad.sum())} NaN/inf value(s) among the real points (mask True), "
            f"first points[{b}, {n}, {c}] = {points[b, n, c].item()}; drop those points or set "
            f"their mask to False"
        )
    return mask


class PointEmbedding(nn.Module):
    """Per-value features (standardised value, sign, log10 magnitude) -> Linear to ``d_model``.

    See the module docstring for why. Padding rows (mask False) may hold anything, NaN included.
    """

    def __init__(self, max_dims: int, d_model: int) -> None:
        super().__init__()
        self.max_dims = max_dims
        self.proj = nn.Linear(3 * (max_dims + 1), d_model)

    def standardize(self, points: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(v - mean) / std`` (B, N, C) per set and column over real points, clipped to ±10."""
        mask = _check_points(points, mask, self.max_dims)
        return self._standardize(points, mask)

    def _standardize(self, points: Tensor, mask: Tensor) -> Tensor:
        # float64 makes a constant column exactly constant about its mean; MPS has no float64.
        dtype = torch.float32 if points.device.type == "mps" else torch.float64
        m = mask[..., None]  # (B, N, 1)
        v = points.to(dtype).masked_fill(~m, 0.0)  # (B, N, C)
        count = m.sum(dim=1, keepdim=True)  # (B, 1, 1)
        mean = v.sum(dim=1, keepdim=True) / count  # (B, 1, C)
        centred = (v - mean).masked_fill(~m, 0.0)  # (B, N, C)
        var = centred.square().sum(dim=1, keepdim=True) / count  # (B, 1, C)
        # Floor the variance, not the std: sqrt'(0) = inf would turn the zero gradient of a
        # floored constant column into NaN.
        var = torch.maximum(var, (STD_FLOOR * (1.0 + mean.abs())).square())  # (B, 1, C)
        return (centred / var.sqrt()).clamp(-Z_CLIP, Z_CLIP).to(points.dtype)  # (B, N, C)

    def forward(self, points: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = _check_points(points, mask, self.max_dims)
        v = points.masked_fill(~mask[..., None], 0.0)  # (B, N, C)
        magnitude = torch.log10(v.abs() + LOG_EPS) / LOG_SCALE  # (B, N, C)
        z = self._standardize(v, mask)  # (B, N, C)
        features = torch.cat([z, v.sign(), magnitude], dim=-1)  # (B, N, 3C)
        features = features.masked_fill(~mask[..., None], 0.0)  # (B, N, 3C)
        return self.proj(features.to(self.proj.weight.dtype))  # (B, N, d)


class SetEncoder(nn.Module):
    """PointEmbedding -> ISAB x num_isab -> PMA(num_outputs) -> optional SAB.

    Permutation invariant, and blind to padding points (mask False).

    Examples
    --------
    >>> encoder = SetEncoder(SetEncoderConfig(max_dims=2, d_model=32, num_outputs=4))
    >>> points = torch.randn(3, 50, 3)  # 3 sets of 50 points [x1, x2, y]
    >>> mask = torch.ones(3, 50, dtype=torch.bool)
    >>> mask[0, 30:] = False  # the first set has only 30 points
    >>> encoder(points, mask).shape
    torch.Size([3, 4, 32])
    """

    def __init__(self, config: SetEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else SetEncoderConfig()
        d, h = config.d_model, config.num_heads
        options: dict[str, Any] = {"layer_norm": config.layer_norm, "dropout": config.dropout}
        self.embed = PointEmbedding(config.max_dims, d)
        self.isabs = nn.ModuleList(
            ISAB(d, h, config.num_inducing, **options) for _ in range(config.num_isab)
        )
        self.pma = PMA(d, h, config.num_outputs, **options)
        self.sab = SAB(d, h, **options) if config.output_sab else None

    def forward(self, points: Tensor, mask: Tensor | None = None) -> Tensor:
        """Encode ``points`` (B, N, max_dims + 1) with ``mask`` (B, N) to (B, num_outputs, d)."""
        mask = _check_points(points, mask, self.config.max_dims)
        x = self.embed(points, mask)  # (B, N, d)
        for isab in self.isabs:
            x = isab(x, mask)  # (B, N, d)
        out = self.pma(x, mask)  # (B, k, d)
        if self.sab is not None:
            out = self.sab(out)  # (B, k, d)
        return out
