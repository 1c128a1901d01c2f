"""Maintenance policy of one machine (the maintenance lever): when a life ends in maintenance instead of a
failure, and who repairs. Times in available working minutes of age, except repair and response times."""

from __future__ import annotations

import math
from typing import Callable, Generator, Optional

import simpy

from twin.config.levers import MaintenanceLever


class Upkeep:
    """Draws for one server: its own streams for predictive warnings and false alarms (named per server,
    so common random numbers hold across policies), and the shared technician crew."""

    def __init__(self, lever: Optional[MaintenanceLever], duration: Callable[[], float],
                 uniform: Callable[[], float], false_alarm_gap: Optional[Callable[[], float]],
                 technicians: Optional[simpy.Resource]):
        self.lever = lever
        self.duration = duration
        self._uniform = uniform
        self._false_alarm_gap = false_alarm_gap
        self.technicians = technicians
        self.response_time = lever.response_time if lever else 0.0

    def renewal_age(self, life: float) -> Optional[float]:
        """Age (working minutes) at which maintenance renews a machine that would fail at ``life``, or
        None when the machine runs to failure."""
        lever = self.lever
        if lever is None or lever.policy == "reactive":
            return None
        if lever.policy == "preventive":
            return lever.interval
        warning = life - lever.lead_time if self._uniform() < lever.recall else math.inf
        false_alarm = self._false_alarm_gap() if self._false_alarm_gap else math.inf
        age = min(warning, false_alarm)
        return max(age, 0.0) if math.isfinite(age) else None

    def with_technician(self, env: simpy.Environment, minutes: float) -> Generator:
        """Wait for a technician (if the crew is limited), then work ``minutes``."""
        if self.technicians is None:
            yield env.timeout(minutes)
            return
        with self.technicians.request() as request:
            yield request
            yield env.timeout(minutes)
