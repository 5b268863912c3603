"""Random draws that honour an explicit ``torch.Generator``.

``torch.distributions.Beta`` draws from the global RNG only, so a seeded, per-transform stream needs its own Beta
sampler. We use the Gamma ratio Beta(a, b) = G_a / (G_a + G_b) with Marsaglia & Tsang's (2000) squeeze method for
the Gammas: exact in distribution, vectorised over samples (rejection rounds loop, samples never do), and cheap.

All draws happen on the generator's device (CPU when no generator is given), so that a CPU generator never makes
an accelerator wait; callers move the few resulting numbers to where the images are.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cutmix._checks import check_alpha, check_generator, check_int, check_probability

# Candidates drawn per sample and rejection round. Marsaglia-Tsang accepts >= 95% of candidates for shape >= 1, so
# with four of them a second round is needed for fewer than one sample in 10^5.
_CANDIDATES = 4


def _device(generator: torch.Generator | None) -> torch.device:
    """The generator's device (CPU without one); rejects anything that is not a generator."""
    if generator is None:
        return torch.device("cpu")
    return check_generator(generator).device


def uniform(n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    """``n`` draws from U[0, 1)."""
    check_int(n, "n", low=0)
    return torch.rand(n, generator=generator, device=_device(generator), dtype=dtype)


def randint(high: Tensor | int, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` integers uniform in [0, high) where ``high`` may differ per draw (a tensor of n values >= 1)."""
    u = uniform(n, generator)
    if isinstance(high, Tensor):
        if high.device.type == "cpu" and high.numel() and bool((high < 1).any()):
            raise ValueError(f"high must be >= 1 everywhere, got a minimum of {high.min().item()}")
    else:
        check_int(high, "high")
    high_t = torch.as_tensor(high, device=u.device, dtype=torch.float64)
    return (u * high_t).floor_().long().minimum((high_t - 1).long())


def permutation(n: int, generator: torch.Generator | None = None) -> Tensor:
    """A uniformly random permutation of range(n)."""
    check_int(n, "n", low=0)
    return torch.randperm(n, generator=generator, device=_device(generator))


def log_gamma(shape: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` draws of log(G), G ~ Gamma(shape, 1), in float64 (Marsaglia & Tsang; U^(1/a) boost for shape < 1).

    The log keeps tiny shapes usable: for shape 0.001 most Gamma draws underflow to 0, their logs do not.
    """
    check_alpha(shape, "shape")
    check_int(n, "n", low=0)
    device = _device(generator)
    boosted = shape < 1.0
    a = shape + 1.0 if boosted else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64, device=device)
    todo = torch.ones(n, dtype=torch.bool, device=device)
    while n and bool(todo.any()):
        z = torch.randn(n, _CANDIDATES, generator=generator, device=device, dtype=torch.float64)
        u = torch.rand(n, _CANDIDATES, generator=generator, device=device, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        ok = v > 0
        log_v = torch.log(torch.where(ok, v, torch.ones_like(v)))
        ok &= torch.log(u) < 0.5 * z * z + d - d * v + d * log_v
        first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)  # the first accepted candidate
        got = ok.any(dim=1) & todo
        out = torch.where(got, math.log(d) + log_v.gather(1, first).squeeze(1), out)
        todo &= ~got
    if boosted:
        out = out + torch.log(uniform(n, generator)) / shape
    return out


def gamma(shape: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` draws from Gamma(shape, 1) in float64."""
    return log_gamma(shape, n, generator).exp()


def beta(alpha: float, n: int, generator: torch.Generator | None = None, beta: float | None = None) -> Tensor:
    """``n`` draws from Beta(alpha, beta) (symmetric when ``beta`` is None) in float64.

    Beta(1, 1), the paper's default, is the uniform distribution and is drawn as such. Otherwise
    G_a / (G_a + G_b) = sigmoid(log G_a - log G_b), which stays exact when the Gammas underflow.
    """
    check_alpha(alpha, "alpha")
    b = alpha if beta is None else check_alpha(beta, "beta")
    if alpha == 1.0 and b == 1.0:
        return uniform(n, generator)
    return torch.sigmoid(log_gamma(alpha, n, generator) - log_gamma(b, n, generator))


def bernoulli(p: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` boolean draws that are True with probability ``p`` (always one uniform draw per sample)."""
    check_probability(p, "p")
    return uniform(n, generator) < p
