"""The dataset: N x N images of one 2D Gaussian bump at (x, y), x = column, y = row, in pixels."""
from __future__ import annotations

import numpy as np

from bumpdiff_core.config import RunConfig


def _axis_values(image_size: int, increment: float) -> np.ndarray:
    """{0, d, 2d, ...} below N: ceil(N / d) values (see `centre_grid`)."""
    count = int(np.ceil(image_size / increment - 1e-6))
    values = np.arange(count) * increment
    return values[values < image_size - 1e-9]


def centre_grid(image_size: int, increment_x: float, increment_y: float) -> np.ndarray:
    """All centres {0, dx, ..., N - dx} x {0, dy, ..., N - dy} as an (M, 2) float array of (x, y).

    Every multiple of d below N: ceil(N / d) points per axis (also when d does not divide N, e.g.
    0.65 -> 50); the tolerance keeps 32 / 0.1 = 320.00000000000006 at exactly 320. Row-major:
    index = row * K_x + column, so `.reshape(K_y, K_x)` of a per-centre value is its K x K map.
    """
    xs = _axis_values(image_size, increment_x)
    ys = _axis_values(image_size, increment_y)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def map_shape(image_size: int, increment_x: float, increment_y: float) -> tuple[int, int]:
    """(K_y, K_x): the rows and columns of `centre_grid`, the shape of its K x K maps
    (`config.grid_shape` gives the same counts in (x, y) order)."""
    return len(_axis_values(image_size, increment_y)), len(_axis_values(image_size, increment_x))


def render_bumps(centres, image_size: int, sigma: float) -> "torch.Tensor":
    """Bright bumps exp(-r^2 / 2 sigma^2) mapped from [0, 1] to [-1, 1]; shape (B, 1, N, N).

    Separable: the bump is the outer product of a 1D Gaussian in y and one in x, so rendering a
    batch costs O(B N) exponentials instead of O(B N^2).
    """
    import torch  # here, not at the top: designs and grids are read by torch-free code (results/)

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


# ---------------------------------------------------------------------------------------------
# training-set designs: which grid positions the model is trained on
# ---------------------------------------------------------------------------------------------

DESIGNS = ("grid", "random", "lines", "holdout", "latin")


def line_indices(k_axis: int, lines: int) -> np.ndarray:
    """`lines` evenly spaced interior indices of an axis with `k_axis` positions:
    round((i + 1/2) * K / k - 1/2) for i = 0..k-1, i.e. the centres of k equal slices of the axis.

    Exact halves are rounded towards the axis centre (K - 1) / 2, so the set is mirror symmetric
    (K = 16, k = 2: 3.5, 11.5 -> 4, 11; each line 4 positions from its border).
    """
    if not 1 <= lines <= k_axis:
        raise ValueError(f"design_lines must be between 1 and the positions per axis ({k_axis}); got {lines}")
    out = []
    for i in range(lines):
        # exact value ((2i + 1) K - k) / 2k in integers, so a tie is detected exactly
        whole, rest = divmod((2 * i + 1) * k_axis - lines, 2 * lines)
        if rest < lines:  # fraction rest / 2k below 1/2
            out.append(whole)
        elif rest > lines:
            out.append(whole + 1)
        else:  # a tie: towards the centre (K - 1) / 2, the lower index when exactly at it
            out.append(whole + 1 if 2 * whole + 1 < k_axis - 1 else whole)
    return np.array(out, dtype=np.int64)


def holdout_indices(k_axis: int, size: int) -> np.ndarray:
    """The `size` central indices of an axis with `k_axis` positions: start .. start + size - 1
    with start = (K - size) // 2. When K - size is even the block is exactly centred (K = 16,
    size = 6: 5..10, centre 7.5 = (K - 1) / 2); when odd it sits half a position towards index 0."""
    if not 1 <= size <= k_axis:
        raise ValueError(f"holdout_size must be between 1 and the positions per axis ({k_axis}); got {size}")
    start = (k_axis - size) // 2
    return np.arange(start, start + size)


