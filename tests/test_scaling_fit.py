"""The M50(K) ∝ K^γ fit and the rung bisection (bumpdiff_core/claims/scaling_fit.py).

Synthetic outcomes follow p = sigmoid(β (log M - γ log K - α - δ)) with β = 4, K ∈ {8, 12, 16, 20},
every rung 1..K-2, 2 seeds (networks) per K, 2K test positions per network, δ ~ N(0, 0.05) per
network. A position passes at M when its own uniform draw u < p(M), so it passes at every larger
M too (nested rungs). γ = 1 uses α = log 4 (M50 = 4K, rung 4), γ = 2 uses α = log 0.4
(M50 = 0.4 K², rung 3.2 at K = 8 to 8 at K = 20): ~3000 rows, and the 95 % interval is about
±0.25 wide, so it excludes the other law by ~4 half-widths. 200 bootstrap resamples in the tests.
"""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bumpdiff_core.claims import scaling_fit as sf

BETA, SIZES, SEEDS, N_BOOT = 4.0, (8, 12, 16, 20), (0, 1), 200
LAWS = {1: math.log(4), 2: math.log(0.4)}  # γ_true -> α


def synthetic(gamma, alpha=None, sizes=SIZES, seeds=SEEDS, rungs=None, rng_seed=0, model="m"):
    alpha = LAWS[gamma] if alpha is None else alpha
    rng = np.random.default_rng(rng_seed)
    frames = []
    for K in sizes:
        for seed in seeds:
            shift, u = rng.normal(0, 0.05), rng.random(2 * K)
            for r in (rungs(K) if rungs else range(1, K - 1)):
                p = expit(BETA * (math.log(r * K) - gamma * math.log(K) - alpha - shift))
                frames.append(pd.DataFrame({"model": model, "K": K, "seed": seed, "rung": r, "M": r * K,
                                            "position": np.arange(2 * K), "correct": (u < p).astype(int)}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("gamma, expected", [(1, sf.EFFICIENT), (2, sf.COUPLED)])
def test_recovers_gamma_and_the_verdict(gamma, expected):
    df = synthetic(gamma)
    fit = sf.fit_scaling(df, n_boot=N_BOOT, seed=0)
    assert fit.low <= gamma <= fit.high and fit.low <= fit.gamma <= fit.high
    assert abs(fit.gamma - gamma) < 0.25
    assert fit.verdict == expected
    assert abs(fit.b - BETA) < 0.6  # b estimates β, c estimates -β γ
    assert fit.n_networks == 8 and fit.n_positions == 2 * sum(2 * k for k in SIZES) and fit.n_rows == len(df)
    for K in SIZES:  # every K crosses: per-K M50 near the law's, inside its interval's order of magnitude
        m50, low, high, bound = fit.m50_by_k[K]
        true = math.exp(LAWS[gamma]) * K ** gamma
        assert bound is None and low <= m50 <= high and abs(math.log(m50 / true)) < 0.3
        assert abs(math.log(fit.m50_joint(K) / true)) < 0.2
    again = sf.fit_scaling(df, n_boot=N_BOOT, seed=0)
    assert (again.low, again.high) == (fit.low, fit.high)  # deterministic bootstrap
    text = json.dumps(fit.to_dict(), allow_nan=False)
    out = json.loads(text)
    assert out["m50_by_k"]["8"]["bound"] is None and out["verdict"] == expected and "verdict_rule" in out


def test_censored_k_is_a_bound_and_still_enters_the_joint_fit():
    base = synthetic(2)
    above = synthetic(2, sizes=(24,), rungs=lambda K: range(1, 4), rng_seed=1)  # M50 = 230 > M = 72
    fit, without = (sf.fit_scaling(d, n_boot=N_BOOT) for d in (pd.concat([base, above]), base))
    assert fit.m50_by_k[24] == (None, None, None, "> 72")
    assert fit.n_networks == without.n_networks + 2 and fit.n_rows == len(base) + len(above)
    assert not math.isclose(fit.c, without.c, rel_tol=1e-6) and not math.isclose(fit.a, without.a, rel_tol=1e-6)
    assert fit.verdict == sf.COUPLED
    below = synthetic(1, sizes=(24,), rungs=lambda K: range(10, 13), rng_seed=1)  # M50 = 96 < M = 240
    fit = sf.fit_scaling(pd.concat([synthetic(1), below]), n_boot=N_BOOT)
    assert fit.m50_by_k[24] == (None, None, None, "<= 240")
    assert json.loads(json.dumps(fit.to_dict(), allow_nan=False))["m50_by_k"]["24"]["m50"] is None


def test_refuses_fewer_than_three_k_values_with_passes_and_fails():
    with pytest.raises(ValueError, match=r"only 2 K value\(s\) \(8, 12\).*at least 3"):
        sf.fit_scaling(synthetic(1, sizes=(8, 12)), n_boot=N_BOOT)
    df = synthetic(1, sizes=(8, 12, 16))
    df.loc[df["K"] == 16, "correct"] = 1  # K = 16 always passes: it cannot place an M50
    with pytest.raises(ValueError, match=r"only 2 K value"):
        sf.fit_scaling(df, n_boot=N_BOOT)
    df = synthetic(1)
    df["correct"] = 1 - df["correct"]  # accuracy falls with M: no M50
    with pytest.raises(ValueError, match="does not rise"):
        sf.fit_scaling(df, n_boot=N_BOOT)


def test_input_checks():
    df = pd.concat([synthetic(1, model="global"), synthetic(1, model="separable")])
    with pytest.raises(ValueError, match="pass model="):
        sf.fit_scaling(df)
    with pytest.raises(ValueError, match="no rows"):
        sf.fit_scaling(df, model="other")
    with pytest.raises(ValueError, match="lack column"):
        sf.fit_scaling(df.drop(columns="position"), model="global")
    bad = df.copy()
    bad.loc[0, "M"] += 1
    with pytest.raises(ValueError, match="M = rung"):
        sf.fit_scaling(bad, model="global")
    with pytest.raises(ValueError, match="n_boot"):
        sf.fit_scaling(df, model="global", n_boot=0)
    assert sf.fit_scaling(df, model="separable", n_boot=20).model == "separable"


def test_verdict_rule():
    assert sf.verdict(1.1, 0.8, 1.4) == sf.EFFICIENT
    assert sf.verdict(1.9, 1.6, 2.2) == sf.COUPLED
    assert sf.verdict(1.5, 0.9, 2.1) == sf.UNDECIDED
    assert sf.verdict(1.5, -math.inf, math.inf) == sf.UNDECIDED
    assert sf.verdict(1.5, 1.3, 1.7) == "neither: γ = 1.50 [1.30, 1.70]"
    assert "holds 1 and excludes 2" in sf.VERDICT_RULE


def _bisect(K, first_passing):
    """Bisection against a monotone truth: rung r passes iff r >= first_passing."""
    finished = {}
    while (r := sf.bisect_rungs(K, finished)) is not None:
        assert r not in finished and 1 <= r <= K - 2
        finished[r] = 0.9 if r >= first_passing else 0.1
    return finished


@pytest.mark.parametrize("K", (3, 8, 16, 20, 32))
def test_bisection_closes_the_bracket_in_log_steps(K):
    top = K - 2
    for first in range(1, top + 2):  # top + 1: no rung passes (censored above)
        finished = _bisect(K, first)
        assert len(finished) <= math.ceil(math.log2(top + 1))
        if first == 1:
            assert finished[1] >= 0.5  # censored: M50 <= K
        elif first == top + 1:
            assert finished[top] < 0.5  # censored: M50 > (K - 2) K
        else:
            assert finished[first] >= 0.5 and finished[first - 1] < 0.5


def test_bisection_steps_and_checks():
    assert sf.bisect_rungs(16, {}) == 7
    assert sf.bisect_rungs(16, {7: 0.8}) == 3
    assert sf.bisect_rungs(16, {7: 0.2}) == 11
    assert sf.bisect_rungs(16, {7: 0.2, 8: 0.5}) is None  # threshold counts as passing
    assert sf.bisect_rungs(16, {5: 0.6, 7: 0.4}) == 2  # a fail above the smallest pass is ignored
    assert sf.bisect_rungs(16, {3: 0.4, 5: 0.6, 7: 0.4}) == 4
    with pytest.raises(ValueError, match=r"rung 15 is out of range: 1 ≤ rung ≤ 14 for K = 16"):
        sf.bisect_rungs(16, {15: 0.9})
    with pytest.raises(ValueError, match="not an accuracy"):
        sf.bisect_rungs(16, {3: math.nan})
    with pytest.raises(ValueError, match="K=2"):
        sf.bisect_rungs(2, {})
