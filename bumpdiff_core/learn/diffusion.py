"""DDPM (Ho et al. 2020): the linear schedule, the epsilon loss (Algorithm 1) and sampling.

Sampling is one loop (`sample_loop`) around a small pure update per step, in the spirit of
diffusers' `scheduler.step()`:

- `ddpm_step`: ancestral sampling, Ho et al. 2020 Algorithm 2, line 4 (T model calls).
- `ddim_step`: the deterministic strided update of Song et al. 2021, eq. 12 with eta = 0.

Noise comes in as NVlabs/edm passes it: a `randn_like` callable that draws each sample's noise
from that sample's own generator (`PerSampleNoise`), so a sample is the same whether drawn alone
or in a batch of any size. The loop can average the outputs of named UNet blocks over the
trajectory (`tap_names`): the representation and the image come from one pass.
"""
from __future__ import annotations

import copy

import numpy as np
import torch


class LinearSchedule:
    """beta_t linear from beta_start to beta_end over t = 0 .. T-1 (0-based as in diffusers)."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.timesteps = timesteps
        betas = np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)
        alphas_cumprod = np.cumprod(1.0 - betas)
        self.betas = torch.tensor(betas, dtype=torch.float32)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.tensor(alphas_cumprod, dtype=torch.float32)

    @classmethod
    def from_config(cls, config) -> "LinearSchedule":
        return cls(config.timesteps, config.beta_start, config.beta_end)

    def to(self, device) -> "LinearSchedule":
        """The same schedule with its tensors on `device` (the sampling loop indexes them there)."""
        moved = copy.copy(self)
        moved.betas, moved.alphas, moved.alphas_cumprod = (
            s.to(device) for s in (self.betas, self.alphas, self.alphas_cumprod))
        return moved

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)."""
        abar = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def epsilon_loss(model, schedule: LinearSchedule, x0, xy, generator: torch.Generator) -> torch.Tensor:
    """Algorithm 1: t ~ U{0..T-1}, eps ~ N(0, I), MSE between eps and the model's prediction.

    Random numbers come from `generator` on the CPU, so the loss is the same on any device.
    """
    n = x0.shape[0]
    t = torch.randint(0, schedule.timesteps, (n,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    t, noise = t.to(x0.device), noise.to(x0.device)
    return torch.mean((model(schedule.add_noise(x0, noise, t), t, xy) - noise) ** 2)


class PerSampleNoise:
    """One torch.Generator per sample seed (NVlabs/edm's StackedRandomGenerator): `randn_like(x)`
    draws row i of x from generator i, on the CPU, so the numbers are the same on any device."""

    def __init__(self, seeds):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.randn(x.shape[1:], generator=g) for g in self.generators]).to(x.device)


def ddpm_step(schedule: LinearSchedule, x, eps, t: int, t_next=None, noise=None) -> torch.Tensor:
    """Algorithm 2, line 4 (ancestral): x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)
    + sigma_t z with sigma_t^2 = beta_t; `noise` is z, None at t = 0 (the last step adds none)."""
    betas, alphas, abar = schedule.betas, schedule.alphas, schedule.alphas_cumprod
    x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt()
    return x if noise is None else x + betas[t].sqrt() * noise


