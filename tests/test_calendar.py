"""Working-time arithmetic against a brute-force minute grid."""

from __future__ import annotations

import numpy as np
import pytest

from twin.calendar import WEEK, available_calendar, planned_calendar
from twin.config.scenario import CalendarConfig

CFG = CalendarConfig.model_validate({
    "shifts": [{"start": "06:00", "end": "14:00"}, {"start": "22:00", "end": "06:00"}],
    "workdays": ["mon", "tue", "wed", "thu", "fri", "sun"],
    "breaks": [{"start": "12:00", "end": "12:30"}, {"start": "02:00", "end": "02:20"}],
    "planned_downtime": [{"day": "sun", "start": "23:00", "duration": 120, "stations": ["m1"]}],
})


def grid(cal, weeks: int = 3) -> np.ndarray:
    """1 where minute [t, t+1) is working, by asking is_working at each half minute."""
    return np.array([cal.is_working(t + 0.5) for t in range(int(weeks * WEEK))], dtype=float)


@pytest.mark.parametrize("station", ["m1", "m2"])
def test_between_and_advance_match_a_minute_grid(station):
    cal = available_calendar(CFG, station)
    work = grid(cal)
    cum = np.concatenate([[0.0], np.cumsum(work)])
    rng = np.random.default_rng(0)
    for a, b in np.sort(rng.integers(0, len(work), size=(300, 2)), axis=1):
        assert cal.between(float(a), float(b)) == pytest.approx(cum[b] - cum[a])
    for t, d in zip(rng.integers(0, 2 * int(WEEK), 300), rng.integers(1, 3000, 300)):
        end = cal.advance(float(t), float(d))
        assert cal.between(float(t), end) == pytest.approx(d)
        assert work[int(end) - 1] == 1.0  # work ends inside a working minute, never in a gap


def test_week_totals():
    planned = planned_calendar(CFG)
    # day shift 8 h - 30 min break on 6 days; night shift 8 h - 20 min break started on 6 days
    assert planned.per_week == pytest.approx(6 * (480 - 30) + 6 * (480 - 20))
    assert available_calendar(CFG, "m1").per_week == pytest.approx(planned.per_week - 120)
    assert available_calendar(CFG, "m2").per_week == planned.per_week


def test_no_shifts_means_always():
    cal = planned_calendar(CalendarConfig())
    assert cal.always and cal.advance(5.0, 3.0) == 8.0 and cal.between(1.0, 4.0) == 3.0
