"""Run configuration: one flat, validated dataclass, named profiles and the run hash.

Every field is *semantic*: changing it changes what is trained or measured, so it changes the
run id. Things that do not change the numbers (device, thread count, data root) live outside.

Each field is declared once, nanoGPT style: its type is the type of its default (a tuple is a list
of integers), and `param(default, help, *rules)` puts its help text and allowed range in the
field's metadata. Validation, `--set` parsing, the error texts and `allowed_range` all read that
metadata, so the range a message states is the range that is checked.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from dataclasses import dataclass, fields
from typing import Callable, NamedTuple

SCHEMA_VERSION = 1

# Random streams are numbered seed * SEED_STRIDE + i (train.py: i = training step; evaluate.py:
# i = evaluation label): distinct for distinct (seed, i) while i < SEED_STRIDE, which is above every
# step and label count of the profiles (paper: 40,000 steps, 300 labels). Changing it changes every
# number (tests/test_golden.py).
SEED_STRIDE = 1_000_003


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and the allowed range."""

    def __init__(self, field_name: str, message: str):
        self.field_name = field_name
        super().__init__(f"{field_name}: {message}")


# ---------------------------------------------------------------------------------------------
# rules: one condition on a field's value and the words that state it
# ---------------------------------------------------------------------------------------------

class Rule(NamedTuple):
    text: Callable          # config -> "< image_size (16)"
    holds: Callable         # (config, value) -> bool
    depends: bool = False   # reads other fields (checked after every fixed range)


class Ref(NamedTuple):
    """A bound computed from the other fields, stated with its name: `< image_size (16)`."""
    name: str
    of: Callable      # config -> number


def _bound(bound, c) -> tuple[object, str]:
    """(value, words) of a bound: a number, a Ref, or a callable of the config stated by its value."""
    if isinstance(bound, Ref):
        value = bound.of(c)
        return value, f"{bound.name} ({value})"
    value = bound(c) if callable(bound) else bound
    return value, f"{value}"


def _comparison(symbol: str, test) -> Callable[[object], Rule]:
    return lambda bound: Rule(lambda c: f"{symbol} {_bound(bound, c)[1]}",
                              lambda c, v: test(v, _bound(bound, c)[0]), not isinstance(bound, (int, float)))


gt, ge = _comparison(">", operator.gt), _comparison(">=", operator.ge)
lt, le = _comparison("<", operator.lt), _comparison("<=", operator.le)


def multiple_of(bound) -> Rule:
    return Rule(lambda c: f"a multiple of {_bound(bound, c)[1]}", lambda c, v: v % _bound(bound, c)[0] == 0,
                not isinstance(bound, (int, float)))


def one_of(*choices) -> Rule:
    words = [repr(x) for x in choices]
    text = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    return Rule(lambda c: text, lambda c, v: v in choices)


def each(*rules: Rule, count: tuple[int, int] | None = None) -> Rule:
    """For a list: every entry obeys `rules`; with `count`, the list has lo..hi entries."""
    counted = f"{count[0]} to {count[1]} " if count else ""
    return Rule(lambda c: f"{counted}integers, each " + " and ".join(r.text(c) for r in rules),
                lambda c, v: (not count or count[0] <= len(v) <= count[1])
                and all(r.holds(c, x) for r in rules for x in v),
                any(r.depends for r in rules))


def when_design(name: str, rule: Rule) -> Rule:
    """`rule` binds only while design == name. Not always: tiny at increment 2 (tests/test_sweep.py)
    has 16 grid positions, fewer than design_count's default 64, and must stay valid."""
    return Rule(lambda c: f"{rule.text(c)} when design is {name!r}", lambda c, v: c.design != name or rule.holds(c, v),
                True)


def param(default, help: str, *rules: Rule, hash_if_default: bool = True):
    """One config field: default (its type), help text and allowed range, declared together.

    hash_if_default=False marks a field added after schema 1: omitted from the canonical JSON
    while equal to its default, so every run id computed before it existed stays valid."""
    return dataclasses.field(default=default,
                             metadata=dict(help=help, rules=rules, hash_if_default=hash_if_default))


