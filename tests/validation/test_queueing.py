"""The engine against closed-form queueing theory.

Each test builds a small line whose steady state is known exactly, runs independent replications with a
fixed seed, and accepts a quantity when the analytic value lies in the 99% confidence interval over the
replications AND the relative error is below 2% (see :mod:`helpers`). Run lengths are chosen so that the
relative standard error of each mean is about 0.5% or less, which keeps the 2% bound at 3-4 standard
errors, and the whole file runs in well under a minute of CPU per test.

Time unit: minutes. Service rate mu = 1 / mean processing time, arrival rate lam = 1 / mean interarrival.
"""

from __future__ import annotations

import pytest

from .helpers import (Checker, exponential, jackson_tandem, line_values, mg1, mm1, mm1k, mmc, run,
                      saturated_failing_machine, single_product_line, station_values,
                      two_station_blocking)

WARMUP = 2000.0
"""Minutes discarded at the start: the infinite-buffer models here have rho <= 0.7 and relax in a few tens
of minutes (relaxation time about 1 / (mu (1 - sqrt(rho))^2)); the finite ones faster still."""


# ------------------------------------------------------------------------------------------ M/M/1
def test_mm1_waiting_time_sojourn_and_littles_law():
    """M/M/1, rho = 0.7: Wq = rho / (mu - lam) (station queue_time_mean), W = 1 / (mu - lam)
    (lead_time_mean and flow_time_mean: orders are released at arrival), L = lam W (wip_mean) and the
    server's utilisation rho."""
    lam, mu = 0.7, 1.0
    sc = single_product_line([{"name": "m1"}], [{"station": "m1", "time": exponential(1 / mu)}], 1 / lam,
                             warmup=WARMUP, length=100_000, replications=20, seed=11)
    res, took = run(sc)
    q = mm1(lam, mu)
    c = Checker("M/M/1")
    c.note(f"lam={lam}, mu={mu}, rho={q['rho']}, {len(res.replications)} x {sc.run.length:g} min, {took}")
    c.compare("Wq = queue_time_mean [min]", station_values(res, "m1", "queue_time_mean"), q["Wq"])
    c.compare("W = lead_time_mean [min]", line_values(res, "lead_time_mean"), q["W"])
    c.compare("W = flow_time_mean [min]", line_values(res, "flow_time_mean"), q["W"])
    c.compare("L = lam W = wip_mean [parts]", line_values(res, "wip_mean"), q["L"])
    c.compare("Lq = queue_length_mean [parts]", station_values(res, "m1", "queue_length_mean"), q["Lq"])
    c.compare("rho = utilization", station_values(res, "m1", "utilization"), q["rho"])
    c.compare("throughput = 60 lam [parts/h]", line_values(res, "throughput_per_hour"), 60 * lam)
    c.assert_all()


# ------------------------------------------------------------------------------------------ M/M/c
def test_mmc_erlang_c_waiting_time():
    """M/M/3 with one shared FIFO queue, rho = 0.7: Wq = C(3, a) / (3 mu - lam) with Erlang C computed
    in the test; W = Wq + 1/mu; L = lam W."""
    lam, mu, servers = 2.1, 1.0, 3
    sc = single_product_line([{"name": "m1", "servers": servers}],
                             [{"station": "m1", "time": exponential(1 / mu)}], 1 / lam,
                             warmup=WARMUP, length=100_000, replications=16, seed=12)
    res, took = run(sc)
    q = mmc(lam, mu, servers)
    c = Checker("M/M/3")
    c.note(f"lam={lam}, mu={mu}, c={servers}, rho={q['rho']:.3f}, Erlang C={q['P_wait']:.6f}, "
           f"{len(res.replications)} x {sc.run.length:g} min, {took}")
    c.compare("Wq = C(c,a)/(c mu - lam) = queue_time_mean [min]",
              station_values(res, "m1", "queue_time_mean"), q["Wq"])
    c.compare("W = Wq + 1/mu = lead_time_mean [min]", line_values(res, "lead_time_mean"), q["W"])
    c.compare("L = lam W = wip_mean [parts]", line_values(res, "wip_mean"), q["L"])
    c.compare("rho = utilization", station_values(res, "m1", "utilization"), q["rho"])
    c.assert_all()


