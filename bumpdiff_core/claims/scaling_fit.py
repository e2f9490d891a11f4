"""How the training-set size needed grows with K: M50(K) ∝ K^γ from per-position outcomes.

Input: one row per (network, rung, test position) outcome of the Latin-square design
(`learn/latin.py`), columns ``model, K, seed, rung, M (= rung·K), position, correct (0/1)``. A
*network* is one (seed, K) of a model; a *position* is a test position of that network.

Model (one model at a time): logit p = a + b·log M + c·log K, fitted by maximum likelihood over
every row (censored K included). M50(K) = exp(-(a + c·log K) / b) is the training-set size at
which half the test positions are drawn right, and γ = -c / b its growth exponent.

- Fit: Newton-Raphson with step halving on the rows aggregated to binomial counts per (K, M),
  covariates centred and scaled to unit SD, with a tiny ridge penalty `RIDGE`/2·|β|² on all
  coefficients (scaled units). The penalty changes a well-posed fit by ~1e-6 relative, but keeps
  it finite when a bootstrap resample is separable (all-fail below some M, all-pass above).
- Interval: percentile bootstrap (`N_BOOT` resamples, deterministic `seed`). Each resample draws,
  within each K, that K's networks with replacement (so every K stays present), and within each
  drawn network its positions with replacement (a position carries all its rungs). The interval
  is [the (1 - level)/2, the (1 + level)/2] order statistics (numpy "lower" / "higher"); a
  resample whose slope b is ≤ 0 has no M50 and counts as -∞ for the lower end and +∞ for the
  upper end (conservative: many such resamples make the interval unbounded).
- Per K: logit p = a_K + b_K·log M on that K's rows, M50_K = exp(-a_K / b_K), bootstrap as
  above (the same resamples). A K whose pooled accuracy is below 0.5 at every trained M is
  censored above (bound "> M_max"), one at or above 0.5 at every trained M censored below
  (bound "<= M_min"): reported as a bound with m50 None, never dropped; its rows still enter the
  joint fit.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from bumpdiff_core.learn.latin import M50_THRESHOLD, bisect_rungs  # noqa: F401  (the rung search, re-exported)

VERDICT_RULE = """Declared before any data. With [low, high] the bootstrap interval of γ:
- it holds 1 and excludes 2 -> "efficient (factorized)": M50 grows like K, x and y are learned as two 1D problems;
- it holds 2 and excludes 1 -> "coupled (O(K²))": M50 grows like K², positions are learned jointly;
- it excludes both -> "neither: γ = <γ> [<low>, <high>]" (a finding in itself);
- it holds both -> "undecided"."""
EFFICIENT, COUPLED, UNDECIDED = "efficient (factorized)", "coupled (O(K²))", "undecided"

COLUMNS = ("model", "K", "seed", "rung", "M", "position", "correct")
THRESHOLD = M50_THRESHOLD   # M50: half the test positions drawn right
N_BOOT = 500
LEVEL = 0.95
MIN_K = 3         # K values whose outcomes hold both passes and fails needed for a fit
RIDGE = 1e-3      # penalty weight, scaled covariates, log-likelihood units


def verdict(gamma: float, low: float, high: float) -> str:
    """`VERDICT_RULE` applied to γ and its interval."""
    holds1, holds2 = low <= 1 <= high, low <= 2 <= high
    if holds1 and not holds2:
        return EFFICIENT
    if holds2 and not holds1:
        return COUPLED
    if holds1 and holds2:
        return UNDECIDED
    return f"neither: γ = {gamma:.2f} [{low:.2f}, {high:.2f}]"


def _logistic(x, succ, trials, ridge=RIDGE, max_iter=200):
    """Penalised ML coefficients of logit p = X β (X = x with a leading column of ones) for binomial
    counts: Newton steps, halved until the penalised negative log-likelihood does not rise."""
    X = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(X.shape[1])

    def loss(beta):
        eta = X @ beta
        return float(np.sum(trials * np.logaddexp(0.0, eta) - succ * eta) + 0.5 * ridge * beta @ beta)

    current = loss(beta)
    for _ in range(max_iter):
        mu = expit(X @ beta)
        grad = X.T @ (trials * mu - succ) + ridge * beta
        hess = (X * (trials * mu * (1 - mu))[:, None]).T @ X + ridge * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-10:
            trial = loss(beta - t * step)
            if trial <= current + 1e-12:
                break
            t /= 2
        beta, current = beta - t * step, trial
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return beta


class _Design:
    """Covariates and bootstrap bookkeeping for one model's rows, aggregated to (K, M) cells."""

    def __init__(self, df: pd.DataFrame):
        cells = df.groupby(["K", "M"], sort=True).size().index
        self.cell_k = np.array([k for k, _ in cells], dtype=np.int64)
        self.cell_m = np.array([m for _, m in cells], dtype=np.float64)
        self.cell_of_row = cells.get_indexer(pd.MultiIndex.from_frame(df[["K", "M"]]))
        self.correct = df["correct"].to_numpy(np.float64)
        networks = df.groupby(["K", "seed"], sort=True).ngroup().to_numpy()
        units = df.groupby(["K", "seed", "position"], sort=True).ngroup().to_numpy()
        self.unit_of_row = units
        unit_network = np.zeros(units.max() + 1, dtype=np.int64)
        unit_network[units] = networks
        self.network_units = [np.flatnonzero(unit_network == n) for n in range(networks.max() + 1)]
        network_k = np.zeros(networks.max() + 1, dtype=np.int64)
        network_k[networks] = df["K"].to_numpy()
        self.ks = sorted(set(self.cell_k.tolist()))
        self.k_networks = {k: np.flatnonzero(network_k == k) for k in self.ks}
        self.n_units = units.max() + 1
        self.n_networks = networks.max() + 1

    def counts(self, unit_weight=None):
        """(successes, trials) per cell, each row weighted by its unit's weight (1 by default)."""
        w = np.ones(len(self.correct)) if unit_weight is None else unit_weight[self.unit_of_row]
        n = len(self.cell_k)
        return (np.bincount(self.cell_of_row, w * self.correct, minlength=n),
                np.bincount(self.cell_of_row, w, minlength=n))

    def resample(self, rng):
        """Unit weights of one bootstrap resample: networks with replacement within each K, then
        positions with replacement within each drawn network (a network drawn m times gets
        m·n_positions position draws: the sum of m independent resamples)."""
        weight = np.zeros(self.n_units)
        for k in self.ks:
            nets = self.k_networks[k]
            for net, times in zip(nets, rng.multinomial(len(nets), np.full(len(nets), 1 / len(nets)))):
                if times:
                    units = self.network_units[net]
                    weight[units] = rng.multinomial(times * len(units), np.full(len(units), 1 / len(units)))
        return weight


