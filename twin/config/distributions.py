"""Random-variable descriptions used in scenario files.

Every duration in a scenario is in **minutes**. A duration may be written as a bare number (a constant)
or as a mapping with a ``dist`` key, for example ``{dist: exponential, mean: 4.0}``.

This module only *describes* distributions (parameters, validation, exact means); drawing numbers is
the engine's job (:mod:`twin.sampling`), so the configuration layer stays free of runtime state.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


class Constant(_Dist):
    """Always the same value (minutes)."""

    dist: Literal["constant"] = "constant"
    value: float = Field(ge=0, description="The value, in minutes.")

    @property
    def mean(self) -> float:
        return self.value


class Uniform(_Dist):
    """Uniform on [low, high] (minutes)."""

    dist: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> "Uniform":
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low}); swap the two values")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class Triangular(_Dist):
    """Triangular with minimum ``low``, most likely ``mode`` and maximum ``high`` (minutes)."""

    dist: Literal["triangular"]
    low: float = Field(ge=0)
    mode: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> "Triangular":
        if not self.low <= self.mode <= self.high:
            raise ValueError(
                f"need low <= mode <= high, got {self.low}, {self.mode}, {self.high}; reorder the values"
            )
        if self.low == self.high:
            raise ValueError("low equals high; use a constant instead")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3


class Normal(_Dist):
    """Normal with ``mean`` and ``sd`` (minutes), truncated at 0 (negative draws are redrawn)."""

    dist: Literal["normal"]
    mu: float = Field(alias="mean", description="Mean of the untruncated normal, minutes.")
    sd: float = Field(ge=0, description="Standard deviation of the untruncated normal, minutes.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _positive_mass(self) -> "Normal":
        if self.sd == 0 and self.mu < 0:
            raise ValueError(f"mean {self.mu} with sd 0 is never positive; use a mean >= 0")
        if self.sd > 0 and self.mu / self.sd < -5:
            raise ValueError(
                f"mean {self.mu} is more than 5 sd below 0, so almost every draw would be rejected; "
                "raise the mean or lower sd"
            )
        return self

    @property
    def mean(self) -> float:
        """Exact mean of the normal truncated to [0, inf)."""
        if self.sd == 0:
            return self.mu
        alpha = -self.mu / self.sd
        pdf = math.exp(-0.5 * alpha * alpha) / math.sqrt(2 * math.pi)
        tail = 0.5 * math.erfc(alpha / math.sqrt(2))  # P(X > 0)
        return self.mu + self.sd * pdf / tail


class Lognormal(_Dist):
    """Lognormal given by the ``mean`` and ``sd`` of the variable itself (minutes), not of its log."""

    dist: Literal["lognormal"]
    mu: float = Field(alias="mean", gt=0, description="Mean of the variable, minutes.")
    sd: float = Field(ge=0, description="Standard deviation of the variable, minutes.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mu

    def log_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        sigma2 = math.log(1 + (self.sd / self.mu) ** 2)
        return math.log(self.mu) - sigma2 / 2, math.sqrt(sigma2)


class Exponential(_Dist):
    """Exponential with the given ``mean`` (minutes)."""

    dist: Literal["exponential"]
    mu: float = Field(alias="mean", gt=0, description="Mean, minutes.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mu


class Gamma(_Dist):
    """Gamma with ``shape`` k and ``scale`` theta (minutes); mean k*theta."""

    dist: Literal["gamma"]
    shape: float = Field(gt=0)
    scale: float = Field(gt=0, description="Scale, minutes.")

    @property
    def mean(self) -> float:
        return self.shape * self.scale


class Weibull(_Dist):
    """Weibull with ``shape`` k and ``scale`` lambda (minutes). Shape > 1 models ageing (wear-out)."""

    dist: Literal["weibull"]
    shape: float = Field(gt=0)
    scale: float = Field(gt=0, description="Scale, minutes.")

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)


class Empirical(_Dist):
    """Draws uniformly from observed ``samples`` (minutes), e.g. times measured on the shop floor."""

    dist: Literal["empirical"]
    samples: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


def _number_is_constant(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return {"dist": "constant", "value": value}
    if isinstance(value, dict) and "dist" not in value and "value" in value:
        return {"dist": "constant", **value}
    return value


Distribution = Annotated[
    Union[Constant, Uniform, Triangular, Normal, Lognormal, Exponential, Gamma, Weibull, Empirical],
    Field(discriminator="dist"),
    BeforeValidator(_number_is_constant),
]
"""A duration in minutes: a number, or a mapping ``{dist: NAME, ...parameters}``."""

DIST_NAMES = ("constant", "uniform", "triangular", "normal", "lognormal", "exponential", "gamma",
              "weibull", "empirical")
