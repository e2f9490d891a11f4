"""The dataset: N x N images of one 2D Gaussian bump at (x, y), x = column, y = row, in pixels."""
from __future__ import annotations

import numpy as np
import torch

from .config import RunConfig


def centre_grid(image_size: int, increment_x: float, increment_y: float) -> np.ndarray:
    """All centres {0, dx, ..., N - dx} x {0, dy, ..., N - dy} as an (M, 2) float array of (x, y).

    Every multiple of d below N: ceil(N / d) points per axis (also when d does not divide N, e.g.
    0.65 -> 50); the tolerance keeps 32 / 0.1 = 320.00000000000006 at exactly 320.
    """
    nx = int(np.ceil(image_size / increment_x - 1e-6))
    ny = int(np.ceil(image_size / increment_y - 1e-6))
    xs = np.arange(nx) * increment_x
    ys = np.arange(ny) * increment_y
    xs = xs[xs < image_size - 1e-9]
    ys = ys[ys < image_size - 1e-9]
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def render_bumps(centres, image_size: int, sigma: float) -> torch.Tensor:
    """Bright bumps exp(-r^2 / 2 sigma^2) mapped from [0, 1] to [-1, 1]; shape (B, 1, N, N).

    Separable: the bump is the outer product of a 1D Gaussian in y and one in x, so rendering a
    batch costs O(B N) exponentials instead of O(B N^2).
    """
    c = torch.as_tensor(np.asarray(centres, dtype=np.float32))
    grid = torch.arange(image_size, dtype=torch.float32)
    gx = torch.exp(-((grid[None, :] - c[:, 0:1]) ** 2) / (2 * sigma**2))  # (B, N) over columns
    gy = torch.exp(-((grid[None, :] - c[:, 1:2]) ** 2) / (2 * sigma**2))  # (B, N) over rows
    img = gy[:, :, None] * gx[:, None, :]
    return (img * 2 - 1).unsqueeze(1)


def render_factorized(centre, image_size: int, sigma: float, width_ratio: float = 6.0):
    """Fig. 1: the two oval bumps (localised in x only, in y only) and their product.

    Returns (x_oval, y_oval, product), each (N, N) in [0, 1]. The product of the two ovals is the
    bump: a model could learn x and y separately (O(2K) examples) and intersect them.
    """
    grid = np.arange(image_size, dtype=np.float32)
    x, y = centre
    gx = np.exp(-((grid - x) ** 2) / (2 * sigma**2))
    gy = np.exp(-((grid - y) ** 2) / (2 * sigma**2))
    broad_y = np.exp(-((grid - y) ** 2) / (2 * (sigma * width_ratio) ** 2))
    broad_x = np.exp(-((grid - x) ** 2) / (2 * (sigma * width_ratio) ** 2))
    x_oval = broad_y[:, None] * gx[None, :]
    y_oval = gy[:, None] * broad_x[None, :]
    return x_oval, y_oval, gy[:, None] * gx[None, :]


class BumpDataset:
    """Every centre on the (dx, dy) grid; batches are rendered on the fly (no image cache needed)."""

    def __init__(self, config: RunConfig):
        self.image_size = config.image_size
        self.sigma = config.sigma
        self.centres = centre_grid(config.image_size, config.increment_x, config.increment_y)

    def __len__(self) -> int:
        return len(self.centres)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 1, N, N), labels (B, 2) as (x, y)) for the given centre indices."""
        labels = torch.from_numpy(self.centres[index.numpy()])
        return render_bumps(labels, self.image_size, self.sigma), labels


def eval_labels(config: RunConfig) -> np.ndarray:
    """The fixed evaluation label set: `eval_labels` training centres drawn with `eval_seed`.

    Drawn without replacement when the grid is large enough; the same for every training seed, so
    seeds are compared on the same labels.
    """
    centres = centre_grid(config.image_size, config.increment_x, config.increment_y)
    rng = np.random.default_rng(config.eval_seed)
    replace = config.eval_labels > len(centres)
    idx = rng.choice(len(centres), size=config.eval_labels, replace=replace)
    return centres[idx]
