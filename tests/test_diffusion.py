"""DDPM: the schedule pinned to known values, the epsilon loss, and per-sample-seeded samplers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bumpdiff_core.config import profile_config
from bumpdiff_core.diffusion import (LinearSchedule, ddim_sample, ddim_timesteps, ddpm_sample,
                                     epsilon_loss, sample)
from bumpdiff_core.model import ConditionalUNet

# Ho et al. 2020: beta_t = 1e-4 .. 0.02 linear over T = 1000, abar_t = prod_{s <= t} (1 - beta_s).
# Golden values, computed once in float64 by the loop in `_reference_alphas_cumprod`.
GOLDEN_ABAR = {0: 0.9999, 487: 0.08858573232059307, 999: 4.0358297653756754e-05}


def _reference_alphas_cumprod(timesteps=1000, start=1e-4, end=0.02):
    product, out = 1.0, []
    for t in range(timesteps):
        product *= 1.0 - (start + (end - start) * t / (timesteps - 1))
        out.append(product)
    return out


def test_schedule_pinned_to_known_values():
    s = LinearSchedule(1000, 1e-4, 0.02)
    assert len(s.betas) == 1000
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    reference = _reference_alphas_cumprod()
    for t, value in GOLDEN_ABAR.items():
        assert reference[t] == pytest.approx(value, rel=1e-12)
        assert s.alphas_cumprod[t].item() == pytest.approx(value, rel=1e-5)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), reference, rtol=1e-5)
    np.testing.assert_allclose(s.alphas.numpy(), 1 - s.betas.numpy())


def test_schedule_matches_diffusers_ddpm_scheduler():
    diffusers = pytest.importorskip("diffusers")  # test-only oracle (the `test` extra)
    oracle = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                     beta_start=1e-4, beta_end=0.02)
    ours = LinearSchedule(1000, 1e-4, 0.02)
    np.testing.assert_allclose(ours.betas.numpy(), oracle.betas.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.alphas_cumprod.numpy(), oracle.alphas_cumprod.numpy(), rtol=1e-5)
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 1, 8, 8, generator=gen), torch.randn(4, 1, 8, 8, generator=gen)
    t = torch.tensor([0, 10, 487, 999])
    # fp32, values of order 1 summed in a different order: differences of a few ulps (~1e-6)
    # are rounding; the schedule itself is compared above
    torch.testing.assert_close(ours.add_noise(x0, noise, t), oracle.add_noise(x0, noise, t),
                               rtol=1e-5, atol=1e-5)


def test_add_noise_is_q_of_x_t_given_x_0():
    s = LinearSchedule()
    x0, noise = torch.ones(2, 1, 4, 4), torch.full((2, 1, 4, 4), 2.0)
    out = s.add_noise(x0, noise, torch.tensor([487, 487]))
    abar = GOLDEN_ABAR[487]
    expected = math.sqrt(abar) * 1.0 + math.sqrt(1 - abar) * 2.0
    torch.testing.assert_close(out, torch.full_like(out, expected))


def test_epsilon_loss_depends_only_on_the_generator():
    config = profile_config("tiny")
    torch.manual_seed(0)
    model = ConditionalUNet(config)
    x0 = torch.rand(8, 1, 8, 8) * 2 - 1
    xy = torch.rand(8, 2) * 8
    s = LinearSchedule.from_config(config)
    a = epsilon_loss(model, s, x0, xy, torch.Generator().manual_seed(5))
    b = epsilon_loss(model, s, x0, xy, torch.Generator().manual_seed(5))
    c = epsilon_loss(model, s, x0, xy, torch.Generator().manual_seed(6))
    assert a.item() == b.item() and a.item() != c.item()
    assert a.item() > 0


def test_ddim_timesteps_run_from_t_minus_1_down_to_0():
    assert ddim_timesteps(1000, 50)[0] == 999 and ddim_timesteps(1000, 50)[-1] == 0
    assert len(ddim_timesteps(1000, 50)) == 50
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))


@pytest.fixture(scope="module")
def small_model():
    """A random tiny UNet with T = 20, so the ancestral sampler is cheap too."""
    config = profile_config("tiny", dict(timesteps=20, eval_sampler_steps=8))
    torch.manual_seed(0)
    return config, ConditionalUNet(config).eval(), LinearSchedule.from_config(config)


XY = torch.tensor([[1.0, 2.0], [3.5, 4.0], [6.0, 0.5], [2.0, 7.0], [4.2, 4.2]])
SEEDS = [11, 12, 13, 14, 15]


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_a_sample_is_the_same_alone_or_in_a_batch(small_model, sampler):
    """Each sample has its own noise stream. Not bitwise: a batched conv sums in another order
    (differences ~1e-7), so the comparison allows 1e-5."""
    config, model, schedule = small_model
    taps = ["down2", "mid"]
    batch, batch_taps = sample(model, schedule, XY, SEEDS, sampler=sampler, steps=8, tap_names=taps)
    for i in range(len(SEEDS)):
        alone, alone_taps = sample(model, schedule, XY[i:i + 1], SEEDS[i:i + 1], sampler=sampler, steps=8,
                                   tap_names=taps)
        torch.testing.assert_close(alone[0], batch[i], rtol=0, atol=1e-5)
        for name in taps:
            np.testing.assert_allclose(alone_taps[name][0], batch_taps[name][i], rtol=0, atol=1e-5)
    # the order within the batch does not matter either
    order = [4, 2, 0, 3, 1]
    shuffled, _ = sample(model, schedule, XY[order], [SEEDS[i] for i in order], sampler=sampler, steps=8)
    torch.testing.assert_close(shuffled, batch[order], rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_seeds_choose_the_sample(small_model, sampler):
    config, model, schedule = small_model
    xy = XY[:1].repeat(3, 1)  # one position, three seeds
    images, _ = sample(model, schedule, xy, [1, 2, 1], sampler=sampler, steps=8)
    assert torch.equal(images[0], images[2])
    assert (images[0] - images[1]).abs().max() > 1e-3
    again, _ = sample(model, schedule, xy, [1, 2, 1], sampler=sampler, steps=8)
    assert torch.equal(images, again)


def test_samplers_return_images_in_range_and_trajectory_means(small_model):
    config, model, schedule = small_model
    for fn, kwargs, calls in ((ddim_sample, dict(steps=8), 8), (ddpm_sample, {}, config.timesteps)):
        seen = []

        def spy(x, t, xy, taps=None, _seen=seen):
            out = model(x, t, xy, taps=taps)
            _seen.append(taps["mid"].flatten(1).clone())
            return out

        spy.image_size = model.image_size
        images, means = fn(spy, schedule, XY, SEEDS, tap_names=["mid"], **kwargs)
        assert images.shape == (5, 1, 8, 8)
        assert images.min() >= -1 and images.max() <= 1
        assert len(seen) == calls
        # the tap is averaged over every model call of the same sampling pass
        np.testing.assert_allclose(means["mid"], torch.stack(seen).mean(0).numpy(), rtol=1e-5, atol=1e-6)
