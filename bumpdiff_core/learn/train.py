"""The training loop: AdamW, cosine-decayed lr, optional EMA, scheduled checkpoints, resume.

Randomness of step s comes from a generator seeded with (seed, s) alone, so a run resumed at any
checkpoint draws exactly the batches and noise the uninterrupted run would have drawn.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time

import torch

from bumpdiff_core.config import SEED_STRIDE, RunConfig, checkpoint_steps
from bumpdiff_core.learn.data import BumpDataset
from bumpdiff_core.learn.diffusion import LinearSchedule, epsilon_loss
from bumpdiff_core.learn.model import ConditionalUNet, parameter_count
from bumpdiff_core.runs.faults import fault_point
from bumpdiff_core.runs.store import CorruptFileError, Run, StoreError


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_determinism(threads: int | None = None) -> None:
    """Fixed thread count and deterministic kernels: same config + seed -> same numbers on CPU."""
    if threads:
        torch.set_num_threads(threads)
        # numpy/scipy BLAS too: oversubscribed BLAS threads made R^2 and UMAP 5-10x slower here
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def build_model(config: RunConfig, device=None) -> ConditionalUNet:
    torch.manual_seed(config.seed)  # initial weights depend on the seed only
    return ConditionalUNet(config).to(device or "cpu")


def learning_rate(config: RunConfig, step: int) -> float:
    progress = step / max(config.steps, 1)
    r = config.lr_final_ratio
    return config.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * progress)))


# ---------------------------------------------------------------------------------------------
# optimizer state <-> flat tensors (safetensors holds tensors only; the rest goes in metadata)
# ---------------------------------------------------------------------------------------------

def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, str]:
    sd = opt.state_dict()
    tensors = {f"opt.{idx}.{k}": v for idx, st in sd["state"].items() for k, v in st.items()}
    return tensors, json.dumps(sd["param_groups"])


def _unflatten_optimizer(tensors: dict, groups_json: str) -> dict:
    state: dict = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": json.loads(groups_json)}


def _versions() -> dict:
    import numpy
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    try:
        from importlib.metadata import version
        out["bumpdiff"] = version("bumpdiff")
    except Exception:
        pass
    return out


def _git_commit() -> str | None:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except Exception:
        return None


class Trainer:
    def __init__(self, run: Run, device=None, threads: int | None = None, progress: bool = True):
        self.run, self.config = run, run.config
        self.device = pick_device(device)
        configure_determinism(threads)
        self.progress = progress
        self.schedule = LinearSchedule.from_config(self.config)
        self.dataset = BumpDataset(self.config)
        self.model = build_model(self.config, self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)
        self.ema = ({k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    if self.config.ema_decay > 0 else None)
        self.losses: list[float] = []
        self.step = 0

    # -- persistence -----------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        weights = self.ema if self.ema is not None else self.model.state_dict()
        self.run.save_tensors(self.run.checkpoint_path(self.step), weights, {"step": str(self.step)})

    def _save(self) -> None:
        """Checkpoint weights for this step, then the resumable state (written second, so a
        state always has its checkpoint). The two newest states are kept: if the newest is
        damaged, the run resumes from the one before, losing one checkpoint interval."""
        self._save_checkpoint()
        opt_tensors, groups = _flatten_optimizer(self.optimizer)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(opt_tensors)
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.items()})
        tensors["losses"] = torch.tensor(self.losses, dtype=torch.float32)
        self.run.save_tensors(self.run.train_state_path(self.step), tensors,
                              {"step": str(self.step), "param_groups": groups})
        for old in self.run.train_state_steps()[:-2]:
            self.run.remove(self.run.train_state_path(old))

    def try_resume(self, at_most: int | None = None) -> bool:
        """Load the newest intact training state (at or before step `at_most` when given);
        damaged ones are reported and skipped."""
        for step in reversed(self.run.train_state_steps()):
            if at_most is not None and step > at_most:
                continue
            path = self.run.train_state_path(step)
            try:
                tensors, meta = self.run.load_tensors(path)
            except (CorruptFileError, StoreError, OSError) as e:
                print(f"warning: {e}; trying an earlier checkpoint", flush=True)
                continue
            self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            self.optimizer.load_state_dict(_unflatten_optimizer(
                {k: v for k, v in tensors.items() if k.startswith("opt.")}, meta["param_groups"]))
            if self.ema is not None:
                self.ema = {k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("ema.")}
            self.losses = tensors["losses"].tolist()
            self.step = int(meta["step"])
            if step > 0:
                print(f"resuming {self.run.path.name} from step {step}", flush=True)
            return True
        return False

    # -- the loop ---------------------------------------------------------------------------------
    def train(self, resume_at_most: int | None = None) -> None:
        """Train to `config.steps`, resuming from the newest intact state. `resume_at_most`
        regenerates checkpoints from that step on (training is deterministic, so they come back
        identical); checkpoints already on disk after it are rewritten with the same bytes."""
        from tqdm.auto import tqdm

        c = self.config
        schedule_steps = checkpoint_steps(c)
        resumed = self.try_resume(resume_at_most)
        started = time.time()
        if not resumed:
            self._save()
        elif not self.run.is_valid(self.run.checkpoint_path(self.step)):
            self._save_checkpoint()  # the state holds this step's weights: no training needed
        self.model.train()
        bar = tqdm(total=c.steps, initial=self.step, desc=f"train {self.run.path.name}",
                   disable=not self.progress, unit="step", mininterval=1.0)
        while self.step < c.steps:
            gen = torch.Generator().manual_seed(c.seed * SEED_STRIDE + self.step)
            index = torch.randint(0, len(self.dataset), (c.batch_size,), generator=gen)
            images, labels = self.dataset.batch(index)
            images, labels = images.to(self.device), labels.to(self.device)
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(c, self.step)
            # bf16: faster on CPUs with native bf16 (AMX) and on GPUs; the loss and the update stay fp32
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"):
                loss = epsilon_loss(self.model, self.schedule, images, labels, gen)
            loss = loss.float()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            fault_point("step", str(self.step))
            self.optimizer.step()
            if self.ema is not None:
                with torch.no_grad():
                    for k, v in self.model.state_dict().items():
                        self.ema[k].lerp_(v, 1 - c.ema_decay) if v.dtype.is_floating_point else self.ema[k].copy_(v)
            self.losses.append(loss.item())
            self.step += 1
            bar.update(1)
            if self.step % 50 == 0:
                bar.set_postfix(loss=f"{sum(self.losses[-50:]) / 50:.4f}")
            if self.step in schedule_steps:
                self._save()
        bar.close()
        elapsed = time.time() - started
        prior = self.run.read_meta().get("train_seconds", 0.0)
        self.run.update_meta(
            versions=_versions(), git_commit=_git_commit(), device=str(self.device),
            device_name=(torch.cuda.get_device_name() if self.device.type == "cuda" else platform.processor() or platform.machine()),
            threads=torch.get_num_threads(), parameters=parameter_count(self.model),
            train_seconds=prior + elapsed, dataset_size=len(self.dataset),
        )


def load_weights(run: Run, step: int, device=None) -> ConditionalUNet:
    tensors, _ = run.load_tensors(run.checkpoint_path(step))
    model = ConditionalUNet(run.config)
    model.load_state_dict(tensors)
    return model.to(pick_device(device)).eval()
