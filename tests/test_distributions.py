"""Samplers draw from the distributions the schema describes: sample moments against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter

from twin.config.distributions import Distribution
from twin.rng import Streams
from twin.sampling import make_sampler

CASES = [
    ({"dist": "uniform", "low": 2, "high": 6}, 4.0, (4 / 12) ** 0.5 * 2),
    ({"dist": "triangular", "low": 1, "mode": 2, "high": 6}, 3.0, math.sqrt((1 + 4 + 36 - 2 - 6 - 12) / 18)),
    ({"dist": "normal", "mean": 1.0, "sd": 1.0}, None, None),
    ({"dist": "lognormal", "mean": 5.0, "sd": 2.0}, 5.0, 2.0),
    ({"dist": "exponential", "mean": 3.0}, 3.0, 3.0),
    ({"dist": "gamma", "shape": 2.0, "scale": 1.5}, 3.0, math.sqrt(2) * 1.5),
    ({"dist": "weibull", "shape": 2.0, "scale": 10.0}, 10 * math.gamma(1.5),
     10 * math.sqrt(math.gamma(2) - math.gamma(1.5) ** 2)),
    ({"dist": "empirical", "samples": [1, 2, 2, 7]}, 3.0, math.sqrt(np.var([1, 2, 2, 7]))),
    (4.5, 4.5, 0.0),
]


@pytest.mark.parametrize("spec,mean,sd", CASES)
def test_sample_moments(spec, mean, sd):
    dist = TypeAdapter(Distribution).validate_python(spec)
    draw = make_sampler(dist, Streams(1, 0).generator("test"))
    x = np.array([draw() for _ in range(200_000)])
    assert x.min() >= 0
    if mean is None:  # normal(1, 1) truncated at 0: the exact mean from the standard formula
        phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
        mean = 1 + phi / (0.5 * math.erfc(-1 / math.sqrt(2)))
        sd = x.std()
    assert dist.mean == pytest.approx(mean, rel=1e-9)
    assert x.mean() == pytest.approx(mean, abs=4 * sd / math.sqrt(len(x)) + 1e-12)
    assert x.std() == pytest.approx(sd, rel=0.02, abs=1e-12)


def test_streams_are_named_not_ordered():
    a = Streams(5, 2).generator("m1", "process").random(3)
    Streams(5, 2).generator("m0", "process").random(3)
    assert (a == Streams(5, 2).generator("m1", "process").random(3)).all()
    assert not (a == Streams(5, 3).generator("m1", "process").random(3)).all()
    assert not (a == Streams(5, 2).generator("m1", "setup").random(3)).all()


@pytest.mark.parametrize("spec,fix", [
    ({"dist": "uniform", "low": 5, "high": 1}, "swap"),
    ({"dist": "triangular", "low": 1, "mode": 9, "high": 3}, "reorder"),
    ({"dist": "normal", "mean": -10, "sd": 1}, "raise the mean"),
])
def test_bad_parameters_say_how_to_fix(spec, fix):
    with pytest.raises(ValueError, match=fix):
        TypeAdapter(Distribution).validate_python(spec)
