"""Seeded statistics of cutmix.sampling: Beta and Gamma moments, a two-sample KS test, uniform draws.

Every statistic uses a fixed seed, so verdicts are deterministic; tolerances are still set from the sampling error
(a few standard errors), so that they would hold for any seed with overwhelming probability and yet catch a
wrong distribution.
"""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import ks_statistic
from hypothesis import given
from hypothesis import strategies as st

from cutmix import sampling

N = 20_000


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_moments(x: torch.Tensor, mean: float, var: float, z: float = 5.0) -> None:
    """Sample mean within z standard errors of ``mean``; sample variance within z standard errors of ``var``.

    The standard error of the variance is estimated from the sample itself: sd((x - m)^2) / sqrt(n).
    """
    n = x.numel()
    x = x.double()
    m = float(x.mean())
    assert abs(m - mean) < z * math.sqrt(var / n), f"mean {m} vs {mean}"
    sq = (x - m) ** 2
    se_var = float(sq.std()) / math.sqrt(n)
    assert abs(float(sq.mean()) - var) < z * se_var, f"variance {float(sq.mean())} vs {var}"


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0, 2.0, 5.0])
def test_beta_moments(alpha):
    x = sampling.beta(alpha, N, _gen(1))
    assert x.dtype == torch.float64 and x.shape == (N,)
    assert bool(((x >= 0) & (x <= 1)).all())
    _assert_moments(x, 0.5, 1.0 / (4.0 * (2.0 * alpha + 1.0)))


@pytest.mark.parametrize(("a", "b"), [(2.0, 5.0), (0.3, 0.7), (1.0, 3.0), (4.0, 1.0)])
def test_beta_asymmetric_moments(a, b):
    x = sampling.beta(a, N, _gen(2), beta=b)
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    _assert_moments(x, mean, var)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0, 2.0, 5.0])
def test_beta_two_sample_ks_against_torch_distributions(alpha):
    """KS distance to torch.distributions.Beta samples below the 0.1% critical value 1.95 * sqrt(2 / n).

    The reference uses float64 concentrations: float32 Beta samples round values within 6e-8 of 1 up to exactly 1,
    which at alpha = 0.2 alone moves the empirical CDF by ~0.019 -- as much as the critical value.
    """
    x = sampling.beta(alpha, N, _gen(3))
    torch.manual_seed(3)
    conc = torch.tensor(alpha, dtype=torch.float64)
    ref = torch.distributions.Beta(conc, conc).sample((N,))
    assert ks_statistic(x, ref) < 1.95 * math.sqrt(2.0 / N)


@pytest.mark.parametrize("alpha", [1e-3, 0.01, 0.05, 0.2, 1.0, 5.0])
def test_symmetric_beta_is_symmetric(alpha):
    """Beta(a, a) is symmetric about 1/2 for every a > 0, so P(x < 1/2) = 1/2 (sd of the estimate 0.0035)."""
    x = sampling.beta(alpha, N, _gen(4))
    assert not bool(x.isnan().any())
    below = float((x < 0.5).double().mean())
    assert abs(below - 0.5) < 5 * math.sqrt(0.25 / N), f"P(x < 1/2) = {below}"
    assert abs(float(x.mean()) - 0.5) < 5 * math.sqrt(0.25 / N)


def test_alpha_one_mean_lambda_is_half():
    lam = sampling.beta(1.0, N, _gen(5))
    _assert_moments(lam, 0.5, 1 / 12)
    assert ks_statistic(lam, torch.rand(N, generator=_gen(6), dtype=torch.float64)) < 1.95 * math.sqrt(2.0 / N)


@pytest.mark.parametrize("shape", [0.2, 0.5, 1.0, 2.5, 7.0])
def test_gamma_moments(shape):
    x = sampling.gamma(shape, N, _gen(7))
    assert x.dtype == torch.float64 and bool((x >= 0).all())
    _assert_moments(x, shape, shape)  # Gamma(k, 1): mean k, variance k


def test_gamma_ks_against_torch_distributions():
    for shape in (0.5, 3.0):
        torch.manual_seed(8)
        ref = torch.distributions.Gamma(torch.tensor(shape, dtype=torch.float64), torch.tensor(1.0)).sample((N,))
        assert ks_statistic(sampling.gamma(shape, N, _gen(8)), ref) < 1.95 * math.sqrt(2.0 / N)


@pytest.mark.parametrize("shape", [0.0, -1.0])
def test_gamma_rejects_bad_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        sampling.gamma(shape, 10)


def test_zero_draws():
    assert sampling.beta(0.5, 0).shape == (0,)
    assert sampling.gamma(2.0, 0).shape == (0,)


def test_same_seed_same_draws_different_seed_different():
    for draw in (
        lambda g: sampling.beta(0.4, 100, g),
        lambda g: sampling.gamma(3.0, 100, g),
        lambda g: sampling.uniform(100, g),
        lambda g: sampling.permutation(100, g),
    ):
        assert torch.equal(draw(_gen(9)), draw(_gen(9)))
        assert not torch.equal(draw(_gen(9)), draw(_gen(10)))


def test_uniform_and_randint():
    u = sampling.uniform(N, _gen(11))
    assert bool(((u >= 0) & (u < 1)).all())
    _assert_moments(u, 0.5, 1 / 12)
    high = torch.tensor([1, 2, 3, 7] * (N // 4))
    r = sampling.randint(high, N, _gen(12))
    assert r.dtype == torch.int64 and bool(((r >= 0) & (r < high)).all())
    for k in (2, 3, 7):
        counts = torch.bincount(r[high == k], minlength=k).double()
        expected = (N // 4) / k
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < (k - 1) + 5 * math.sqrt(2 * (k - 1))
    assert (r[high == 1] == 0).all()


def test_permutation_is_a_uniform_permutation():
    n, trials = 4, 6000
    g = _gen(13)
    first = torch.zeros(n, n)
    for _ in range(trials):
        p = sampling.permutation(n, g)
        assert sorted(p.tolist()) == list(range(n))
        first[torch.arange(n), p] += 1
    # every value lands in every position with probability 1/n (sd of each count ~ 34)
    assert float((first - trials / n).abs().max()) < 5 * math.sqrt(trials * (1 / n) * (1 - 1 / n))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_bernoulli(p):
    x = sampling.bernoulli(p, N, _gen(14))
    assert x.dtype == torch.bool
    frac = float(x.double().mean())
    if p in (0.0, 1.0):
        assert frac == p
    else:
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / N)


@given(alpha=st.floats(0.01, 50.0), beta=st.floats(0.01, 50.0), seed=st.integers(0, 2**31))
def test_beta_range_property(alpha, beta, seed):
    x = sampling.beta(alpha, 64, _gen(seed), beta=beta)
    assert x.shape == (64,) and not bool(x.isnan().any())
    assert bool(((x >= 0) & (x <= 1)).all())