def ddim_step(schedule: LinearSchedule, x, eps, t: int, t_next=None, noise=None) -> torch.Tensor:
    """DDIM, eta = 0 (Song et al. 2021, eq. 12): predict x_0 (clipped to [-1, 1]), re-derive eps from
    it, and jump to timestep `t_next`; at the last step (t_next None) return x_0. `noise` is unused."""
    abar = schedule.alphas_cumprod
    x0 = ((x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()).clamp(-1, 1)
    if t_next is None:
        return x0
    eps = (x - abar[t].sqrt() * x0) / (1 - abar[t]).sqrt()
    return abar[t_next].sqrt() * x0 + (1 - abar[t_next]).sqrt() * eps


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """`steps` evenly spaced timesteps from T-1 down to 0 (all T of them when steps == T)."""
    return [int(t) for t in np.linspace(timesteps - 1, 0, steps).round().astype(int)]


class _TapAverager:
    """Running mean of named block outputs over the sampling steps, flattened per sample."""

    def __init__(self, names):
        self.names, self.sums, self.count = list(names), {}, 0

    def record(self):
        return {} if self.names else None

    def add(self, taps):
        if not self.names:
            return
        for name in self.names:
            flat = taps[name].detach().flatten(1).float()
            self.sums[name] = self.sums[name] + flat if name in self.sums else flat.clone()
        self.count += 1

    def means(self):
        return {name: (s / self.count).cpu().numpy() for name, s in self.sums.items()}


@torch.no_grad()
def sample_loop(model, schedule: LinearSchedule, xy: torch.Tensor, timesteps, step, randn_like,
                stochastic: bool, tap_names=(), progress=None):
    """x_T ~ N(0, I) from `randn_like`; then for each t in `timesteps` (descending): eps = model(x_t),
    x = step(schedule, x, eps, t, t_next, noise), with fresh noise from `randn_like` before every
    step but the last when `stochastic`. Returns (images clamped to [-1, 1], {tap: trajectory mean})."""
    device = xy.device
    n, size = xy.shape[0], model.image_size
    schedule = schedule.to(device)
    x = randn_like(torch.empty((n, 1, size, size), device=device))
    taps = _TapAverager(tap_names)
    for i, t in enumerate(timesteps):
        t_next = timesteps[i + 1] if i + 1 < len(timesteps) else None
        record = taps.record()
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long), xy, taps=record)
        taps.add(record)
        noise = randn_like(x) if stochastic and t_next is not None else None
        x = step(schedule, x, eps, t, t_next, noise)
        if progress is not None:
            progress.update(1)
    return x.clamp(-1, 1), taps.means()


def sample(model, schedule, xy, seeds, sampler: str = "ddim", steps: int = 50, tap_names=(), progress=None):
    """One sample per (x, y) row of `xy` and seed: "ddpm" visits all T timesteps (`steps` unused),
    "ddim" `steps` strided ones."""
    noise = PerSampleNoise(seeds)
    if sampler == "ddpm":
        return sample_loop(model, schedule, xy, list(range(schedule.timesteps - 1, -1, -1)), ddpm_step,
                           noise.randn_like, True, tap_names, progress)
    if sampler == "ddim":
        return sample_loop(model, schedule, xy, ddim_timesteps(schedule.timesteps, steps), ddim_step,
                           noise.randn_like, False, tap_names, progress)
    raise ValueError(f"sampler must be 'ddim' or 'ddpm'; got {sampler!r}")


def ddpm_sample(model, schedule, xy, seeds, tap_names=(), progress=None):
    return sample(model, schedule, xy, seeds, "ddpm", tap_names=tap_names, progress=progress)


def ddim_sample(model, schedule, xy, seeds, steps: int = 50, tap_names=(), progress=None):
    return sample(model, schedule, xy, seeds, "ddim", steps, tap_names, progress)


@torch.no_grad()
def first_step_taps(model, schedule: LinearSchedule, xy: torch.Tensor, seeds, tap_names) -> dict:
    """The named blocks' outputs at the *first* denoising step only: the model sees x_T (pure noise
    from the same per-sample seeds as `sample`, so the same x_T as that sample) at t = T - 1,
    before anything is drawn. {tap: (n, features)}. Costs one forward pass."""
    n, size = xy.shape[0], model.image_size
    x = PerSampleNoise(seeds).randn_like(torch.empty((n, 1, size, size), device=xy.device))
    record = {}
    model(x, torch.full((n,), schedule.timesteps - 1, device=xy.device, dtype=torch.long), xy, taps=record)
    return {name: record[name].detach().flatten(1).float().cpu().numpy() for name in tap_names}