def _standardise(v):
    centre, scale = float(np.mean(v)), float(np.std(v))
    return centre, scale if scale > 0 else 1.0


def _joint(design, succ, trials, std):
    """(a, b, c) of the joint fit in natural units."""
    (mm, sm), (mk, sk) = std
    logm, logk = np.log(design.cell_m), np.log(design.cell_k)
    keep = trials > 0
    x = np.column_stack([(logm - mm) / sm, (logk - mk) / sk])[keep]
    b0, b1, b2 = _logistic(x, succ[keep], trials[keep])
    b, c = b1 / sm, b2 / sk
    return b0 - b * mm - c * mk, b, c


def _per_k(design, succ, trials, k, std):
    """M50 of K's own fit logit p = a_K + b_K log M; NaN when b_K <= 0 (no M50)."""
    centre, scale = std
    sel = (design.cell_k == k) & (trials > 0)
    x = ((np.log(design.cell_m[sel]) - centre) / scale)[:, None]
    b0, b1 = _logistic(x, succ[sel], trials[sel])
    if b1 <= 0:
        return math.nan
    return float(math.exp(centre - b0 * scale / b1))


def _percentile(values, level):
    """The percentile interval; NaN replicates (no M50) at -inf for the low end, +inf for the high."""
    values = np.asarray(values, dtype=np.float64)
    undefined = ~np.isfinite(values)
    low = np.quantile(np.where(undefined, -np.inf, values), (1 - level) / 2, method="lower")
    high = np.quantile(np.where(undefined, np.inf, values), (1 + level) / 2, method="higher")
    return float(low), float(high)


def _json_number(v):
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


