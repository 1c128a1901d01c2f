"""Engine behaviour against results known exactly (deterministic systems) or by construction."""

from __future__ import annotations

import itertools

import pyarrow.parquet as pq
import pytest

from tests.conftest import make_scenario, saturated
from twin.engine import simulate
from twin.eventlog import EventLog
from twin.experiment import run_experiment
from twin.kpi import replication_kpis

RUN = {"warmup": 0, "length": 10080, "replications": 1, "seed": 1}


def kpis(scenario, replication: int = 0):
    return replication_kpis(simulate(scenario, replication), replication)


def test_saturated_machine_makes_length_over_time():
    k = kpis(saturated(run=RUN))
    assert k.line["throughput_per_hour"] == pytest.approx(60.0, abs=60 / 10080)
    assert k.stations["m1"]["availability"] == pytest.approx(1.0)
    assert k.stations["m1"]["effectiveness"] == pytest.approx(1.0, abs=1e-3)
    assert k.line["wip_mean"] == pytest.approx(20, abs=0.01)


def test_shift_calendar_limits_output_to_working_time():
    # 2 shifts x 8 h on 5 days, 30 min break per day -> (16 h - 0.5 h) x 5 = 4650 working minutes a week
    calendar = {"shifts": [{"start": "06:00", "end": "14:00"}, {"start": "14:00", "end": "22:00"}],
                "workdays": ["mon", "tue", "wed", "thu", "fri"], "breaks": [{"start": "12:00", "end": "12:30"}]}
    k = kpis(saturated(run=RUN, calendar=calendar, products=[{"name": "a", "routing": [{"station": "m1", "time": 2.0}]}]))
    assert k.line["throughput_per_hour"] * 10080 / 60 == pytest.approx(4650 / 2, abs=1)
    f = k.state_fractions["m1"]
    assert f["off_shift"] == pytest.approx(1 - 4650 / 10080, abs=1e-9)
    assert sum(f.values()) == pytest.approx(1.0)


def test_planned_downtime_is_outside_planned_busy_time():
    calendar = {"planned_downtime": [{"day": "daily", "start": "08:00", "duration": 60}]}
    k = kpis(saturated(run=RUN, calendar=calendar))
    assert k.state_fractions["m1"]["planned_down"] == pytest.approx(7 * 60 / 10080)
    assert k.stations["m1"]["availability"] == pytest.approx(1.0)  # APT / PBT excludes PDOT
    assert k.line["throughput_per_hour"] * 10080 / 60 == pytest.approx(10080 - 420, abs=1)


def test_deterministic_failures_give_mtbf_over_cycle():
    stations = [{"name": "m1", "failures": {"tbf": 90, "ttr": 10}}]
    k = kpis(saturated(run={**RUN, "length": 10000}, stations=stations))
    m1 = k.stations["m1"]
    assert k.line["throughput_per_hour"] == pytest.approx(60 * 0.9, rel=2e-3)
    assert m1["mtbf"] == pytest.approx(90, rel=1e-2) and m1["mttr"] == pytest.approx(10, rel=1e-2)
    assert m1["failures"] == pytest.approx(100, abs=1)
    assert k.state_fractions["m1"]["down"] == pytest.approx(0.1, abs=1e-3)


def test_blocking_after_service_with_zero_buffer():
    products = [{"name": "a", "routing": [{"station": "m1", "time": 1.0}, {"station": "m2", "time": 2.0}]}]
    stations = [{"name": "m1"}, {"name": "m2", "buffer": 0}]
    k = kpis(saturated(run={**RUN, "length": 2000}, products=products, stations=stations))
    assert k.line["throughput_per_hour"] == pytest.approx(30, rel=2e-3)
    assert k.state_fractions["m1"]["blocked"] == pytest.approx(0.5, abs=2e-3)
    assert k.state_fractions["m2"]["busy"] == pytest.approx(1.0, abs=2e-3)
    assert k.bottleneck == "m2"


def test_batch_oven_throughput():
    products = [{"name": "a", "routing": [{"station": "oven"}]}]
    stations = [{"name": "oven", "batch": {"size": 4, "time": 10}}]
    k = kpis(saturated(run={**RUN, "length": 1005}, products=products, stations=stations))
    assert k.stations["oven"]["throughput_per_hour"] == pytest.approx(100 * 4 / 1005 * 60)  # 100 batches
    assert k.stations["oven"]["effectiveness"] == pytest.approx(1000 / 1005)  # the 101st batch is under way


