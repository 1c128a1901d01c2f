"""Each maturity lever against a result known in closed form or by construction, on the real engine."""

from __future__ import annotations

import itertools
import math

import pytest

from tests.conftest import make_scenario, saturated
from twin.engine import simulate
from twin.experiment import run_experiment
from twin.kpi import replication_kpis

RUN = {"warmup": 0, "length": 10080, "replications": 1, "seed": 3}


def kpis(scenario, replication: int = 0):
    return replication_kpis(simulate(scenario, replication), replication)


def mean(scenario, key: str, reps: int, station: str | None = None) -> float:
    result = run_experiment(scenario, reps, 5)
    table = result.stations()[station] if station else result.line()
    return table[key].mean


def ageing_machine(shape: float, maintenance: dict | None) -> object:
    """A saturated machine failing after Weibull(shape) working minutes with mean 500, repair 30 min."""
    scale = 500 / math.gamma(1 + 1 / shape)
    stations = [{"name": "m1", "failures": {"tbf": {"dist": "weibull", "shape": shape, "scale": scale},
                                            "ttr": 30}}]
    levers = {"maintenance": maintenance} if maintenance else {}
    return saturated(run={**RUN, "length": 50000}, stations=stations, levers=levers)


def test_reactive_response_time_adds_to_every_repair():
    # availability = MTBF / (MTBF + response + TTR) for a machine that is always busy when up
    stations = [{"name": "m1", "failures": {"tbf": {"dist": "exponential", "mean": 200}, "ttr": 20}}]
    sc = saturated(run={**RUN, "length": 100000}, stations=stations,
                   levers={"maintenance": {"policy": "reactive", "response_time": 30}})
    assert mean(sc, "throughput_per_hour", 4) == pytest.approx(60 * 200 / 250, rel=0.02)


def test_preventive_maintenance_pays_only_when_failures_age():
    pm = {"policy": "preventive", "interval": 250, "duration": 10}
    aged_reactive = ageing_machine(3.0, None)
    aged_pm = ageing_machine(3.0, pm)
    memoryless_reactive = ageing_machine(1.0, None)
    memoryless_pm = ageing_machine(1.0, pm)
    assert mean(aged_pm, "failures", 4, "m1") < 0.3 * mean(aged_reactive, "failures", 4, "m1")
    assert mean(aged_pm, "throughput_per_hour", 4) > mean(aged_reactive, "throughput_per_hour", 4)
    # exponential lifetimes have no memory: renewing early leaves the failure rate per working minute of
    # age at 1/MTBF, and the maintenance time is lost output
    for sc in (memoryless_reactive, memoryless_pm):
        k = kpis(sc.model_copy(update={"run": sc.run.model_copy(update={"length": 400000.0})}))
        f = k.state_fractions["m1"]
        age = 400000 * (1 - f["down"] - f["maintenance"])
        assert k.stations["m1"]["failures"] / age == pytest.approx(1 / 500, rel=0.1)
    assert mean(memoryless_pm, "throughput_per_hour", 4) < mean(memoryless_reactive, "throughput_per_hour", 4)


def test_perfect_prediction_prevents_every_failure():
    predictive = {"policy": "predictive", "lead_time": 20, "recall": 1.0, "duration": 10}
    k = kpis(ageing_machine(4.0, predictive))
    assert k.stations["m1"]["failures"] == 0
    assert k.state_fractions["m1"]["maintenance"] > 0


def test_idle_shutdown_cycle():
    # one part an hour, 10 min of work; off after 15 idle minutes; 5 min warm-up before the next part
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": "a"}], "repeat_every": 60}}
    stations = [{"name": "m1", "power": {"idle": 6, "busy": 10, "setup": 6, "off": 0}}]
    products = [{"name": "a", "routing": [{"station": "m1", "time": 10}]}]
    base = dict(run={**RUN, "warmup": 60, "length": 6000}, orders=orders, stations=stations, products=products)
    on = kpis(make_scenario(**base))
    off = kpis(make_scenario(**base, levers={"energy": {"mode": "idle_shutdown", "shutdown_after": 15,
                                                        "warmup_time": 5}}))
    f = off.state_fractions["m1"]
    assert (f["setup"], f["busy"], f["idle"], f["standby"]) == pytest.approx((5 / 60, 10 / 60, 15 / 60, 30 / 60))
    assert off.line["lead_time_mean"] == pytest.approx(15.0)
    assert on.line["energy_kwh_per_good_unit"] == pytest.approx((10 * 10 + 50 * 6) / 60)
    assert off.line["energy_kwh_per_good_unit"] == pytest.approx((10 * 10 + 5 * 6 + 15 * 6) / 60)