def grid_shape(c) -> tuple[int, int]:
    """Centres per axis (x, y) of data.centre_grid: ceil(N / d) with its 1e-6 tolerance (kept
    equal to data.py by tests/test_config.py; not imported, data.py imports this module)."""
    return (int(math.ceil(c.image_size / c.increment_x - 1e-6)),
            int(math.ceil(c.image_size / c.increment_y - 1e-6)))


_SEED = (ge(0), le(2**31 - 1))
_PER_AXIS = Ref("grid positions per axis", lambda c: min(grid_shape(c)))
_POSITIONS = Ref("grid positions", lambda c: grid_shape(c)[0] * grid_shape(c)[1])
_LATIN_RUNGS = Ref("grid positions per axis - 2", lambda c: min(grid_shape(c)) - 2)  # = learn.latin.max_rung
_LEVELS = Ref("len(channel_mults)", lambda c: len(c.channel_mults))
_SIZE = Ref("image_size", lambda c: c.image_size)
_HALVINGS = Ref("2**(len(channel_mults) - 1)", lambda c: 2 ** (len(c.channel_mults) - 1))


def tap_layer_names(n_levels: int) -> list[str]:
    """Forward order of tapped blocks: stem, down1..L, mid, up1..L, named layer1..layer(2L+2)."""
    return ["stem"] + [f"down{i}" for i in range(1, n_levels + 1)] + ["mid"] + \
           [f"up{i}" for i in range(1, n_levels + 1)]


def _taps(n_levels: int) -> dict[str, str]:
    """Every accepted tap_layer value -> its block: the names and the aliases layer1..layer(2L+2)."""
    names = tap_layer_names(n_levels)
    return {**{n: n for n in names}, **{f"layer{i}": n for i, n in enumerate(names, start=1)}}


def _tap_choices(n_levels: int) -> str:
    names = tap_layer_names(n_levels)
    return f"one of layer1..layer{len(names)} or {', '.join(names)}"


def resolve_tap(name: str, n_levels: int) -> str:
    """Map 'layer4' (1-based position in forward order) or a block name to the block name."""
    if name not in _taps(n_levels):
        raise ConfigError("tap_layer", f"must be {_tap_choices(n_levels)}; got {name!r}")
    return _taps(n_levels)[name]