# ------------------------------------------------------------------------------------------ M/M/1/K
@pytest.mark.parametrize("lam,k,length", [(0.9, 5, 100_000), (1.5, 3, 100_000), (0.9, 1, 50_000)],
                         ids=["rho0.9-K5", "rho1.5-K3", "rho0.9-K1-no-buffer"])
def test_mm1k_blocking_probability_and_throughput(lam, k, length):
    """M/M/1/K loss system: input buffer K - 1 plus the server, arrivals finding it full are rejected
    (release.when_full = reject). P_K = (1 - rho) rho^K / (1 - rho^(K+1)) is the rejection rate (PASTA),
    throughput = lam (1 - P_K). Also checked: the mean number in system L = sum n p_n (wip_mean)."""
    mu = 1.0
    sc = single_product_line([{"name": "m1", "buffer": k - 1}], [{"station": "m1", "time": exponential(1 / mu)}],
                             1 / lam, warmup=WARMUP, length=length, replications=10, seed=13,
                             release={"when_full": "reject"})
    res, took = run(sc)
    q = mm1k(lam, mu, k)
    c = Checker(f"M/M/1/{k}")
    c.note(f"lam={lam}, mu={mu}, K={k}, {len(res.replications)} x {sc.run.length:g} min, {took}")
    c.compare("P_K = rejection_rate", line_values(res, "rejection_rate"), q["P_K"])
    c.compare("lam (1 - P_K) = throughput_per_hour [parts/h]", line_values(res, "throughput_per_hour"),
              60 * q["throughput"])
    c.compare("L = sum n p_n = wip_mean [parts]", line_values(res, "wip_mean"), q["L"])
    c.assert_all()


# ------------------------------------------------------------------------------------------ M/G/1
@pytest.mark.parametrize("time,mean,second_moment", [
    (1.0, 1.0, 1.0),
    ({"dist": "uniform", "low": 0.5, "high": 1.5}, 1.0, 1.0 + 1.0 / 12),
], ids=["MD1-constant", "MU1-uniform"])
def test_mg1_pollaczek_khinchine(time, mean, second_moment):
    """M/G/1 with non-exponential processing times, rho = 0.7: Pollaczek-Khinchine
    Wq = lam E[S^2] / (2 (1 - rho)), W = Wq + E[S]. Exercises the constant and uniform samplers."""
    lam = 0.7
    sc = single_product_line([{"name": "m1"}], [{"station": "m1", "time": time}], 1 / lam, warmup=WARMUP,
                             length=100_000, replications=10, seed=16)
    res, took = run(sc)
    q = mg1(lam, mean, second_moment)
    c = Checker("M/G/1")
    c.note(f"S={time}, lam={lam}, {len(res.replications)} x {sc.run.length:g} min, {took}")
    c.compare("Wq = lam E[S^2]/(2(1-rho)) = queue_time_mean [min]",
              station_values(res, "m1", "queue_time_mean"), q["Wq"])
    c.compare("W = Wq + E[S] = lead_time_mean [min]", line_values(res, "lead_time_mean"), q["W"])
    c.assert_all()


# ------------------------------------------------------------------------------------------ Jackson
def test_jackson_tandem_sojourn_time():
    """Three exponential stations in series with unlimited buffers, Poisson arrivals lam = 1/min:
    by Burke's theorem every station is an independent M/M/1 with arrival rate lam, so the sojourn
    time is W = sum 1/(mu_i - lam) and L = lam W."""
    lam = 1.0
    means = [0.5, 0.7, 0.6]
    stations = [{"name": f"m{i + 1}"} for i in range(len(means))]
    routing = [{"station": f"m{i + 1}", "time": exponential(m)} for i, m in enumerate(means)]
    sc = single_product_line(stations, routing, 1 / lam, warmup=WARMUP, length=100_000, replications=6,
                             seed=14)
    res, took = run(sc)
    q = jackson_tandem(lam, [1 / m for m in means])
    c = Checker("Jackson tandem")
    c.note(f"lam={lam}, mean times={means}, {len(res.replications)} x {sc.run.length:g} min, {took}")
    c.compare("W = sum 1/(mu_i - lam) = lead_time_mean [min]", line_values(res, "lead_time_mean"), q["W"])
    c.compare("L = lam W = wip_mean [parts]", line_values(res, "wip_mean"), q["L"])
    c.assert_all()


