"""Training throughput: our UNet vs diffusers.UNet2DModel at matched size, and FLOP/s vs peak.

Prints, side by side in one run: images/s of both models (batch 64, same resolution, same
threads), the ratio, the training FLOP/s counted by torch.utils.flop_counter, and this machine's
measured fp32 matmul peak. Run: .venv/bin/python benchmarks/train_throughput.py [--threads 2]

`--precision fp32,bf16` instead measures our model's training img/s per precision (bf16: autocast
of the forward pass, as `learn/train.py` does for precision="bf16"), the precisions interleaved
`--repeats` times (the best of each is printed, with its ratio to the first), so a machine shared
with other work slows them alike.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.diffusion import LinearSchedule
from bumpdiff_core.learn.model import ConditionalUNet, parameter_count


def peak_matmul_flops(n=1024, repeats=20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def ours(config):
    model = ConditionalUNet(config)
    return model, lambda x, t, xy: model(x, t, xy)


def diffusers_model(config, target_params):
    from diffusers import UNet2DModel

    best = None
    for base in range(8, 97, 8):  # multiples of 8: GroupNorm(8) must divide every width
        chans = tuple(base * m for m in config.channel_mults)
        m = UNet2DModel(sample_size=config.image_size, in_channels=1, out_channels=1,
                        block_out_channels=chans, layers_per_block=config.blocks_per_level,
                        down_block_types=("DownBlock2D",) * len(chans), up_block_types=("UpBlock2D",) * len(chans),
                        norm_num_groups=8, class_embed_type="identity")
        gap = abs(parameter_count(m) - target_params)
        if best is None or gap < best[0]:
            best = (gap, m)
    m = best[1]
    # class_embed "identity": the (x, y) conditioning enters as a vector added to the time embedding
    emb_dim = m.time_embedding.linear_2.out_features
    proj = torch.nn.Linear(2, emb_dim)
    return m, lambda x, t, xy: m(x, t, class_labels=proj(xy)).sample


def images_per_second(forward, params, config, batch=64, warmup=5, steps=30, precision="fp32"):
    schedule = LinearSchedule.from_config(config)
    opt = torch.optim.AdamW(params, lr=1e-4)
    n = config.image_size

    def step():
        x0 = torch.randn(batch, 1, n, n)
        t = torch.randint(0, 1000, (batch,))
        xy = torch.rand(batch, 2) * n
        noise = torch.randn_like(x0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            pred = forward(schedule.add_noise(x0, noise, t), t, xy)
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0), step


def precision_table(profiles, precisions, repeats: int) -> None:
    """Our model's training img/s per precision, interleaved `repeats` times; best of each."""
    print(f"{'profile':8} {'N':>3} " + " ".join(f"{p + ' img/s':>11}" for p in precisions)
          + " " + " ".join(f"{p + '/' + precisions[0]:>11}" for p in precisions[1:]))
    for name in profiles:
        config = profile_config(name)
        best = {p: 0.0 for p in precisions}
        for _ in range(repeats):
            for p in precisions:
                torch.manual_seed(0)
                model, fwd = ours(config)
                best[p] = max(best[p], images_per_second(fwd, model.parameters(), config, precision=p)[0])
        print(f"{name:8} {config.image_size:>3} " + " ".join(f"{best[p]:>11.0f}" for p in precisions)
              + " " + " ".join(f"{best[p] / best[precisions[0]]:>11.2f}" for p in precisions[1:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profiles", default="quick,cpu32")
    ap.add_argument("--precision", default=None, help="e.g. fp32,bf16: img/s per training precision (our model only)")
    ap.add_argument("--repeats", type=int, default=3, help="with --precision: interleaved rounds, best of each")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.precision:
        precisions = args.precision.split(",")
        bad = [p for p in precisions if p not in ("fp32", "bf16")]
        if bad:
            ap.error(f"--precision: each of fp32, bf16; got {', '.join(bad)}")
        print(f"threads={args.threads}; CPU flags: amx_bf16={'amx_bf16' in open('/proc/cpuinfo').read()}, "
              f"avx512_bf16={'avx512_bf16' in open('/proc/cpuinfo').read()}")
        precision_table(args.profiles.split(","), precisions, args.repeats)
        return
    peak = peak_matmul_flops()
    print(f"threads={args.threads}  peak fp32 matmul: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'profile':8} {'N':>3} {'ours params':>12} {'ours img/s':>10} {'diffusers params':>17} "
          f"{'diffusers img/s':>15} {'ratio':>6} {'ours GFLOP/s':>12} {'of peak':>8}")
    for name in args.profiles.split(","):
        config = profile_config(name)
        model, fwd = ours(config)
        ips, step = images_per_second(fwd, model.parameters(), config)
        with FlopCounterMode(display=False) as counter:
            step()
        flops_per_image = counter.get_total_flops() / 64
        try:
            dmodel, dfwd = diffusers_model(config, parameter_count(model))
            dips, _ = images_per_second(dfwd, dmodel.parameters(), config)
            dparams = parameter_count(dmodel)
        except ImportError:
            dips, dparams = float("nan"), 0
        achieved = ips * flops_per_image
        print(f"{name:8} {config.image_size:>3} {parameter_count(model):>12,} {ips:>10.0f} {dparams:>17,} "
              f"{dips:>15.0f} {ips / dips:>6.2f} {achieved / 1e9:>12.1f} {achieved / peak:>8.0%}")


if __name__ == "__main__":
    main()