# ---------------------------------------------------------------------------------------------
# the config
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunConfig:
    # --- data (the paper: 32x32, sigma 1, increments 0.1..1.0) ---------------------------------
    image_size: int = param(16, "N: N x N single-channel images (the UNet halves it levels - 1 times)",
                            multiple_of(4), multiple_of(_HALVINGS), ge(8), le(256))
    sigma: float = param(1.0, "bump width in pixels", gt(0), le(lambda c: c.image_size / 2))
    increment_x: float = param(1.0, "spacing of bump centres in x (columns)", gt(0), lt(_SIZE))
    increment_y: float = param(1.0, "spacing of bump centres in y (rows)", gt(0), lt(_SIZE))
    # --- training-set design (data.py): which grid centres are trained on ----------------------
    design: str = param("grid", "grid: every centre; random: design_count of them; lines: design_lines "
                        "rows and columns; holdout: all but a holdout_size square; latin: rung design_rungs of "
                        "the Latin-square design (learn/latin.py)",
                        one_of("grid", "random", "lines", "holdout", "latin"), hash_if_default=False)
    design_count: int = param(64, "design=random: how many grid centres", ge(1), when_design("random", le(_POSITIONS)),
                              hash_if_default=False)
    design_seed: int = param(0, "design=random / latin: which centres (the Latin square)", *_SEED, hash_if_default=False)
    design_lines: int = param(2, "design=lines: rows and columns kept", ge(1), when_design("lines", le(_PER_AXIS)),
                              hash_if_default=False)
    holdout_size: int = param(6, "design=holdout: side of the square of centres left out", ge(1),
                              when_design("holdout", lt(_PER_AXIS)), hash_if_default=False)
    design_rungs: int = param(1, "design=latin: r, trained on r classes of the Latin square (r·K positions, every x "
                              "and y r times); 2 more classes are the test set", ge(1),
                              when_design("latin", le(_LATIN_RUNGS)), hash_if_default=False)
    # --- model (conditional UNet) -------------------------------------------------------------
    base_channels: int = param(16, "channels of the first level", multiple_of(4), ge(4), le(512))  # 4: GroupNorm
    channel_mults: tuple = param((1, 2, 2), "width multiplier per encoder level (\"three down, three up\")",
                                 each(ge(1), le(16), count=(1, 5)))
    blocks_per_level: int = param(1, "ResBlocks per level", ge(1), le(8))
    attention_levels: tuple = param((), "encoder levels (1-based) with self-attention", each(ge(1), le(_LEVELS)))
    coord_channels: bool = param(False, "CoordConv: two extra input channels holding x and y")
    conditioning: str = param("global", "global: (x, y) embedded into the conditioning vector of every block; "
                              "separable: x and y conditioned apart (model.py)",
                              one_of("global", "separable"), hash_if_default=False)
    tap_layer: str = param("layer4", "the block whose output is \"the representation\"",
                           Rule(lambda c: _tap_choices(len(c.channel_mults)),
                                lambda c, v: v in _taps(len(c.channel_mults)), True))
    # --- diffusion (DDPM, Ho et al. 2020) -----------------------------------------------------
    timesteps: int = param(1000, "T, diffusion steps", ge(2), le(10000))
    beta_start: float = param(1e-4, "beta_0 of the linear schedule", gt(0), lt(0.5))
    beta_end: float = param(0.02, "beta_(T-1) of the linear schedule",
                            gt(Ref("beta_start", lambda c: c.beta_start)), le(0.999))
    # --- optimisation ---------------------------------------------------------------------------
    batch_size: int = param(64, "images per step", ge(1), le(4096))
    lr: float = param(2e-3, "peak AdamW learning rate", gt(0), le(1))
    lr_final_ratio: float = param(0.1, "cosine decay of lr to lr * lr_final_ratio at the last step", ge(0), le(1))
    weight_decay: float = param(0.0, "AdamW weight decay", ge(0), le(1))
    ema_decay: float = param(0.0, "0 = no EMA; evaluation uses EMA weights when on", ge(0), lt(1))
    steps: int = param(1500, "training steps", ge(1), le(10_000_000))
    seed: int = param(0, "initial weights, batches and noise", *_SEED)
    precision: str = param("fp32", "training arithmetic: fp32, or bf16 (autocast of the forward pass to bfloat16; "
                           "weights, optimizer and evaluation stay fp32)", one_of("fp32", "bf16"),
                           hash_if_default=False)
    # --- checkpoint schedule: every `dense_every` steps up to `dense_until`, then log-spaced ----
    checkpoint_dense_every: int = param(100, "dense checkpoint spacing", ge(1), le(10_000_000))
    checkpoint_dense_until: int = param(1200, "last dense checkpoint", ge(0), le(10_000_000))
    checkpoint_log_count: int = param(4, "log-spaced checkpoints after the dense ones", ge(0), le(1000))
    # --- evaluation ------------------------------------------------------------------------------
    eval_labels: int = param(100, "samples per checkpoint, one per label", ge(4), le(100_000))
    eval_seed: int = param(1234, "fixes the label set and the sampling noise", *_SEED)
    eval_sampler: str = param("ddim", "ddim (deterministic, strided) or ddpm (ancestral)", one_of("ddim", "ddpm"))
    eval_sampler_steps: int = param(20, "DDIM-20: benchmarks/eval_cost.py compares it with DDPM-1000",
                                    ge(1), le(Ref("timesteps", lambda c: c.timesteps)))
    umap_neighbors: int = param(15, "UMAP n_neighbors", ge(2),
                                le(Ref("min(200, eval_labels - 1)", lambda c: min(200, c.eval_labels - 1))))
    umap_min_dist: float = param(0.1, "UMAP min_dist", ge(0), le(1))
    schema_version: int = param(SCHEMA_VERSION, "layout of this config", one_of(SCHEMA_VERSION))

    def __post_init__(self):
        validate(self)
        # 1 and 1.0 must hash alike: store every float field as a float
        for f in fields(self):
            if field_type(f) is float:
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    # -- derived ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def canonical_json(self) -> str:
        d = self.to_dict()
        for f in fields(self):
            if not f.metadata["hash_if_default"] and getattr(self, f.name) == f.default:
                del d[f.name]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """Hash of the canonical JSON of the semantic config (every field here is semantic)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = _fields()
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; known fields: {', '.join(sorted(known))}")
        # JSON has lists; anything else that is no tuple is reported by validate
        return cls(**{k: tuple(v) if isinstance(v, list) and field_type(known[k]) is tuple else v
                      for k, v in d.items()})


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(RunConfig)}


def field_type(f: dataclasses.Field) -> type:
    """The type of a field's default (nanoGPT style): bool, int, float, str or tuple."""
    return type(f.default)