def design_mask(design: str, shape: tuple[int, int], *, count: int = 64, seed: int = 0,
                lines: int = 2, holdout_size: int = 6, rungs: int = 1) -> np.ndarray:
    """Boolean (K_y, K_x) map of the training positions of a design on a K_y x K_x grid
    (mask[row, column]; row = y index, column = x index).

    - ``grid``: every position.
    - ``random``: `count` positions drawn uniformly without replacement with `seed`.
    - ``lines``: every position on `lines` rows and `lines` columns (`line_indices`): every x and
      every y value is seen, in only 2 k K - k^2 combinations (K_x = K_y = K).
    - ``holdout``: every position except a central square of `holdout_size` x `holdout_size`
      positions (`holdout_indices` on each axis).
    - ``latin``: rung `rungs` of the Latin-square design with design seed `seed` (`latin.rung_mask`:
      r·K positions, every x and y r times; the 2K test positions `latin.test_mask` are never in it).
    """
    ky, kx = shape
    if design == "grid":
        return np.ones((ky, kx), dtype=bool)
    mask = np.zeros((ky, kx), dtype=bool)
    if design == "random":
        if not 1 <= count <= ky * kx:
            raise ValueError(f"design_count must be between 1 and the grid size ({ky * kx}); got {count}")
        chosen = np.random.default_rng(seed).choice(ky * kx, size=count, replace=False)
        mask.flat[chosen] = True
    elif design == "lines":
        mask[line_indices(ky, lines), :] = True
        mask[:, line_indices(kx, lines)] = True
    elif design == "latin":
        from bumpdiff_core.learn import latin

        if ky != kx:
            raise ValueError(f"design 'latin' needs a square grid; got {ky} x {kx} positions")
        mask = latin.rung_mask(kx, latin.check_rung(kx, rungs, "design_rungs"), seed)
    elif design == "holdout":
        mask[:] = True
        mask[np.ix_(holdout_indices(ky, holdout_size), holdout_indices(kx, holdout_size))] = False
    else:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}; got {design!r}")
    return mask


def training_mask(config: RunConfig) -> np.ndarray:
    """Boolean (K_y, K_x) map of the config's training positions (for the data page's K x K map)."""
    shape = map_shape(config.image_size, config.increment_x, config.increment_y)
    return design_mask(config.design, shape, count=config.design_count, seed=config.design_seed,
                       lines=config.design_lines, holdout_size=config.holdout_size, rungs=config.design_rungs)


def training_positions(config: RunConfig) -> np.ndarray:
    """The (M, 2) float32 (x, y) centres the model is trained on, in `centre_grid` order.
    For the ``grid`` design, exactly `centre_grid` (the same array, bit for bit)."""
    centres = centre_grid(config.image_size, config.increment_x, config.increment_y)
    if config.design == "grid":
        return centres
    return centres[training_mask(config).ravel()]


class BumpDataset:
    """The config's training positions (`training_positions`); batches are rendered on the fly
    (no image cache needed)."""

    def __init__(self, config: RunConfig):
        self.image_size = config.image_size
        self.sigma = config.sigma
        self.centres = training_positions(config)

    def __len__(self) -> int:
        return len(self.centres)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 1, N, N), labels (B, 2) as (x, y)) for the given centre indices."""
        import torch

        labels = torch.from_numpy(self.centres[index.numpy()])
        return render_bumps(labels, self.image_size, self.sigma), labels


def evaluation_positions(config: RunConfig) -> np.ndarray:
    """The fixed evaluation label set: `config.eval_labels` training positions drawn with
    `eval_seed` (so `accuracy` is accuracy on the training set for every design).

    Drawn without replacement when there are enough training positions; the same for every
    training seed, so seeds are compared on the same labels. Positions not trained on are scored
    separately (`generalization.split_labels`).
    """
    centres = training_positions(config)
    rng = np.random.default_rng(config.eval_seed)
    replace = config.eval_labels > len(centres)
    idx = rng.choice(len(centres), size=config.eval_labels, replace=replace)
    return centres[idx]
