"""Run configuration: one flat, validated dataclass, named profiles and the run hash.

Every field is *semantic*: changing it changes what is trained or measured, so it changes the
run id. Things that do not change the numbers (device, thread count, data root) live outside.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields

SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and the allowed range."""

    def __init__(self, field_name: str, message: str):
        self.field_name = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True)
class RunConfig:
    # --- data (PAPER.md: 32x32, sigma 1, increments 0.1..1.0) --------------------------------
    image_size: int = 16            # N; N x N single-channel images
    sigma: float = 1.0              # bump width in pixels
    increment_x: float = 1.0        # spacing of bump centres in x (columns)
    increment_y: float = 1.0        # spacing of bump centres in y (rows)
    # --- model (conditional UNet) -------------------------------------------------------------
    base_channels: int = 16
    channel_mults: tuple = (1, 2, 2)  # one entry per encoder level ("three down, three up")
    blocks_per_level: int = 1         # ResBlocks per level
    attention_levels: tuple = ()      # encoder levels (1-based) with self-attention
    coord_channels: bool = False      # CoordConv: two extra input channels holding x and y
    tap_layer: str = "layer4"         # the block whose output is "the representation"
    # --- diffusion (DDPM, Ho et al. 2020) -----------------------------------------------------
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    # --- optimisation ---------------------------------------------------------------------------
    batch_size: int = 64
    lr: float = 2e-3
    lr_final_ratio: float = 0.1     # cosine decay of lr to lr * lr_final_ratio at the last step
    weight_decay: float = 0.0
    ema_decay: float = 0.0          # 0 = no EMA; evaluation uses EMA weights when on
    steps: int = 1500
    seed: int = 0
    # --- checkpoint schedule: every `dense_every` steps up to `dense_until`, then log-spaced ----
    checkpoint_dense_every: int = 100
    checkpoint_dense_until: int = 1200
    checkpoint_log_count: int = 4
    # --- evaluation ------------------------------------------------------------------------------
    eval_labels: int = 100           # samples per checkpoint, one per label
    eval_seed: int = 1234            # fixes the label set and the sampling noise
    eval_sampler: str = "ddim"       # "ddim" (deterministic, strided) or "ddpm" (ancestral)
    eval_sampler_steps: int = 20     # DDIM-20: benchmarks/eval_cost.py compares it with DDPM-1000
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        validate(self)
        # 1 and 1.0 must hash alike: store every float field as a float
        for name, kind in _FIELD_TYPES.items():
            if kind is float:
                object.__setattr__(self, name, float(getattr(self, name)))

    # -- derived ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["attention_levels"] = list(self.attention_levels)
        return d

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """Hash of the canonical JSON of the semantic config (every field here is semantic)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; known fields: {', '.join(sorted(known))}")
        d = dict(d)
        for key in ("channel_mults", "attention_levels"):
            if key in d:
                if not isinstance(d[key], (list, tuple)):
                    raise ConfigError(key, f"must be a list of integers; got {d[key]!r}")
                d[key] = tuple(d[key])
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# validation: every check names the field and the allowed range
# ---------------------------------------------------------------------------------------------

def _check_type(name, value, kind):
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is str:
        ok = isinstance(value, str)
    elif kind is tuple:
        ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
        ok = True
    if not ok:
        want = {bool: "true/false", int: "an integer", float: "a number", str: "text",
                tuple: "a list of integers"}[kind]
        raise ConfigError(name, f"must be {want}; got {value!r}")
    if kind is float and value != value:  # NaN
        raise ConfigError(name, "must be a number; got nan")


_FIELD_TYPES = {
    "image_size": int, "sigma": float, "increment_x": float, "increment_y": float,
    "base_channels": int, "channel_mults": tuple, "blocks_per_level": int,
    "attention_levels": tuple, "coord_channels": bool, "tap_layer": str, "timesteps": int,
    "beta_start": float, "beta_end": float, "batch_size": int, "lr": float,
    "lr_final_ratio": float, "weight_decay": float, "ema_decay": float, "steps": int, "seed": int,
    "checkpoint_dense_every": int, "checkpoint_dense_until": int, "checkpoint_log_count": int,
    "eval_labels": int, "eval_seed": int, "eval_sampler": str, "eval_sampler_steps": int,
    "umap_neighbors": int, "umap_min_dist": float, "schema_version": int,
}


def _range(name, value, lo=None, hi=None, lo_open=False, hi_open=False, text=None):
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or \
          (hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        if text is None:
            left = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
            right = "" if hi is None else (f"< {hi}" if hi_open else f"<= {hi}")
            text = "must be " + " and ".join(p for p in (left, right) if p)
        raise ConfigError(name, f"{text}; got {value!r}")


def tap_layer_names(n_levels: int) -> list[str]:
    """Forward order of tapped blocks: stem, down1..L, mid, up1..L, named layer1..layer(2L+2)."""
    return ["stem"] + [f"down{i}" for i in range(1, n_levels + 1)] + ["mid"] + \
           [f"up{i}" for i in range(1, n_levels + 1)]


def resolve_tap(name: str, n_levels: int) -> str:
    """Map 'layer4' (1-based position in forward order) or a block name to the block name."""
    names = tap_layer_names(n_levels)
    if name in names:
        return name
    if name.startswith("layer") and name[5:].isdigit() and 1 <= int(name[5:]) <= len(names):
        return names[int(name[5:]) - 1]
    raise ConfigError("tap_layer", f"must be one of layer1..layer{len(names)} or {', '.join(names)}; got {name!r}")


def validate(c: RunConfig) -> None:
    for f in fields(c):
        _check_type(f.name, getattr(c, f.name), _FIELD_TYPES[f.name])
    if c.schema_version != SCHEMA_VERSION:
        raise ConfigError("schema_version", f"must be {SCHEMA_VERSION}; got {c.schema_version!r}")
    n_levels = len(c.channel_mults)
    _range("channel_mults", n_levels, 1, 5, text="must have 1 to 5 levels")
    if any(m < 1 or m > 16 for m in c.channel_mults):
        raise ConfigError("channel_mults", f"each entry must be between 1 and 16; got {list(c.channel_mults)}")
    factor = 2 ** (n_levels - 1)
    if c.image_size < 8 or c.image_size > 256 or c.image_size % 8 or c.image_size % factor:
        raise ConfigError("image_size", f"must be a multiple of 8 (and of {factor}) between 8 and 256; got {c.image_size!r}")
    _range("sigma", c.sigma, 0, c.image_size / 2, lo_open=True, text=f"must be > 0 and <= {c.image_size / 2}")
    for name in ("increment_x", "increment_y"):
        _range(name, getattr(c, name), 0, c.image_size, lo_open=True, hi_open=True,
               text=f"must be > 0 and < image_size ({c.image_size})")
    _range("base_channels", c.base_channels, 4, 512)
    if c.base_channels % 4:
        raise ConfigError("base_channels", f"must be a multiple of 4 (GroupNorm groups); got {c.base_channels}")
    _range("blocks_per_level", c.blocks_per_level, 1, 8)
    for lvl in c.attention_levels:
        if not 1 <= lvl <= n_levels:
            raise ConfigError("attention_levels", f"each entry must be a level 1..{n_levels}; got {list(c.attention_levels)}")
    resolve_tap(c.tap_layer, n_levels)
    _range("timesteps", c.timesteps, 2, 10000)
    _range("beta_start", c.beta_start, 0, 0.5, lo_open=True, hi_open=True, text="must be > 0 and < 0.5")
    _range("beta_end", c.beta_end, c.beta_start, 0.999, lo_open=True, text=f"must be > beta_start ({c.beta_start}) and <= 0.999")
    _range("batch_size", c.batch_size, 1, 4096)
    _range("lr", c.lr, 0, 1, lo_open=True, text="must be > 0 and <= 1")
    _range("lr_final_ratio", c.lr_final_ratio, 0, 1)
    _range("weight_decay", c.weight_decay, 0, 1)
    _range("ema_decay", c.ema_decay, 0, 1, hi_open=True, text="must be >= 0 and < 1")
    _range("steps", c.steps, 1, 10_000_000)
    _range("seed", c.seed, 0, 2**31 - 1)
    _range("checkpoint_dense_every", c.checkpoint_dense_every, 1, 10_000_000)
    _range("checkpoint_dense_until", c.checkpoint_dense_until, 0, 10_000_000)
    _range("checkpoint_log_count", c.checkpoint_log_count, 0, 1000)
    _range("eval_labels", c.eval_labels, 4, 100_000)
    _range("eval_seed", c.eval_seed, 0, 2**31 - 1)
    if c.eval_sampler not in ("ddim", "ddpm"):
        raise ConfigError("eval_sampler", f"must be 'ddim' or 'ddpm'; got {c.eval_sampler!r}")
    _range("eval_sampler_steps", c.eval_sampler_steps, 1, c.timesteps, text=f"must be between 1 and timesteps ({c.timesteps})")
    _range("umap_neighbors", c.umap_neighbors, 2, min(200, c.eval_labels - 1),
           text=f"must be between 2 and eval_labels - 1 ({c.eval_labels - 1})")
    _range("umap_min_dist", c.umap_min_dist, 0, 1)


# ---------------------------------------------------------------------------------------------
# profiles
# ---------------------------------------------------------------------------------------------

PROFILES: dict[str, dict] = {
    # seconds: for tests and the smoke pipeline
    "tiny": dict(image_size=8, base_channels=8, channel_mults=(1, 2), steps=60, batch_size=32,
                 checkpoint_dense_every=20, checkpoint_dense_until=60, eval_labels=16,
                 eval_sampler_steps=10, umap_neighbors=5),
    # the CPU default: 16x16, 0.2 M parameters, lr 2e-3 (tuned: 1e-3 was still in phase B at
    # step 2000; 2e-3 reaches C by ~1000 with the representation ordering first)
    "quick": dict(),
    # the paper's image size on CPU (<= 20 min)
    "cpu32": dict(image_size=32, steps=6000, checkpoint_dense_every=250,
                  checkpoint_dense_until=4000, checkpoint_log_count=4),
    # the paper's width: UNet_conditional-like, ~23 M parameters, attention at every level
    "paper": dict(image_size=32, base_channels=64, channel_mults=(2, 4, 4), blocks_per_level=3,
                  attention_levels=(1, 2, 3), lr=3e-4, steps=40000, checkpoint_dense_every=500,
                  checkpoint_dense_until=10000, checkpoint_log_count=10, eval_labels=300),
}


def profile_config(name: str, overrides: dict | None = None) -> RunConfig:
    if not isinstance(name, str) or name not in PROFILES:
        raise ConfigError("profile", f"must be one of {', '.join(PROFILES)}; got {name!r}")
    if overrides is not None and not isinstance(overrides, dict):  # e.g. a notebook parameter
        raise ConfigError("overrides", f"must be a dict of RunConfig fields; got {overrides!r}")
    values = dict(PROFILES[name])
    values.update(overrides or {})
    return RunConfig.from_dict(values)


def allowed_range(name: str, base: RunConfig) -> str | None:
    """What validation allows for the numeric field `name`, the other fields as in `base`
    (e.g. '> 0 and <= 4.0'). Read from `validate` itself, with a value below every lower bound,
    so the two never disagree."""
    kind = _FIELD_TYPES.get(name)
    if kind not in (int, float):
        return None
    try:
        base.replace(**{name: kind(-1_000_000_000)})
    except ConfigError as e:
        if e.field_name == name:
            text = str(e).split(": ", 1)[1].rsplit("; got", 1)[0]
            return text.removeprefix("must be ")
    return None


def config_from_overrides(profile: str, override_texts) -> RunConfig:
    """A profile plus command-line `field=value` texts -> a validated config. A value that is not
    even of the field's type is reported with the field's allowed range, given the other values."""
    parsed, unparsable = {}, None
    for text in override_texts:
        try:
            name, value = parse_override(text)
            parsed[name] = value
        except ConfigError:
            unparsable = unparsable or text
    config = profile_config(profile, parsed)
    if unparsable is not None:
        parse_override(unparsable, base=config)  # raises, now naming the range
    return config


def parse_override(text: str, base: RunConfig | None = None) -> tuple[str, object]:
    """Parse one `field=value` from the command line; the value is typed by the field. With
    `base`, a type error also states the field's allowed range."""
    if "=" not in text:
        raise ConfigError(text, "expected field=value")
    name, raw = text.split("=", 1)
    name = name.strip()
    if name not in _FIELD_TYPES:
        raise ConfigError(name, f"unknown field; known fields: {', '.join(sorted(_FIELD_TYPES))}")
    kind = _FIELD_TYPES[name]
    raw = raw.strip()
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return name, raw.lower() in ("true", "1")
        if kind is int:
            return name, int(raw)
        if kind is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return name, value
        if kind is tuple:
            raw = raw.strip("()[] ")
            return name, tuple(int(v) for v in raw.split(",") if v.strip())
        return name, raw
    except ValueError:
        want = {bool: "true or false", int: "an integer", float: "a finite number",
                tuple: "a comma-separated list of integers"}[kind]
        allowed = allowed_range(name, base) if base is not None else None
        want = f"{want}, {allowed}" if allowed else want
        raise ConfigError(name, f"must be {want}; got {raw!r}") from None


def checkpoint_steps(c: RunConfig) -> list[int]:
    """Dense early (the phases happen early), log-spaced later; always includes 0 and the last step."""
    steps = {0, c.steps}
    until = min(c.checkpoint_dense_until, c.steps)
    steps.update(range(c.checkpoint_dense_every, until + 1, c.checkpoint_dense_every))
    if c.checkpoint_log_count and c.steps > until:
        import numpy as np
        start = max(until, 1)
        steps.update(int(round(s)) for s in np.geomspace(start, c.steps, c.checkpoint_log_count + 1))
    return sorted(steps)