# ---------------------------------------------------------------------------------------------
# validation, read from the fields' metadata
# ---------------------------------------------------------------------------------------------

_TYPE_WORDS = {bool: "true/false", int: "an integer", float: "a number", str: "text", tuple: "a list of integers"}
_PARSE_WORDS = {bool: "true or false", int: "an integer", float: "a finite number",
                tuple: "a comma-separated list of integers"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _has_type(value, kind) -> bool:
    if kind is int:
        return _is_int(value)
    if kind is float:
        return (_is_int(value) or isinstance(value, float)) and value == value  # not NaN
    if kind is tuple:
        return isinstance(value, tuple) and all(_is_int(v) for v in value)
    return isinstance(value, kind)


def _shown(value):
    return list(value) if isinstance(value, tuple) else value


def _allowed(f: dataclasses.Field, c) -> str | None:
    return " and ".join(r.text(c) for r in f.metadata["rules"]) or None


def validate(c: RunConfig) -> None:
    """Types first (a range may read any other field), then fixed ranges, then ranges read from
    other fields, each in field order: 6 levels of channel_mults are reported as such, not as an
    image_size that is no multiple of 2**5. An error states the field's whole range."""
    for f in fields(c):
        value, kind = getattr(c, f.name), field_type(f)
        if not _has_type(value, kind):
            raise ConfigError(f.name, f"must be {_TYPE_WORDS[kind]}; got {_shown(value)!r}")
    for depends in (False, True):
        for f in fields(c):
            value = getattr(c, f.name)
            if not all(r.holds(c, value) for r in f.metadata["rules"] if r.depends == depends):
                raise ConfigError(f.name, f"must be {_allowed(f, c)}; got {_shown(value)!r}")


def allowed_range(name: str, base: RunConfig) -> str | None:
    """What validation allows for `name`, the other fields as in `base` (e.g. '> 0 and <= 4.0');
    None for a field without rules."""
    f = _fields().get(name)
    return None if f is None else _allowed(f, base)


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


def _parse_value(raw: str, kind: type):
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError
        return raw.lower() in ("true", "1")
    if kind is float:
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError
        return value
    if kind is tuple:
        return tuple(int(v) for v in raw.strip("()[] ").split(",") if v.strip())
    return kind(raw)  # int or str


def parse_override(text: str, base: RunConfig | None = None) -> tuple[str, object]:
    """Parse one `field=value` from the command line; the value is typed by the field's default.
    With `base`, a type error also states the field's allowed range."""
    if "=" not in text:
        raise ConfigError(text, "expected field=value")
    name, raw = (part.strip() for part in text.split("=", 1))
    known = _fields()
    if name not in known:
        raise ConfigError(name, f"unknown field; known fields: {', '.join(sorted(known))}")
    kind = field_type(known[name])
    try:
        return name, _parse_value(raw, kind)
    except ValueError:
        allowed = allowed_range(name, base) if base is not None else None
        want = f"{_PARSE_WORDS[kind]}, {allowed}" if allowed else _PARSE_WORDS[kind]
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
