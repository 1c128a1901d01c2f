"""KPIs of a replication (ISO 22400-2 definitions where ISO defines them) and their confidence intervals.

Time elements per station, summed over its servers, inside the observation window (after warm-up):
PBT planned busy time = busy + setup + idle + blocked + down (planned operation time minus planned
downtime); APT = busy; AUST = setup; ADET = down (failures). PRI is the planned (mean) run time per item of
each operation, for a batch station the batch time divided by the batch size.

Line level: availability and effectiveness are those of the bottleneck station (the constraint sets the
line's output), the quality ratio is the line's (good end units / end units finished or scrapped), and
OEE is their product. WIP, lead time and throughput count end products; components are counted at the
stations that make them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

from lines.station import BLOCKED, BUSY, DOWN, IDLE, MAINTENANCE, OFF, PLANNED_DOWN, SETUP, STANDBY, STATE_NAMES

if TYPE_CHECKING:
    from twin.engine import Line

NAN = float("nan")

LINE_KPIS: dict[str, str] = {
    "throughput_per_hour": "Good end units leaving the line per hour of the observation window (parts/hour).",
    "exit_rate_per_hour": "End units leaving the line, good or scrapped, per hour (parts/hour).",
    "wip_mean": "Time-average number of released end units not yet finished (parts).",
    "lead_time_mean": "Mean time from order arrival to a good unit leaving the line (minutes).",
    "lead_time_p95": "95th percentile of that lead time (minutes).",
    "flow_time_mean": "Mean time from release to leaving the line, good or scrapped (minutes).",
    "availability": "ISO 22400 APT / PBT of the bottleneck station.",
    "effectiveness": "ISO 22400 PRI x PQ / APT of the bottleneck station.",
    "quality_ratio": "ISO 22400 GQ / PQ of the line: good end units / end units finished or scrapped.",
    "oee": "Availability x effectiveness x quality ratio.",
    "first_pass_yield": "ISO 22400 GP / IP: good end units never reworked / end units finished or scrapped.",
    "scrap_ratio": "ISO 22400 SQ / PQ: scrapped end units / end units finished or scrapped.",
    "rework_ratio": "ISO 22400 RQ / PQ: reworked end units / end units finished or scrapped.",
    "defect_escape_rate": "Good end units carrying an undetected defect / good end units (fraction).",
    "energy_kwh": "Electrical energy of all stations in the window (kWh).",
    "energy_kwh_per_good_unit": "Energy / good end units (kWh per part).",
    "energy_cost_per_good_unit": "Energy cost / good end units at the energy lever's tariff (CNY per part).",
    "on_time_rate": "Orders completed by their due date / orders completed (fraction).",
    "tardiness_mean": "Mean of max(0, completion - due) over completed orders (minutes).",
    "orders_completed": "Orders whose last unit left the line in the window (orders).",
    "rejection_rate": "Units turned away because the first buffer was full / units arrived (fraction).",
    "agv_utilization": "Fraction of AGV time spent on moves, including empty travel.",
}

LINE_KPIS_ZH: dict[str, str] = {
    "throughput_per_hour": "观察期内每小时离开产线的合格成品数（件/小时）。",
    "exit_rate_per_hour": "每小时离开产线的成品数，含合格与报废（件/小时）。",
    "wip_mean": "已投产尚未完工的成品的时间平均数量（件）。",
    "lead_time_mean": "从订单到达到合格成品离开产线的平均时间（分钟）。",
    "lead_time_p95": "上述交付周期的第 95 百分位数（分钟）。",
    "flow_time_mean": "从投产到离开产线（合格或报废）的平均时间（分钟）。",
    "availability": "ISO 22400 中瓶颈工位的 APT / PBT（实际生产时间 / 计划运行时间）。",
    "effectiveness": "ISO 22400 中瓶颈工位的 PRI × PQ / APT（性能效率）。",
    "quality_ratio": "ISO 22400 中产线的 GQ / PQ：合格成品 / 完工或报废的成品。",
    "oee": "可用率 × 性能效率 × 质量合格率。",
    "first_pass_yield": "ISO 22400 GP / IP：从未返工的合格成品 / 完工或报废的成品。",
    "scrap_ratio": "ISO 22400 SQ / PQ：报废成品 / 完工或报废的成品。",
    "rework_ratio": "ISO 22400 RQ / PQ：返工过的成品 / 完工或报废的成品。",
    "defect_escape_rate": "带有未检出缺陷的合格成品 / 合格成品（比例）。",
    "energy_kwh": "观察期内全部工位的用电量（千瓦时）。",
    "energy_kwh_per_good_unit": "能耗 / 合格成品数（千瓦时/件）。",
    "energy_cost_per_good_unit": "按能源杠杆电价计的能源成本 / 合格成品数（元/件）。",
    "on_time_rate": "按期完成的订单 / 完成的订单（比例）。",
    "tardiness_mean": "已完成订单的 max(0, 完成时间 − 交期) 的平均值（分钟）。",
    "orders_completed": "观察期内最后一件离开产线的订单数（单）。",
    "rejection_rate": "因首个缓冲区已满而拒收的成品 / 到达的成品（比例）。",
    "agv_utilization": "AGV 用于搬运（含空驶）的时间比例。",
}
"""The same definitions in Chinese (reports in zh)."""

STATION_KPIS: dict[str, str] = {
    "availability": "ISO 22400 APT / PBT (busy time over planned busy time).",
    "effectiveness": "ISO 22400 sum(PRI x PQ) / APT.",
    "quality_ratio": "ISO 22400 GQ / PQ (parts neither scrapped nor sent to rework here / parts processed).",
    "oee": "Availability x effectiveness x quality ratio.",
    "nee": "ISO 22400 AUPT / PBT x effectiveness x quality ratio.",
    "utilization": "Fraction of planned busy time spent busy or in setup (AUPT / PBT).",
    "utilisation_efficiency": "ISO 22400 APT / AUBT, AUBT = APT + AUST + ADET.",
    "allocation_efficiency": "ISO 22400 AUBT / PBT.",
    "technical_efficiency": "ISO 22400 APT / (APT + ADET).",
    "setup_ratio": "ISO 22400 AUST / AUPT.",
    "throughput_per_hour": "Parts processed per hour (parts/hour).",
    "mtbf": "Mean time between failures: (PBT - ADET) / failure events, summed over servers (minutes).",
    "mttr": "Mean time to repair: ADET / failure events (minutes).",
    "failures": "Failure events in the window (count).",
    "queue_time_mean": "Mean wait in the input buffer before processing starts (minutes).",
    "queue_length_mean": "Time-average number of parts in the input buffer (parts).",
    "energy_kwh": "Energy from the power draw per state (kWh).",
    "energy_cost": "Energy cost at the energy lever's tariff (CNY); undefined without the lever.",
    "active_period_mean": "Mean uninterrupted active period (busy, setup or down), Roser's method (minutes).",
}


def _div(a: float, b: float) -> float:
    return a / b if b else NAN


@dataclass
class ReplicationKpis:
    """KPI values of one replication."""

    replication: int
    line: dict[str, float]
    stations: dict[str, dict[str, float]]
    state_fractions: dict[str, dict[str, float]]
    bottleneck: str
    workers: dict[str, float] = field(default_factory=dict)


def _state_power(p) -> list[float]:
    """kW per server state: blocked draws idle power, standby and the calendar's off states draw off
    power, maintenance draws down power."""
    by_state = {BUSY: p.busy, SETUP: p.setup, IDLE: p.idle, STANDBY: p.off, BLOCKED: p.idle, DOWN: p.down,
                MAINTENANCE: p.down, PLANNED_DOWN: p.off, OFF: p.off}
    return [by_state[i] for i in range(len(STATE_NAMES))]


def station_kpis(st, length: float) -> tuple[dict[str, float], dict[str, float]]:
    """KPIs and state fractions of one station over a window of ``length`` minutes."""
    n = len(STATE_NAMES)
    acc = [sum(s.acc[i] for s in st.servers) for i in range(n)]
    busy, setup, blocked, down = acc[BUSY], acc[SETUP], acc[BLOCKED], acc[DOWN]
    idle = acc[IDLE] + acc[STANDBY]
    pbt = busy + setup + idle + blocked + down
    aupt = busy + setup
    aubt = aupt + down
    availability = _div(busy, pbt)
    effectiveness = _div(st.planned_work, busy)
    quality = _div(st.processed - st.scrapped - st.reworked, st.processed)
    failures = sum(s.failures for s in st.servers)
    power = _state_power(st.power)
    energy = sum(a * w for a, w in zip(acc, power)) / 60.0
    if st.tariff is not None:
        price_minutes = [sum(s.price_minutes[i] for s in st.servers) for i in range(n)]
        energy_cost = sum(a * w for a, w in zip(price_minutes, power)) / 60.0
    else:
        energy_cost = NAN
    kpis = {
        "availability": availability,
        "effectiveness": effectiveness,
        "quality_ratio": quality,
        "oee": availability * effectiveness * quality,
        "nee": _div(aupt, pbt) * effectiveness * quality,
        "utilization": _div(aupt, pbt),
        "utilisation_efficiency": _div(busy, aubt),
        "allocation_efficiency": _div(aubt, pbt),
        "technical_efficiency": _div(busy, busy + down),
        "setup_ratio": _div(setup, aupt),
        "throughput_per_hour": st.processed / (length / 60.0),
        "mtbf": _div(pbt - down, failures),
        "mttr": _div(down, failures),
        "failures": float(failures),
        "queue_time_mean": _div(st.wait_sum, st.taken),
        "queue_length_mean": st.queue_area / length,
        "energy_kwh": energy,
        "energy_cost": energy_cost,
        "active_period_mean": _div(sum(s.active_sum for s in st.servers), sum(s.active_n for s in st.servers)),
    }
    total = length * len(st.servers)
    fractions = {name: acc[i] / total for i, name in enumerate(STATE_NAMES)}
    return kpis, fractions


def replication_kpis(line: "Line", replication: int) -> ReplicationKpis:
    """All KPIs of a finished replication."""
    length = line.length
    hours = length / 60.0
    stations, fractions = {}, {}
    for name, st in line.stations.items():
        stations[name], fractions[name] = station_kpis(st, length)
    active = {n: k["active_period_mean"] for n, k in stations.items()}
    bottleneck = max(active, key=lambda n: (-1.0 if math.isnan(active[n]) else active[n]))
    finished = line.good + line.scrapped
    quality = _div(line.good, finished)
    b = stations[bottleneck]
    energy = sum(k["energy_kwh"] for k in stations.values())
    energy_cost = sum(k["energy_cost"] for k in stations.values())
    lead = np.asarray(line.lead_times)
    kpis = {
        "throughput_per_hour": line.good / hours,
        "exit_rate_per_hour": finished / hours,
        "wip_mean": line.wip_area / length,
        "lead_time_mean": float(lead.mean()) if lead.size else NAN,
        "lead_time_p95": float(np.percentile(lead, 95)) if lead.size else NAN,
        "flow_time_mean": _div(line.flow_time_sum, finished),
        "availability": b["availability"],
        "effectiveness": b["effectiveness"],
        "quality_ratio": quality,
        "oee": b["availability"] * b["effectiveness"] * quality,
        "first_pass_yield": _div(line.good_first_pass, finished),
        "scrap_ratio": _div(line.scrapped, finished),
        "rework_ratio": _div(line.reworked_units, finished),
        "defect_escape_rate": _div(line.escaped, line.good),
        "energy_kwh": energy,
        "energy_kwh_per_good_unit": _div(energy, line.good),
        "energy_cost_per_good_unit": _div(energy_cost, line.good),
        "on_time_rate": _div(line.orders_on_time, line.orders_with_due),
        "tardiness_mean": _div(line.tardiness_sum, line.orders_with_due),
        "orders_completed": float(line.orders_completed),
        "rejection_rate": _div(line.rejected, line.units_arrived),
        "agv_utilization": line.fleet.utilization(line.env.now, length) if line.fleet else NAN,
    }
    workers = line.crew.utilization(line.env.now, length) if line.crew else {}
    return ReplicationKpis(replication, kpis, stations, fractions, bottleneck, workers)


@dataclass(frozen=True)
class Estimate:
    """Mean across replications with a two-sided 95% Student-t confidence interval.
    ``n`` counts the replications where the KPI was defined; with n < 2 the interval is undefined."""

    mean: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    n: int

    def as_dict(self) -> dict[str, Optional[float]]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


def estimate(values: list[float], confidence: float = 0.95) -> Estimate:
    """Mean and Student-t confidence interval of the finite values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, None, None, 1)
    from scipy import stats  # imported here: it is slow to import, and workers rarely need it

    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n)