def test_smed_and_sequencing_cut_setup_time():
    products = [{"name": p, "family": p, "routing": [{"station": "m1", "time": 1.0}]} for p in "ab"]
    stations = [{"name": "m1", "setup": {"default": 2}}]
    orders = {"arrivals": {"type": "schedule", "repeat_every": 40,
                           "orders": [{"time": t, "product": p} for t, p in [(0, "a"), (0, "b")] * 5]}}
    base = dict(run={**RUN, "length": 4000}, products=products, stations=stations, orders=orders)
    manual = kpis(make_scenario(**base)).state_fractions["m1"]["setup"]
    smed = kpis(make_scenario(**base, levers={"changeover": {"mode": "smed", "smed_factor": 0.5}}))
    seq = kpis(make_scenario(**base, levers={"changeover": {"mode": "sequence_optimised", "smed_factor": 0.5}}))
    assert smed.state_fractions["m1"]["setup"] == pytest.approx(manual / 2, rel=1e-6)
    # FIFO alternates a, b, a, b ... : 10 setups of 2 min per 40 min. Grouping by family needs one per
    # cycle: the cycle starts with the family the machine is set up for and changes once.
    assert manual == pytest.approx(10 * 2 / 40, rel=0.02)
    assert seq.state_fractions["m1"]["setup"] == pytest.approx(1 * 1 / 40, rel=0.05)


@pytest.mark.parametrize("inspection,recall,false_alarm,factor", [
    ("inline", 1.0, 0.0, 1.0), ("ai_vision", 0.8, 0.05, 1.0), ("closed_loop", 0.8, 0.05, 0.5)])
def test_defects_found_inline_follow_the_geometric_law(inspection, recall, false_alarm, factor):
    p = 0.2 * factor
    products = [{"name": "a", "routing": [{"station": "m1", "time": 1.0, "defect": 0.2}]}]
    lever = {"inspection": inspection, "recall": recall, "false_alarm": false_alarm, "defect_factor": 0.5}
    sc = saturated(run={**RUN, "length": 100000}, products=products, levers={"quality": lever})
    k = kpis(sc)
    redo = p * recall + (1 - p) * false_alarm  # sent back after one pass
    escape = p * (1 - recall) / (p * (1 - recall) + (1 - p) * (1 - false_alarm))
    assert k.line["throughput_per_hour"] == pytest.approx(60 * (1 - redo), rel=0.01)
    assert k.line["defect_escape_rate"] == pytest.approx(escape, abs=0.005)


def test_end_of_line_inspection_sends_defects_back_to_their_origin():
    # a defect made at m1 is found at m3 (sampled 50 %) and the part repeats m1, m2 and m3
    products = [{"name": "a", "routing": [{"station": "m1", "time": 1.0, "defect": 0.1},
                                          {"station": "m2", "time": 1.0}, {"station": "m3", "time": 1.0}]}]
    stations = [{"name": f"m{i}"} for i in (1, 2, 3)]
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": "a"}], "repeat_every": 20}}
    sc = make_scenario(run={**RUN, "length": 200000}, products=products, stations=stations, orders=orders,
                       levers={"quality": {"inspection": "end_of_line", "sample_rate": 0.5}})
    k = kpis(sc)
    found = 0.1 * 0.5  # per pass: defect made and sampled
    assert k.stations["m2"]["throughput_per_hour"] / k.line["throughput_per_hour"] == pytest.approx(
        1 / (1 - found), rel=0.01)
    assert k.line["defect_escape_rate"] == pytest.approx(0.1 * 0.5 / (1 - found), abs=0.005)


def test_daily_plan_holds_orders_until_plan_time():
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 420, "product": "a"}], "repeat_every": 1440}}
    sc = make_scenario(run={**RUN, "length": 10080}, orders=orders,
                       levers={"scheduling": {"method": "daily_plan", "plan_time": "06:00"}})
    assert kpis(sc).line["lead_time_mean"] == pytest.approx(1440 - 60 + 1.0)  # 07:00 -> next 06:00, +1 min work


def test_manual_carts_are_slower_than_agvs():
    products = [{"name": "a", "routing": [{"station": "m1", "time": 0.1}, {"station": "m2", "time": 0.1}]}]
    stations = [{"name": "m1"}, {"name": "m2"}]
    transport = {"agv": {"count": 1, "speed": 60, "home": "m1", "distances": {"m1": {"m2": 60}}}}
    carts = {"material_flow": {"mode": "manual", "carts": 1, "walk_speed": 30, "handling_time": 1}}
    sc = saturated(run={**RUN, "length": 3000}, products=products, stations=stations, transport=transport,
                   levers=carts)
    # one handler: 2 min there with the part (+1 min handling), 2 min back: 5 min per part
    assert kpis(sc).line["throughput_per_hour"] == pytest.approx(12, rel=0.01)


def test_optimised_plan_meets_the_optimal_total_tardiness():
    times = [30.0, 4.0, 6.0, 5.0, 3.0]
    dues = [200.0, 12.0, 25.0, 17.0, 9.0]
    products = [{"name": f"p{i}", "routing": [{"station": "m1", "time": t}]} for i, t in enumerate(times)]
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": f"p{i}", "due": d}
                                                          for i, d in enumerate(dues)]}}
    levers = {"scheduling": {"method": "optimised_plan", "replan_every": 480}}
    k = kpis(make_scenario(run={**RUN, "length": 500}, products=products, orders=orders, levers=levers))
    # all five wait at t = 0, when the first plan is made: brute force over every sequence
    best = math.inf
    for order in itertools.permutations(range(5)):
        t, total = 0.0, 0.0
        for j in order:
            t += times[j]
            total += max(0.0, t - dues[j])
        best = min(best, total)
    assert k.line["tardiness_mean"] * 5 == pytest.approx(best)