def test_partial_batch_after_max_wait():
    # one part every 10 min; the oven waits 5 min for company, then runs a batch of one
    products = [{"name": "a", "routing": [{"station": "oven"}]}]
    stations = [{"name": "oven", "batch": {"size": 4, "time": 2, "min_size": 1, "max_wait": 5}}]
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": "a"}], "repeat_every": 10}}
    k = kpis(make_scenario(run={**RUN, "length": 1000}, products=products, stations=stations, orders=orders))
    assert k.line["lead_time_mean"] == pytest.approx(7.0)
    assert k.stations["oven"]["effectiveness"] == pytest.approx(0.25)  # PRI = 2/4 per part, APT 2 per part


def test_sequence_dependent_setups():
    products = [{"name": p, "family": p.upper(), "routing": [{"station": "m1", "time": 1.0}]} for p in "ab"]
    stations = [{"name": "m1", "setup": {"matrix": {"A": {"B": 3}, "B": {"A": 5}}}}]
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": "a"}, {"time": 0, "product": "b"}],
                           "repeat_every": 20}}
    k = kpis(make_scenario(run={**RUN, "length": 2000}, products=products, stations=stations, orders=orders))
    # every 20 min: a (1) then setup 3 then b (1), then setup 5 before the next a: 10 min of 20 busy or setup
    f = k.state_fractions["m1"]
    assert f["setup"] == pytest.approx(8 / 20, abs=0.01)
    assert k.stations["m1"]["setup_ratio"] == pytest.approx(8 / 10, abs=0.01)


def test_spt_minimises_mean_flow_time_on_one_machine():
    times = [7.0, 2.0, 5.0, 1.0, 4.0]
    products = [{"name": f"p{i}", "routing": [{"station": "m1", "time": t}]} for i, t in enumerate(times)]
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": f"p{i}"} for i in range(5)]}}
    results = {}
    for rule in ("fifo", "spt", "lpt"):
        sc = make_scenario(run={**RUN, "length": 100}, products=products, orders=orders,
                           stations=[{"name": "m1", "dispatch": rule}])
        results[rule] = kpis(sc).line["lead_time_mean"]
    brute = min(sum(itertools.accumulate(p)) / 5 for p in itertools.permutations(times))
    assert results["spt"] == pytest.approx(brute)  # all five wait at t = 0: SPT is optimal
    assert results["spt"] < results["fifo"] < results["lpt"]


def test_edd_meets_feasible_due_dates():
    products = [{"name": f"p{i}", "routing": [{"station": "m1", "time": 2.0}]} for i in range(4)]
    dues = [100, 8, 4, 6]
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": f"p{i}", "due": d}
                                                          for i, d in enumerate(dues)]}}
    edd = kpis(make_scenario(run={**RUN, "length": 100}, products=products, orders=orders,
                             stations=[{"name": "m1", "dispatch": "edd"}]))
    fifo = kpis(make_scenario(run={**RUN, "length": 100}, products=products, orders=orders))
    assert edd.line["on_time_rate"] == 1.0 and edd.line["tardiness_mean"] == 0.0
    assert fifo.line["on_time_rate"] < 1.0


def test_conveyor_adds_its_transfer_time():
    products = [{"name": "a", "routing": [{"station": "m1", "time": 1.0}, {"station": "m2", "time": 2.0}]}]
    stations = [{"name": "m1"}, {"name": "m2"}]
    transport = {"conveyors": [{"name": "c", "from": "m1", "to": "m2", "transfer_time": 3.5}]}
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": "a"}], "repeat_every": 50}}
    k = kpis(make_scenario(run={**RUN, "length": 500}, products=products, stations=stations,
                           transport=transport, orders=orders))
    assert k.line["lead_time_mean"] == pytest.approx(6.5)


def test_single_agv_round_trip_limits_throughput():
    # the AGV drives 60 m at 60 m/min each way and needs 0.5 min to load and to unload: 3 min per part
    products = [{"name": "a", "routing": [{"station": "m1", "time": 0.1}, {"station": "m2", "time": 0.1}]}]
    stations = [{"name": "m1"}, {"name": "m2"}]
    transport = {"agv": {"count": 1, "speed": 60, "load_time": 0.5, "unload_time": 0.5, "home": "m1",
                         "distances": {"m1": {"m2": 60}}}}
    k = kpis(saturated(run={**RUN, "length": 3000}, products=products, stations=stations, transport=transport))
    assert k.line["throughput_per_hour"] == pytest.approx(20, rel=5e-3)
    assert k.line["agv_utilization"] == pytest.approx(1.0, abs=5e-3)


