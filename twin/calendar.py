"""Working-time arithmetic for the factory calendar (minutes; time 0 is Monday 00:00).

A :class:`WorkCalendar` is a weekly pattern of working windows. It answers, in O(log n):
how much working time lies between two instants, and when a job needing ``d`` working minutes that
starts at ``t`` ends (work pauses outside the windows and resumes in the next one).
"""

from __future__ import annotations

import bisect
from typing import Iterable, Optional

from twin.config.scenario import DAYS, CalendarConfig, clock_minutes

WEEK = 7 * 1440.0
"""Length of the calendar period, minutes."""


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _subtract(base: list[tuple[float, float]], cuts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for a, b in base:
        pieces = [(a, b)]
        for c, e in cuts:
            pieces = [p for x, y in pieces for p in ((x, min(y, c)), (max(x, e), y)) if p[1] > p[0]]
        out.extend(pieces)
    return _merge(out)


def _fold(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Wrap intervals into [0, WEEK) (a Sunday night shift continues on Monday morning)."""
    out = []
    for a, b in intervals:
        a, b = a % WEEK, a % WEEK + (b - a)
        if b > WEEK:
            out += [(a, WEEK), (0.0, b - WEEK)]
        else:
            out.append((a, b))
    return _merge(out)


def _daily(start: str, end: str, days: Iterable[int]) -> list[tuple[float, float]]:
    s, e = clock_minutes(start), clock_minutes(end)
    if e <= s:
        e += 1440
    return [(day * 1440.0 + s, day * 1440.0 + e) for day in days]


class WorkCalendar:
    """Working windows repeating every week. ``None`` windows means always working."""

    def __init__(self, windows: Optional[list[tuple[float, float]]]):
        self.always = windows is None
        self.windows = windows or []
        self._starts = [a for a, _ in self.windows]
        self._cum = [0.0]
        for a, b in self.windows:
            self._cum.append(self._cum[-1] + b - a)
        self.per_week = self._cum[-1]
        self._last: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        if not self.always and self.per_week <= 0:
            raise ValueError("the calendar has no working time; add shifts or workdays")

    def _worked(self, t: float) -> float:
        """Working minutes in [0, t]. Consecutive calls mostly fall in the same stretch (a working
        window or the gap after it), so that stretch is remembered: (start, end, worked at start)."""
        lo, hi, base, length = self._last
        if not lo <= t < hi:
            weeks, r = divmod(t, WEEK)
            i = bisect.bisect_right(self._starts, r) - 1
            offset = weeks * WEEK
            if i >= 0:
                a, b = self.windows[i]
                nxt = self.windows[i + 1][0] if i + 1 < len(self.windows) else WEEK
                self._last = lo, hi, base, length = (offset + a, offset + nxt,
                                                     weeks * self.per_week + self._cum[i], b - a)
            else:
                self._last = lo, hi, base, length = (offset, offset + self._starts[0], weeks * self.per_week, 0.0)
        return base + min(max(t - lo, 0.0), length)

    def between(self, a: float, b: float) -> float:
        """Working minutes in [a, b]."""
        if self.always:
            return b - a
        return self._worked(b) - self._worked(a)

    def advance(self, t: float, work: float) -> float:
        """Earliest time at which ``work`` working minutes have elapsed since ``t``."""
        if self.always or work <= 0:
            return t + max(work, 0.0)
        target = self._worked(t) + work
        weeks, r = divmod(target, self.per_week)
        if r == 0:
            weeks, r = weeks - 1, self.per_week
        i = bisect.bisect_left(self._cum, r) - 1
        return weeks * WEEK + self.windows[i][0] + (r - self._cum[i])

    def is_working(self, t: float) -> bool:
        if self.always:
            return True
        r = t % WEEK
        i = bisect.bisect_right(self._starts, r) - 1
        return i >= 0 and r < self.windows[i][1]


def planned_calendar(cfg: CalendarConfig) -> WorkCalendar:
    """Planned operation time (POT): shifts on workdays minus breaks."""
    if not cfg.shifts:
        if not cfg.breaks and len(cfg.workdays) == 7:
            return WorkCalendar(None)
        shifts = [(d * 1440.0, d * 1440.0 + 1440.0) for d in (DAYS.index(x) for x in cfg.workdays)]
    else:
        days = [DAYS.index(x) for x in cfg.workdays]
        shifts = [iv for p in cfg.shifts for iv in _daily(p.start, p.end, days)]
    breaks = [iv for p in cfg.breaks for iv in _daily(p.start, p.end, range(-1, 8))]
    return WorkCalendar(_fold(_subtract(_merge(shifts), _merge(breaks))))


def available_calendar(cfg: CalendarConfig, station: str) -> WorkCalendar:
    """Planned busy time (PBT) of ``station``: planned operation time minus its planned downtime."""
    planned = planned_calendar(cfg)
    cuts = []
    for dt in cfg.planned_downtime:
        if dt.stations is not None and station not in dt.stations:
            continue
        days = range(7) if dt.day == "daily" else [DAYS.index(dt.day)]
        start = clock_minutes(dt.start)
        cuts += [(d * 1440.0 + start, d * 1440.0 + start + dt.duration) for d in days]
    if not cuts:
        return planned
    windows = planned.windows if not planned.always else [(0.0, WEEK)]
    unfolded = _merge(cuts + [(a + WEEK, b + WEEK) for a, b in cuts] + [(a - WEEK, b - WEEK) for a, b in cuts])
    return WorkCalendar(_fold(_subtract(windows, unfolded)))


class Tariff:
    """Electricity price by time of day (CNY/kWh), the same every day."""

    def __init__(self, periods: list[tuple[float, float, float]]):
        """``periods``: (start minute, end minute, price) covering the day."""
        periods = sorted(periods)
        if not periods or periods[0][0] != 0 or periods[-1][1] != 1440 or any(
                a[1] != b[0] for a, b in zip(periods, periods[1:])):
            raise ValueError("tariff periods must cover 00:00-24:00 without gaps or overlaps")
        self.periods = periods
        self._starts = [p[0] for p in periods]
        self._cum = [0.0]
        for a, b, price in periods:
            self._cum.append(self._cum[-1] + (b - a) * price)
        self.peak_price = max(p[2] for p in periods)

    def _integral(self, t: float) -> float:
        days, r = divmod(t, 1440.0)
        i = bisect.bisect_right(self._starts, r) - 1
        a, _, price = self.periods[i]
        return days * self._cum[-1] + self._cum[i] + (r - a) * price

    def integral(self, a: float, b: float) -> float:
        """Price-weighted minutes in [a, b] (CNY/kWh x minutes)."""
        return self._integral(b) - self._integral(a)

    def peak_end(self, t: float) -> float:
        """End of the peak-price period containing ``t``, or ``t`` itself outside peak prices."""
        day, r = divmod(t, 1440.0)
        i = bisect.bisect_right(self._starts, r) - 1
        a, b, price = self.periods[i]
        return day * 1440.0 + b if price >= self.peak_price else t
