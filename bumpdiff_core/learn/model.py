"""The conditional UNet: sinusoidal(t) + sinusoidal(x) + sinusoidal(y) -> FiLM in every block.

Two ways (x, y) enter (`conditioning` in the config):

- ``global`` (default): one conditioning vector from t, x and y; each block's FiLM adds the same
  (scale, shift) at every pixel, so the network must learn where to put the bump.
- ``separable``: the conditioning vector carries t only. x reaches the network only through
  column-indexed features (one per image column, computed from x and that column's position) and
  y only through row-indexed ones; each block's FiLM adds a spatial (scale, shift) whose value at
  (row i, column j) is r_c(y)[i] * c_c(x)[j] per channel c: rank 1, an outer product. x and y
  are factorised by construction (the positive control for "x and y are learned separately").

Blocks in forward order carry stable names, and also positional aliases layer1..layer(2L+2):

    stem, down1 .. downL, mid, up1 .. upL        (L = len(channel_mults), 3 by default)

With three levels, "layer 4" is `down3`: the output of the last encoder block before the
bottleneck, the position that the 4th block (inc, down1, down2, down3) has in the common
`UNet_conditional` design the paper's UNet most likely follows. See `tap_layer` in the config.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from bumpdiff_core.config import RunConfig, tap_layer_names


def sinusoidal(values: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    """Transformer-style encoding of continuous scalars; periods from 2*pi to max_period*2*pi."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half)
    angles = values.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, FiLM (scale, shift) from the conditioning vector in between.

    With `separable`, the FiLM also gets a spatial (scale, shift): per channel the outer product
    of a row profile (from the row features, i.e. from y) and a column profile (from x)."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, separable: bool = False):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * out_ch)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        # created after the global layers, so a global model's initial weights are unchanged
        self.row_film = nn.Linear(cond_dim, 2 * out_ch) if separable else None
        self.column_film = nn.Linear(cond_dim, 2 * out_ch) if separable else None

    def spatial_modulation(self, axes) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift), each (B, C, H, W) = row profile (B, C, H, 1) * column profile (B, C, 1, W).

        `axes` = (row features (B, H, D) from y, column features (B, W, D) from x)."""
        rows, columns = axes
        r = self.row_film(rows).transpose(1, 2)        # (B, 2C, H)
        c = self.column_film(columns).transpose(1, 2)  # (B, 2C, W)
        return (r[:, :, :, None] * c[:, :, None, :]).chunk(2, dim=1)

    def forward(self, h, cond, axes=None):
        out = self.conv1(F.silu(self.norm1(h)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        if self.row_film is not None:
            spatial_scale, spatial_shift = self.spatial_modulation(axes)
            scale, shift = scale + spatial_scale, shift + spatial_shift
        out = self.norm2(out) * (1 + scale) + shift
        out = self.conv2(F.silu(out))
        return out + self.skip(h)


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = _norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, h):
        b, c, hh, ww = h.shape
        seq = self.norm(h).flatten(2).transpose(1, 2)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return h + out.transpose(1, 2).reshape(b, c, hh, ww)


class Stage(nn.Module):
    """ResBlocks (+ optional self-attention) at one resolution: one named, tappable block."""

    def __init__(self, in_ch, out_ch, cond_dim, n_blocks, attention, separable=False):
        super().__init__()
        self.blocks = nn.ModuleList(
            [ResBlock(in_ch if i == 0 else out_ch, out_ch, cond_dim, separable) for i in range(n_blocks)])
        self.attn = SelfAttention(out_ch) if attention else None

    def forward(self, h, cond, axes=None):
        for block in self.blocks:
            h = block(h, cond, axes)
        return self.attn(h) if self.attn is not None else h


class AxisFeatures(nn.Module):
    """Features of one image axis for one coordinate: (B,) values v and the L pixel positions u
    of a block's rows (or columns) -> (B, L, D) = MLP(sinusoidal(v), sinusoidal(u)). Position u is
    in input pixels (a row of a block at stride s covers input rows s*i .. s*i + s - 1, centre
    s*i + (s - 1) / 2), so one MLP serves every resolution."""

    def __init__(self, emb_dim: int, out_dim: int, image_size: int):
        super().__init__()
        self.emb_dim, self.image_size = emb_dim, image_size
        self.mlp = nn.Sequential(nn.Linear(2 * emb_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, values: torch.Tensor, length: int) -> torch.Tensor:
        n = self.image_size
        stride = n / length
        positions = torch.arange(length, dtype=torch.float32, device=values.device) * stride + (stride - 1) / 2
        v = sinusoidal(values, self.emb_dim, float(n))      # (B, E)
        u = sinusoidal(positions, self.emb_dim, float(n))   # (L, E)
        pairs = torch.cat([v[:, None, :].expand(-1, length, -1), u[None, :, :].expand(len(values), -1, -1)], dim=2)
        return self.mlp(pairs)


CONDITIONINGS = ("global", "separable")


class ConditionalUNet(nn.Module):
    def __init__(self, config: RunConfig):
        super().__init__()
        c = config
        self.image_size = c.image_size
        self.coord_channels = c.coord_channels
        self.conditioning = c.conditioning
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}; got {self.conditioning!r}")
        separable = self.conditioning == "separable"
        self.emb_dim = max(32, c.base_channels * 2)
        cond_dim = 4 * c.base_channels
        # separable: the global vector carries the timestep only
        self.cond_mlp = nn.Sequential(nn.Linear((1 if separable else 3) * self.emb_dim, cond_dim), nn.SiLU(),
                                      nn.Linear(cond_dim, cond_dim))
        widths = [c.base_channels * m for m in c.channel_mults]
        levels = len(widths)
        in_channels = 1 + (2 if c.coord_channels else 0)
        self.stem = nn.Conv2d(in_channels, c.base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = c.base_channels
        for i, w in enumerate(widths):
            self.down.append(Stage(prev, w, cond_dim, c.blocks_per_level, (i + 1) in c.attention_levels, separable))
            self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1) if i < levels - 1 else nn.Identity())
            prev = w
        self.mid = Stage(prev, prev, cond_dim, 1, levels in c.attention_levels, separable)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(levels)):  # up1 is the deepest
            w = widths[i]
            self.up.append(Stage(prev + w, w, cond_dim, c.blocks_per_level, (i + 1) in c.attention_levels, separable))
            self.upsample.append(nn.Conv2d(w, widths[i - 1], 3, padding=1) if i > 0 else nn.Identity())
            prev = widths[i - 1] if i > 0 else w
        self.out_norm = _norm(prev)
        self.out_conv = nn.Conv2d(prev, 1, 3, padding=1)
        self.tap_names = tap_layer_names(levels)
        if separable:  # y -> one feature per row, x -> one per column
            self.row_features = AxisFeatures(self.emb_dim, cond_dim, c.image_size)
            self.column_features = AxisFeatures(self.emb_dim, cond_dim, c.image_size)

    def condition(self, t, xy):
        """The global conditioning vector (B, cond_dim): from t, x and y; from t only when separable."""
        if self.conditioning == "separable":
            return self.cond_mlp(sinusoidal(t, self.emb_dim, 10000.0))
        n = self.image_size
        # x and y span 0..N: wavelengths from 2*pi px to 2*pi*N px, so no dimension is wasted on
        # waves far longer than the image (16*N instead slowed phase B -> C ~1.5x in our tuning)
        emb = torch.cat([sinusoidal(t, self.emb_dim, 10000.0),
                         sinusoidal(xy[:, 0], self.emb_dim, float(n)),
                         sinusoidal(xy[:, 1], self.emb_dim, float(n))], dim=1)
        return self.cond_mlp(emb)

    def axis_features(self, xy, height: int, width: int):
        """Separable only: (row features (B, H, D) from y, column features (B, W, D) from x)."""
        return self.row_features(xy[:, 1], height), self.column_features(xy[:, 0], width)

    def forward(self, x, t, xy, taps: dict | None = None):
        """Predict the noise. When `taps` is a dict, every named block's output is stored in it."""
        def tap(name, h):
            if taps is not None:
                taps[name] = h
            return h

        cond = self.condition(t, xy)
        cache: dict = {}

        def axes(h):  # the separable features at h's resolution (None for global conditioning)
            if self.conditioning != "separable":
                return None
            size = tuple(h.shape[-2:])
            if size not in cache:
                cache[size] = self.axis_features(xy, *size)
            return cache[size]

        if self.coord_channels:
            grid = torch.linspace(-1, 1, self.image_size, device=x.device)
            gy, gx = torch.meshgrid(grid, grid, indexing="ij")
            x = torch.cat([x, gx.expand(x.shape[0], 1, -1, -1), gy.expand(x.shape[0], 1, -1, -1)], dim=1)
        h = tap("stem", self.stem(x))
        skips = []
        for i, (stage, down) in enumerate(zip(self.down, self.downsample)):
            h = tap(f"down{i + 1}", stage(h, cond, axes(h)))
            skips.append(h)
            h = down(h)
        h = tap("mid", self.mid(h, cond, axes(h)))
        for i, (stage, up) in enumerate(zip(self.up, self.upsample)):
            h = torch.cat([h, skips.pop()], dim=1)
            h = tap(f"up{i + 1}", stage(h, cond, axes(h)))
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out_conv(F.silu(self.out_norm(h)))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
