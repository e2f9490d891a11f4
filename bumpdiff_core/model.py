"""The conditional UNet: sinusoidal(t) + sinusoidal(x) + sinusoidal(y) -> FiLM in every block.

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

from .config import RunConfig, tap_layer_names


def sinusoidal(values: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    """Transformer-style encoding of continuous scalars; periods from 2*pi to max_period*2*pi."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half)
    angles = values.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, FiLM (scale, shift) from the conditioning vector in between."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * out_ch)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, h, cond):
        out = self.conv1(F.silu(self.norm1(h)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
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

    def __init__(self, in_ch, out_ch, cond_dim, n_blocks, attention):
        super().__init__()
        self.blocks = nn.ModuleList(
            [ResBlock(in_ch if i == 0 else out_ch, out_ch, cond_dim) for i in range(n_blocks)])
        self.attn = SelfAttention(out_ch) if attention else None

    def forward(self, h, cond):
        for block in self.blocks:
            h = block(h, cond)
        return self.attn(h) if self.attn is not None else h


class ConditionalUNet(nn.Module):
    def __init__(self, config: RunConfig):
        super().__init__()
        c = config
        self.image_size = c.image_size
        self.coord_channels = c.coord_channels
        self.emb_dim = max(32, c.base_channels * 2)
        cond_dim = 4 * c.base_channels
        self.cond_mlp = nn.Sequential(nn.Linear(3 * self.emb_dim, cond_dim), nn.SiLU(),
                                      nn.Linear(cond_dim, cond_dim))
        widths = [c.base_channels * m for m in c.channel_mults]
        levels = len(widths)
        in_channels = 1 + (2 if c.coord_channels else 0)
        self.stem = nn.Conv2d(in_channels, c.base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = c.base_channels
        for i, w in enumerate(widths):
            self.down.append(Stage(prev, w, cond_dim, c.blocks_per_level, (i + 1) in c.attention_levels))
            self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1) if i < levels - 1 else nn.Identity())
            prev = w
        self.mid = Stage(prev, prev, cond_dim, 1, levels in c.attention_levels)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(levels)):  # up1 is the deepest
            w = widths[i]
            self.up.append(Stage(prev + w, w, cond_dim, c.blocks_per_level, (i + 1) in c.attention_levels))
            self.upsample.append(nn.Conv2d(w, widths[i - 1], 3, padding=1) if i > 0 else nn.Identity())
            prev = widths[i - 1] if i > 0 else w
        self.out_norm = _norm(prev)
        self.out_conv = nn.Conv2d(prev, 1, 3, padding=1)
        self.tap_names = tap_layer_names(levels)

    def condition(self, t, xy):
        n = self.image_size
        # x and y span 0..N: wavelengths from 2*pi px to 2*pi*N px, so no dimension is wasted on
        # waves far longer than the image (16*N instead slowed phase B -> C ~1.5x in our tuning)
        emb = torch.cat([sinusoidal(t, self.emb_dim, 10000.0),
                         sinusoidal(xy[:, 0], self.emb_dim, float(n)),
                         sinusoidal(xy[:, 1], self.emb_dim, float(n))], dim=1)
        return self.cond_mlp(emb)

    def forward(self, x, t, xy, taps: dict | None = None):
        """Predict the noise. When `taps` is a dict, every named block's output is stored in it."""
        def tap(name, h):
            if taps is not None:
                taps[name] = h
            return h

        cond = self.condition(t, xy)
        if self.coord_channels:
            grid = torch.linspace(-1, 1, self.image_size, device=x.device)
            gy, gx = torch.meshgrid(grid, grid, indexing="ij")
            x = torch.cat([x, gx.expand(x.shape[0], 1, -1, -1), gy.expand(x.shape[0], 1, -1, -1)], dim=1)
        h = tap("stem", self.stem(x))
        skips = []
        for i, (stage, down) in enumerate(zip(self.down, self.downsample)):
            h = tap(f"down{i + 1}", stage(h, cond))
            skips.append(h)
            h = down(h)
        h = tap("mid", self.mid(h, cond))
        for i, (stage, up) in enumerate(zip(self.up, self.upsample)):
            h = tap(f"up{i + 1}", stage(torch.cat([h, skips.pop()], dim=1), cond))
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out_conv(F.silu(self.out_norm(h)))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
