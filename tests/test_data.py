"""The dataset: grid sizes, bump geometry (x = column, y = row), value range, rendering speed."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from bumpdiff_core.config import profile_config
from bumpdiff_core.data import BumpDataset, centre_grid, eval_labels, render_bumps


@pytest.mark.parametrize("dx, dy, size", [
    (1.0, 1.0, 1_024),
    (0.5, 0.5, 4_096),
    (0.1, 0.1, 102_400),
    (0.1, 1.0, 10_240),
    (0.1, 0.5, 20_480),
])
def test_dataset_sizes_at_n32(dx, dy, size):
    grid = centre_grid(32, dx, dy)
    assert grid.shape == (size, 2)
    assert len(np.unique(grid, axis=0)) == size
    # centres {0, d, 2d, ..., N - d} in each axis
    np.testing.assert_allclose(grid.min(0), [0, 0])
    np.testing.assert_allclose(grid.max(0), [32 - dx, 32 - dy], atol=1e-4)


def test_dataset_object_uses_the_config_increments():
    config = profile_config("quick", dict(image_size=32, increment_x=0.1, increment_y=0.5))
    assert len(BumpDataset(config)) == 20_480


@pytest.mark.parametrize("increment, per_axis", [(0.75, 43), (0.65, 50), (0.3, 107), (3.0, 11)])
def test_increments_that_do_not_divide_n_keep_every_centre_below_n(increment, per_axis):
    # {0, d, 2d, ...} up to the last multiple of d below N: ceil(N / d) points per axis
    grid = centre_grid(32, increment, increment)
    assert len(np.unique(grid[:, 0])) == per_axis
    assert grid.max() < 32


def test_values_in_minus_one_to_one_and_peak_at_the_centre():
    images = render_bumps(centre_grid(16, 0.5, 0.5), 16, 1.0)
    assert images.shape == (1024, 1, 16, 16)
    assert images.min() >= -1 and images.max() <= 1
    on_grid = render_bumps([[5.0, 9.0]], 16, 1.0)[0, 0]
    assert on_grid[9, 5] == pytest.approx(1.0)
    assert on_grid[9, 6] == pytest.approx(2 * np.exp(-0.5) - 1)  # exp(-r^2 / 2 sigma^2), r = 1
    assert on_grid[0, 15] == pytest.approx(-1.0, abs=1e-6)  # far away: background


def test_x_is_the_column_and_y_the_row():
    image = render_bumps([[3.0, 10.0]], 16, 1.0)[0, 0]
    row, col = np.unravel_index(int(torch.argmax(image)), image.shape)
    assert (col, row) == (3, 10)


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_intensity_centroid_equals_the_requested_off_grid_centre(sigma):
    rng = np.random.default_rng(0)
    n = 32
    margin = 5 * sigma  # away from the border: no mass cut off
    centres = rng.uniform(margin, n - 1 - margin, size=(200, 2)).astype(np.float32)
    images = (render_bumps(centres, n, sigma)[:, 0].numpy().astype(np.float64) + 1) / 2
    rows, cols = np.mgrid[0:n, 0:n]
    mass = images.sum(axis=(1, 2))
    centroid_x = (images * cols).sum(axis=(1, 2)) / mass
    centroid_y = (images * rows).sum(axis=(1, 2)) / mass
    assert np.abs(centroid_x - centres[:, 0]).max() < 0.05
    assert np.abs(centroid_y - centres[:, 1]).max() < 0.05


def test_rendering_every_image_of_the_finest_grid_is_fast():
    """All 102,400 images of N = 32, d = 0.1, in 10 batches: well under a second per 10k images.

    Measured 0.15-0.5 s per 10k on this 2-core machine while shared; the median batch is asserted
    (a bound, not a benchmark), so one preempted batch on a busy machine does not fail it.
    """
    centres = centre_grid(32, 0.1, 0.1)
    render_bumps(centres[:100], 32, 1.0)  # first-call overhead out of the timing
    seconds = []
    for batch in np.array_split(centres, 10):
        started = time.perf_counter()
        images = render_bumps(batch, 32, 1.0)
        seconds.append((time.perf_counter() - started) / len(batch) * 10_000)
        assert images.shape == (len(batch), 1, 32, 32)
    assert np.median(seconds) < 1.0, f"{np.median(seconds):.2f} s per 10k images"


def test_batches_carry_their_labels():
    config = profile_config("tiny", dict(increment_x=0.5, increment_y=2.0))
    dataset = BumpDataset(config)
    images, labels = dataset.batch(torch.tensor([0, 7, len(dataset) - 1]))
    np.testing.assert_array_equal(labels.numpy(), dataset.centres[[0, 7, len(dataset) - 1]])
    torch.testing.assert_close(images, render_bumps(labels.numpy(), config.image_size, config.sigma))


def test_eval_labels_are_fixed_training_centres():
    config = profile_config("quick")
    labels = eval_labels(config)
    assert labels.shape == (config.eval_labels, 2)
    np.testing.assert_array_equal(labels, eval_labels(config.replace(seed=7)))  # same for every seed
    grid = {tuple(c) for c in centre_grid(config.image_size, config.increment_x, config.increment_y)}
    assert all(tuple(c) in grid for c in labels)
    assert len({tuple(c) for c in labels}) == config.eval_labels  # no repeats when the grid is large