@dataclass(frozen=True)
class ScalingFit:
    """One model's joint fit (a, b, c; γ = -c/b with its bootstrap interval) and the verdict, plus
    per-K M50: m50_by_k[K] = (m50, low, high, bound); bound is None for a crossing K, else the
    censoring bound ("> M_max" / "<= M_min") with m50, low, high None. An interval end is ±inf
    when too many resamples had no M50. n_networks: (seed, K) pairs; n_positions: (seed, K,
    position) units; n_rows: outcome rows, all of them in the joint fit."""
    model: str
    gamma: float
    low: float
    high: float
    verdict: str
    a: float
    b: float
    c: float
    m50_by_k: dict
    n_networks: int
    n_positions: int
    n_rows: int = 0
    n_boot: int = N_BOOT
    level: float = LEVEL

    def m50_joint(self, K) -> float:
        """The joint model's M50 at K: exp(-(a + c log K) / b)."""
        return float(math.exp(-(self.a + self.c * math.log(K)) / self.b))

    def to_dict(self) -> dict:
        """JSON-ready: K keys as strings; NaN and ±inf (an unbounded interval end) as None."""
        out = {k: (_json_number(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["m50_by_k"] = {str(k): {"m50": _json_number(m), "low": _json_number(lo), "high": _json_number(hi),
                                    "bound": bound} for k, (m, lo, hi, bound) in sorted(self.m50_by_k.items())}
        out["verdict_rule"] = VERDICT_RULE
        return out


def _checked(outcomes: pd.DataFrame, model) -> tuple[str, pd.DataFrame]:
    missing = [c for c in COLUMNS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lack column(s) {', '.join(missing)}; need {', '.join(COLUMNS)}")
    models = sorted(outcomes["model"].unique().tolist())
    if model is None:
        if len(models) != 1:
            raise ValueError(f"outcomes hold {len(models)} models ({', '.join(map(str, models))}): pass model=")
        model = models[0]
    df = outcomes[outcomes["model"] == model]
    if df.empty:
        raise ValueError(f"model={model!r} has no rows; models present: {', '.join(map(str, models))}")
    if df[list(COLUMNS)].isna().any().any():
        raise ValueError("outcomes hold missing values")
    if not df["correct"].isin([0, 1]).all():
        raise ValueError("correct must be 0 or 1")
    if (df["rung"] < 1).any() or not np.array_equal(df["M"].to_numpy(), (df["rung"] * df["K"]).to_numpy()):
        raise ValueError("every row needs rung >= 1 and M = rung · K")
    return model, df.reset_index(drop=True)


def fit_scaling(outcomes: pd.DataFrame, model=None, n_boot: int = N_BOOT, seed: int = 0,
                level: float = LEVEL) -> ScalingFit:
    """The joint fit, per-K M50s and the `VERDICT_RULE` verdict for one model (`model`; may be
    omitted when `outcomes` hold one). ValueError when fewer than `MIN_K` K values have outcomes
    with both passes and fails, or when accuracy does not rise with M (b <= 0: no M50)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} is out of range: an integer n_boot ≥ 1")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is out of range: 0 < level < 1")
    model, df = _checked(outcomes, model)
    mixed = sorted(int(k) for k, g in df.groupby("K")["correct"] if 0 < g.sum() < len(g))
    design = _Design(df)
    succ, trials = design.counts()
    rate = succ / trials
    crossing = [k for k in design.ks if rate[design.cell_k == k].min() < THRESHOLD <= rate[design.cell_k == k].max()]
    if len(mixed) < MIN_K:
        raise ValueError(f"model {model!r}: only {len(mixed)} K value(s) ({', '.join(map(str, mixed)) or 'none'}) have "
                         f"outcomes with both passes and fails ({len(crossing)} with a non-censored M50); "
                         f"at least {MIN_K} are needed to fit how M50 grows with K")
    std = (_standardise(np.log(design.cell_m)), _standardise(np.log(design.cell_k)))
    k_std = {k: _standardise(np.log(design.cell_m[design.cell_k == k])) for k in crossing}
    a, b, c = _joint(design, succ, trials, std)
    if b <= 0:
        raise ValueError(f"model {model!r}: accuracy does not rise with the training-set size (b = {b:.3g} <= 0): "
                         "no M50, no scaling fit")
    rng = np.random.default_rng(seed)
    gammas, boot_m50 = np.empty(n_boot), {k: np.empty(n_boot) for k in crossing}
    for i in range(n_boot):
        s, t = design.counts(design.resample(rng))
        _, bb, cc = _joint(design, s, t, std)
        gammas[i] = -cc / bb if bb > 0 else math.nan
        for k in crossing:
            boot_m50[k][i] = _per_k(design, s, t, k, k_std[k])
    low, high = _percentile(gammas, level)
    m50_by_k = {}
    for k in design.ks:
        ms = design.cell_m[design.cell_k == k]
        if k in crossing:
            m50_by_k[k] = (_per_k(design, succ, trials, k, k_std[k]), *_percentile(boot_m50[k], level), None)
        elif rate[design.cell_k == k].max() < THRESHOLD:
            m50_by_k[k] = (None, None, None, f"> {int(ms.max())}")
        else:
            m50_by_k[k] = (None, None, None, f"<= {int(ms.min())}")
    gamma = -c / b
    return ScalingFit(model=str(model), gamma=float(gamma), low=low, high=high, verdict=verdict(gamma, low, high),
                      a=float(a), b=float(b), c=float(c), m50_by_k=m50_by_k, n_networks=int(design.n_networks),
                      n_positions=int(design.n_units), n_rows=len(df), n_boot=int(n_boot), level=float(level))
