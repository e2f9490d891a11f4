"""DDPM (Ho et al. 2020): the linear schedule, the epsilon loss (Algorithm 1) and two samplers.

- `ddpm_sample`: ancestral sampling, Algorithm 2, the reference (T model calls).
- `ddim_sample`: the deterministic strided sampler of Song et al. 2021 (eta = 0), few calls.

Both take one seed per sample and draw that sample's noise from its own generator, so a sample is
the same whether drawn alone or in a batch of any size. Both can average the outputs of named UNet
blocks over the trajectory (`tap_names`): the representation and the image come from one pass.
"""
from __future__ import annotations

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


def per_sample_generators(seeds) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _noise(generators, shape, device) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)


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
def ddpm_sample(model, schedule: LinearSchedule, xy: torch.Tensor, seeds, tap_names=(), progress=None):
    """Algorithm 2 (ancestral): x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z,
    sigma_t^2 = beta_t. Returns (images in [-1, 1], {tap name: trajectory-mean activations})."""
    device = xy.device
    n, size = xy.shape[0], model.image_size
    gens = per_sample_generators(seeds)
    x = _noise(gens, (1, size, size), device)
    taps = _TapAverager(tap_names)
    betas, alphas, abar = (s.to(device) for s in (schedule.betas, schedule.alphas, schedule.alphas_cumprod))
    for t in reversed(range(schedule.timesteps)):
        record = taps.record()
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long), xy, taps=record)
        taps.add(record)
        x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt()
        if t > 0:
            x = x + betas[t].sqrt() * _noise(gens, (1, size, size), device)
        if progress is not None:
            progress.update(1)
    return x.clamp(-1, 1), taps.means()


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """`steps` evenly spaced timesteps from T-1 down to 0 (all T of them when steps == T)."""
    return [int(t) for t in np.linspace(timesteps - 1, 0, steps).round().astype(int)]


@torch.no_grad()
def ddim_sample(model, schedule: LinearSchedule, xy: torch.Tensor, seeds, steps: int = 50,
                tap_names=(), progress=None):
    """Deterministic DDIM (eta = 0): predict x_0 (clipped to [-1, 1]), re-derive eps from it, and
    jump to the next strided timestep. Only x_T is random, drawn per sample."""
    device = xy.device
    n, size = xy.shape[0], model.image_size
    x = _noise(per_sample_generators(seeds), (1, size, size), device)
    taps = _TapAverager(tap_names)
    abar = schedule.alphas_cumprod.to(device)
    ts = ddim_timesteps(schedule.timesteps, steps)
    for i, t in enumerate(ts):
        record = taps.record()
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long), xy, taps=record)
        taps.add(record)
        x0 = ((x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()).clamp(-1, 1)
        eps = (x - abar[t].sqrt() * x0) / (1 - abar[t]).sqrt()
        if i + 1 < len(ts):
            a_next = abar[ts[i + 1]]
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        else:
            x = x0
        if progress is not None:
            progress.update(1)
    return x.clamp(-1, 1), taps.means()


def sample(model, schedule, xy, seeds, sampler: str = "ddim", steps: int = 50, tap_names=(), progress=None):
    if sampler == "ddpm":
        return ddpm_sample(model, schedule, xy, seeds, tap_names=tap_names, progress=progress)
    return ddim_sample(model, schedule, xy, seeds, steps=steps, tap_names=tap_names, progress=progress)
