"""DDPM: the schedule pinned to known values, the epsilon loss, and per-sample-seeded samplers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.diffusion import (LinearSchedule, PerSampleNoise, ddim_sample, ddim_step, ddim_timesteps,
                                     ddpm_sample, ddpm_step, epsilon_loss, sample, sample_loop)
from bumpdiff_core.learn.model import ConditionalUNet

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


# ---------------------------------------------------------------------------------------------
# the step functions: pure updates, checked against diffusers' schedulers as oracles
# ---------------------------------------------------------------------------------------------

def _state():
    gen = torch.Generator().manual_seed(3)
    return torch.randn(4, 1, 8, 8, generator=gen), torch.randn(4, 1, 8, 8, generator=gen), \
        torch.randn(4, 1, 8, 8, generator=gen)


def test_steps_are_pure():
    s = LinearSchedule()
    x, eps, z = _state()
    before = (x.clone(), eps.clone(), torch.get_rng_state())
    for _ in range(2):
        assert torch.equal(ddpm_step(s, x, eps, 487, 486, z), ddpm_step(s, x, eps, 487, 486, z))
        assert torch.equal(ddim_step(s, x, eps, 487, 300), ddim_step(s, x, eps, 487, 300))
    assert torch.equal(x, before[0]) and torch.equal(eps, before[1])  # inputs untouched
    assert torch.equal(torch.get_rng_state(), before[2])  # no random numbers drawn
    # the last DDIM step returns the clipped x_0 prediction; the last DDPM step adds no noise
    last = ddim_step(s, x, eps, 0, None)
    assert last.abs().max() <= 1
    assert torch.equal(ddpm_step(s, x, eps, 0, None, None), ddpm_step(s, x, eps, 0))


@pytest.mark.parametrize("t", [999, 487, 1])
def test_ddpm_step_matches_diffusers(t):
    """Algorithm 2 with sigma_t^2 = beta_t is diffusers' DDPMScheduler with variance "fixed_large"
    and no clipping; its noise, drawn from a seeded CPU generator, is passed to ours."""
    diffusers = pytest.importorskip("diffusers")
    oracle = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4,
                                     beta_end=0.02, variance_type="fixed_large", clip_sample=False)
    x, eps, _ = _state()
    theirs = oracle.step(eps, t, x, generator=torch.Generator().manual_seed(9)).prev_sample
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    ours = ddpm_step(LinearSchedule(), x, eps, t, t - 1, z)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)  # fp32, another association order


@pytest.mark.parametrize("t, t_next", [(900, 800), (500, 400), (100, 0)])
def test_ddim_step_matches_diffusers(t, t_next):
    """eta = 0, x_0 clipped to [-1, 1] and eps re-derived from it (use_clipped_model_output)."""
    diffusers = pytest.importorskip("diffusers")
    oracle = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4,
                                     beta_end=0.02, clip_sample=True, set_alpha_to_one=False)
    oracle.set_timesteps(10)  # strides of 100: prev_timestep = t - 100
    x, eps, _ = _state()
    theirs = oracle.step(eps, t, x, eta=0.0, use_clipped_model_output=True).prev_sample
    torch.testing.assert_close(ddim_step(LinearSchedule(), x, eps, t, t_next), theirs, rtol=1e-4, atol=1e-4)


def test_one_loop_draws_noise_only_through_randn_like(small_model):
    """The loop's only randomness is the `randn_like` it is given: x_T, then before every DDPM step
    but the last; DDIM draws x_T only."""
    config, model, schedule = small_model
    for sampler, timesteps, step, stochastic, draws in (
            ("ddpm", list(range(config.timesteps - 1, -1, -1)), ddpm_step, True, config.timesteps),
            ("ddim", ddim_timesteps(config.timesteps, 8), ddim_step, False, 1)):
        noise, calls = PerSampleNoise(SEEDS), []

        def randn_like(x, _noise=noise, _calls=calls):
            _calls.append(tuple(x.shape))
            return _noise.randn_like(x)

        images, _ = sample_loop(model, schedule, XY, timesteps, step, randn_like, stochastic)
        assert calls == [(5, 1, 8, 8)] * draws
        # the same as `sample`, which builds the per-sample noise from the seeds itself
        assert torch.equal(images, sample(model, schedule, XY, SEEDS, sampler=sampler, steps=8)[0])


def test_per_sample_noise_draws_row_i_from_seed_i():
    x = torch.empty(3, 1, 4, 4)
    rows = PerSampleNoise([5, 6, 5]).randn_like(x)
    assert torch.equal(rows[0], rows[2]) and not torch.equal(rows[0], rows[1])
    assert torch.equal(rows[1], torch.randn((1, 4, 4), generator=torch.Generator().manual_seed(6)))


def test_unknown_sampler_is_an_error(small_model):
    config, model, schedule = small_model
    with pytest.raises(ValueError, match="euler"):
        sample(model, schedule, XY, SEEDS, sampler="euler")