# ------------------------------------------------------------------------------------------ blocking
@pytest.mark.parametrize("buffer", [0, 2])
def test_two_station_line_with_blocking(buffer):
    """Two exponential machines (means 1.0 and 0.8 min) with ``buffer`` places between them and blocking
    after service; the first machine is never starved (CONWIP cap buffer + 5 units, orders faster than
    the line). Closed form from the birth-death chain (see helpers.two_station_blocking): throughput,
    fraction of time machine 1 is blocked and machine 2 is starved."""
    mu1, mu2 = 1.0, 1.25
    sc = single_product_line(
        [{"name": "m1"}, {"name": "m2", "buffer": buffer}],
        [{"station": "m1", "time": exponential(1 / mu1)}, {"station": "m2", "time": exponential(1 / mu2)}],
        1 / 1.5, warmup=WARMUP, length=50_000, replications=10, seed=17,
        release={"policy": "conwip", "wip_limit": buffer + 5})
    res, took = run(sc)
    q = two_station_blocking(mu1, mu2, buffer)
    fractions = [r.state_fractions for r in res.replications]
    c = Checker(f"2-station blocking b={buffer}")
    c.note(f"mu1={mu1}, mu2={mu2}, buffer={buffer}, {len(res.replications)} x {sc.run.length:g} min, "
           f"{took}")
    c.compare("throughput = mu2 (1 - p_0) [parts/h]", line_values(res, "throughput_per_hour"),
              60 * q["throughput"])
    c.compare("m1 blocked fraction = p_(b+2)", [f["m1"]["blocked"] for f in fractions], q["p_blocked"])
    c.compare("m2 idle fraction = p_0", [f["m2"]["idle"] for f in fractions], q["p_starved"])
    c.assert_all()


# ------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("process_time,seed", [(1.0, 15), (exponential(1.0), 25)],
                         ids=["constant-pt", "exponential-pt"])
def test_saturated_machine_with_failures(process_time, seed):
    """One machine kept busy by a CONWIP loop (cap 3 units) and orders arriving faster than it can
    work (lam = 1.2/min against a capacity of at most 1/min, so the backlog never drains after the
    warm-up). Exponential failures, MTBF 60 and MTTR 10 minutes, time-based (the clock runs on
    calendar time since the last repair), work interrupted and resumed. The machine is up a fraction
    MTBF/(MTBF+MTTR) of the time and always busy while up, so parts/hour = 60/E[pt] x 60/70 whatever
    the law of the processing time."""
    mtbf, mttr = 60.0, 10.0
    sc = single_product_line(
        [{"name": "m1", "failures": {"tbf": exponential(mtbf), "ttr": exponential(mttr)}}],
        [{"station": "m1", "time": process_time}], 1 / 1.2, warmup=WARMUP, length=50_000, replications=10,
        seed=seed, release={"policy": "conwip", "wip_limit": 3})
    res, took = run(sc)
    q = saturated_failing_machine(1.0, mtbf, mttr)
    c = Checker("failing machine")
    c.note(f"pt={process_time}, MTBF={mtbf}, MTTR={mttr}, {len(res.replications)} x {sc.run.length:g} min, "
           f"{took}")
    c.compare("60/pt x MTBF/(MTBF+MTTR) = throughput_per_hour [parts/h]",
              line_values(res, "throughput_per_hour"), q["throughput_per_hour"])
    c.compare("MTBF/(MTBF+MTTR) = availability (busy / planned busy time)",
              station_values(res, "m1", "availability"), q["availability"])
    c.assert_all()
