"""Turn distribution descriptions (:mod:`twin.config.distributions`) into fast samplers.

A sampler is a zero-argument callable returning a float (minutes). Draws are made in blocks from one
named ``Generator``, which keeps the per-event cost low while the sequence stays a pure function of
the stream, so results are reproducible.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from twin.config import distributions as d

Sampler = Callable[[], float]
_BLOCK = 512


def _blocks(draw: Callable[[int], np.ndarray]) -> Iterator[float]:
    while True:
        yield from draw(_BLOCK).tolist()


def _truncated_normal(rng: np.random.Generator, mu: float, sd: float) -> Callable[[int], np.ndarray]:
    def draw(n: int) -> np.ndarray:
        x = rng.normal(mu, sd, n)
        return x[x >= 0]
    return draw


def make_sampler(dist: d.Constant | d.Uniform | d.Triangular | d.Normal | d.Lognormal | d.Exponential
                 | d.Gamma | d.Weibull | d.Empirical, rng: np.random.Generator) -> Sampler:
    """A sampler of ``dist`` drawing from ``rng``."""
    if isinstance(dist, d.Constant) or (isinstance(dist, d.Normal) and dist.sd == 0):
        value = float(dist.mean)
        return lambda: value
    if isinstance(dist, d.Uniform):
        draw = lambda n: rng.uniform(dist.low, dist.high, n)  # noqa: E731
    elif isinstance(dist, d.Triangular):
        draw = lambda n: rng.triangular(dist.low, dist.mode, dist.high, n)  # noqa: E731
    elif isinstance(dist, d.Normal):
        draw = _truncated_normal(rng, dist.mu, dist.sd)
    elif isinstance(dist, d.Lognormal):
        mu, sigma = dist.log_params()
        draw = lambda n: rng.lognormal(mu, sigma, n)  # noqa: E731
    elif isinstance(dist, d.Exponential):
        draw = lambda n: rng.exponential(dist.mu, n)  # noqa: E731
    elif isinstance(dist, d.Gamma):
        draw = lambda n: rng.gamma(dist.shape, dist.scale, n)  # noqa: E731
    elif isinstance(dist, d.Weibull):
        draw = lambda n: dist.scale * rng.weibull(dist.shape, n)  # noqa: E731
    elif isinstance(dist, d.Empirical):
        samples = np.asarray(dist.samples, dtype=float)
        draw = lambda n: samples[rng.integers(0, len(samples), n)]  # noqa: E731
    else:  # pragma: no cover - the schema admits no other kind
        raise TypeError(f"unknown distribution {dist!r}")
    return _blocks(draw).__next__


def make_uniform(rng: np.random.Generator) -> Sampler:
    """Uniform(0, 1) draws, for quality outcomes and routing choices."""
    return _blocks(rng.random).__next__