def test_shared_worker_serialises_two_stations():
    products = [{"name": "a", "routing": [{"station": "m1", "time": 1.0}, {"station": "m2", "time": 1.0}]}]
    stations = [{"name": "m1", "worker": {"skill": "op", "during": "run"}},
                {"name": "m2", "worker": {"skill": "op", "during": "run"}}]
    workers = [{"name": "crew", "count": 1, "skills": ["op"]}]
    k = kpis(saturated(run={**RUN, "length": 2000}, products=products, stations=stations, workers=workers))
    assert k.line["throughput_per_hour"] == pytest.approx(30, rel=5e-3)
    assert k.workers["crew"] == pytest.approx(1.0, abs=2e-3)


def test_assembly_consumes_the_bill_of_materials(tmp_path):
    products = [
        {"name": "a", "bom": {"screw": 2}, "routing": [{"station": "asm", "time": 1.0, "assemble": True},
                                                       {"station": "test", "time": 0.5, "rework": 0.3,
                                                        "rework_to": "asm"}]},
        {"name": "screw", "routing": [{"station": "press", "time": 0.2}]},
    ]
    stations = [{"name": "asm"}, {"name": "press"}, {"name": "test"}]
    sc = make_scenario(run={**RUN, "length": 3000}, products=products, stations=stations)
    log = EventLog(tmp_path / "ev.parquet")
    line = simulate(sc, 0, log=log)
    log.close()
    events = pq.read_table(tmp_path / "ev.parquet").to_pydict()
    consumed = sum(1 for e in events["event"] if e == "consume")
    assembled = sum(1 for e, s, p in zip(events["event"], events["station"], events["product"])
                    if e == "start" and s == "asm" and p == "a")
    reworked = sum(1 for e in events["event"] if e == "rework")
    assert reworked > 0
    assert consumed == 2 * (assembled - reworked)  # rework does not consume a second kit
    assert line.good > 1000


def test_conwip_caps_wip_and_rejection_counts_losses():
    k = kpis(saturated(run=RUN, release={"policy": "conwip", "wip_limit": 3}))
    assert k.line["wip_mean"] == pytest.approx(3, abs=1e-3)
    reject = make_scenario(run=RUN, stations=[{"name": "m1", "buffer": 0}], release={"when_full": "reject"},
                           orders={"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": "a"},
                                                                               {"time": 0.5, "product": "a"}],
                                                "repeat_every": 2}})
    k = kpis(reject)
    assert k.line["rejection_rate"] == pytest.approx(0.5, abs=1e-3)


def test_same_seed_same_results_and_other_seed_differs():
    sc = make_scenario(products=[{"name": "a", "routing": [{"station": "m1", "time": {"dist": "exponential", "mean": 1.5}}]}])
    a = run_experiment(sc, 3, seed=11).to_json()
    b = run_experiment(sc, 3, seed=11).to_json()
    c = run_experiment(sc, 3, seed=12).to_json()
    assert a == b
    assert a["line"] != c["line"]


def test_common_random_numbers_isolate_stations(tmp_path):
    """Changing the second station must not change anything the first station draws."""
    def starts(m2_mean: float) -> list[tuple[float, int]]:
        products = [{"name": "a", "routing": [{"station": "m1", "time": {"dist": "exponential", "mean": 1.0}},
                                              {"station": "m2", "time": {"dist": "exponential", "mean": m2_mean}}]}]
        sc = make_scenario(run={**RUN, "length": 500}, products=products, stations=[{"name": "m1"}, {"name": "m2"}])
        log = EventLog(tmp_path / f"{m2_mean}.parquet")
        simulate(sc, 0, log=log)
        log.close()
        ev = pq.read_table(tmp_path / f"{m2_mean}.parquet").to_pydict()
        return [(t, p) for t, e, s, p in zip(ev["time"], ev["event"], ev["station"], ev["part"])
                if e == "finish" and s == "m1"]
    assert starts(0.5) == starts(0.9)


def test_event_log_streams_in_bounded_chunks(tmp_path):
    log = EventLog(tmp_path / "ev.csv", chunk_rows=1000)
    simulate(saturated(run={**RUN, "length": 3000}), 0, log=log)
    assert len(log._cols[0]) < 1000  # never more than one chunk in memory
    log.close()
    rows = (tmp_path / "ev.csv").read_text().count("\n") - 1
    assert rows == log.rows > 10_000


def test_warmup_is_deleted():
    # orders only arrive during the warm-up; the window sees the queue drain and then nothing
    orders = {"arrivals": {"type": "schedule", "orders": [{"time": t, "product": "a"} for t in range(0, 100, 10)]}}
    k = kpis(make_scenario(run={"warmup": 200, "length": 1000, "replications": 1}, orders=orders))
    assert k.line["throughput_per_hour"] == 0
    assert k.state_fractions["m1"]["idle"] == pytest.approx(1.0)
