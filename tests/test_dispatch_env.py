"""The engine's decision hook, DispatchEnv and the dynamic job shop, against independent truths: the
engine's own dispatching rules (SPT, FIFO, EDD through the hook give identical KPIs, in-process and
paused), a three-job example computed by hand (features and rewards), the rewards' sums against the KPIs
of the run, the 90% utilisation of the dynamic job shop from its definition, Gymnasium's and SB3's
checkers, vectorised runs in other processes and the example in docs/envs.md."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Callable, Optional

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the environments)
from envs.dispatch import DYNAMIC_JOB_SHOP, DispatchEnv, DynamicJobShopEnv, PolicyDecider
from envs.spaces import FEATURE, LINE_FEATURES
from lines.station import Decision
from twin.config import Scenario, ScenarioError, load_scenario
from twin.engine import Line, simulate
from twin.kpi import replication_kpis

from tests.conftest import make_scenario

ROOT = Path(__file__).resolve().parents[1]
SMT = ROOT / "scenarios" / "smt_line.yaml"
SHORT_SMT = ["run.warmup=0", "run.length=4320"]
"""Three days of the SMT line from empty: failures, setups, workers, shifts, a batch oven, rework."""


# ------------------------------------------------------------------------------------------ helpers
class RowRule:
    """A policy written here, on the observation alone: the legal row with the smallest ``key``."""

    def __init__(self, name: str, key: Callable[[np.ndarray], np.ndarray]):
        self.name = name
        self.key = key

    def reset(self, env: object) -> None:
        """Nothing to prepare."""

    def predict(self, observation: dict[str, np.ndarray], state: Optional[tuple] = None,
                episode_start: Optional[np.ndarray] = None, deterministic: bool = True):
        score = np.where(observation["mask"] == 1, self.key(observation["candidates"]), np.inf)
        return np.array(int(np.argmin(score))), None


class LastRowAlways(RowRule):
    """A broken policy: always the last row, legal or not."""

    def __init__(self):
        super().__init__("last row", row_order)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.array(len(observation["mask"]) - 1), None


def processing_time(candidates: np.ndarray) -> np.ndarray:
    return candidates[:, FEATURE["processing_time"]]


def row_order(candidates: np.ndarray) -> np.ndarray:
    return np.arange(len(candidates), dtype=float)


SPT = RowRule("spt", processing_time)
FIRST = RowRule("first", row_order)
LAST = RowRule("last", lambda c: -row_order(c))


def all_kpis(line: Line) -> dict:
    kpis = replication_kpis(line, 0)
    return {"line": kpis.line, "stations": kpis.stations}


def same(a: dict, b: dict) -> bool:
    """Equal KPI tables, NaN equal to NaN."""
    return np.testing.assert_equal(a, b) is None


def run_env(env: DispatchEnv, policy: RowRule, seed: int) -> tuple[list[float], dict]:
    """One episode of ``env`` with ``policy``; the rewards and the last info."""
    observation, info = env.reset(seed=seed)
    rewards, done = [], False
    while not done:
        action, _ = policy.predict(observation)
        observation, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        done = terminated or truncated
    return rewards, info


def job_shop(*overrides: str) -> Scenario:
    return load_scenario(DYNAMIC_JOB_SHOP, list(overrides)).scenario


# ------------------------------------------------------------------------------------------ the hook
def test_rules_through_the_hook_in_process_equal_the_engines_rules():
    """PolicyDecider: SPT written on the observation == station dispatch spt; the first row == fifo on the
    job shop and == the SMT line's own rules (edd at the printer and placers: their queues are kept in
    EDD order); the last row differs, so the hook is really asked."""
    decider = PolicyDecider(SPT, max_candidates=256)  # no queue is longer: SPT sees every part
    fifo, spt = job_shop(), job_shop(*(f"stations.wc{i}.dispatch=spt" for i in (1, 2, 3)))
    for seed in (1, 2):
        assert same(all_kpis(simulate(fifo, 0, seed, decider=decider)), all_kpis(simulate(spt, 0, seed)))
        assert same(all_kpis(simulate(fifo, 0, seed, decider=PolicyDecider(FIRST))),
                    all_kpis(simulate(fifo, 0, seed)))
    shipped = pickle.loads(pickle.dumps(decider))  # as sent to a worker process, after use here
    assert same(all_kpis(simulate(fifo, 0, 3, decider=shipped)), all_kpis(simulate(spt, 0, 3)))
    smt = load_scenario(SMT, SHORT_SMT).scenario
    as_is = all_kpis(simulate(smt, 0, 5))
    assert same(all_kpis(simulate(smt, 0, 5, decider=PolicyDecider(FIRST))), as_is)
    last = all_kpis(simulate(smt, 0, 5, decider=PolicyDecider(LAST)))
    assert last["line"]["lead_time_mean"] != as_is["line"]["lead_time_mean"]


def test_rules_through_the_paused_env_equal_the_engines_rules():
    """The same through DispatchEnv, which pauses the line at every decision: the KPIs of the episode
    equal those of simulate() with the rule and the same seed."""
    endless = "orders.arrivals.until=null"  # so both run the whole 3000 minutes
    spt = job_shop(endless, "run.length=3000", *(f"stations.wc{i}.dispatch=spt" for i in (1, 2, 3)))
    env = DynamicJobShopEnv(overrides=[endless], max_candidates=256, horizon=3000)
    _, info = run_env(env, SPT, seed=4)
    assert info["time"] == 3000
    assert same(info["kpis"], replication_kpis(simulate(spt, 0, 4), 0).line)

    smt = load_scenario(SMT, SHORT_SMT).scenario
    env = DispatchEnv(SMT, SHORT_SMT)
    rewards, info = run_env(env, FIRST, seed=6)
    assert len(rewards) > 100
    assert same(info["kpis"], replication_kpis(simulate(smt, 0, 6), 0).line)


def test_utilisation_feature_in_process_after_a_warm_up():
    """The line's utilisation feature at the last decision of a replication with a warm-up equals the
    busy fraction twin.kpi reports over the observation window (constant processing times, so planned
    work = busy time, up to the operations under way)."""
    seen: list[np.ndarray] = []

    class Recorder(RowRule):
        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            seen.append(observation["line"])
            return super().predict(observation)

    scenario = job_shop("orders.arrivals.until=null", "run.warmup=1000", "run.length=20000")
    kpis = replication_kpis(simulate(scenario, 0, decider=PolicyDecider(Recorder("first", row_order))), 0)
    busy = np.mean([kpis.state_fractions[st]["busy"] for st in ("wc1", "wc2", "wc3")])
    assert seen[-1][LINE_FEATURES.index("utilisation")] == pytest.approx(busy, abs=0.005)


def test_a_deferred_decision_checks_its_answer():
    decisions: list[Decision] = []
    line = Line(job_shop(), 0, 3, decider=lambda d: decisions.append(d))  # always answers later
    while not decisions:
        line.env.step()
    decision = decisions[0]
    with pytest.raises(ValueError, match=rf"row 9 is not a candidate: choose one of 0..{len(decision.candidates) - 1}"):
        decision.choose(9)
    assert decision.choose(1) is decision.candidates[1]
    with pytest.raises(RuntimeError, match="not waiting for an answer"):
        decision.choose(0)


# ------------------------------------------------------------------------------------------ by hand
def three_jobs(**station: object) -> Scenario:
    """One machine; at time 0 three jobs arrive: a (3 min, due 3), b (1 min, due 2), c (2 min, due 4)."""
    return make_scenario(
        products=[{"name": n, "routing": [{"station": "m1", "time": t}]} for n, t in (("a", 3), ("b", 1), ("c", 2))],
        stations=[{"name": "m1", **station}],
        orders={"arrivals": {"type": "schedule", "orders": [{"time": 0, "product": n, "due": d}
                                                            for n, d in (("a", 3), ("b", 2), ("c", 4))]}})


def test_features_and_rewards_by_hand():
    """Sequence b, c, a with a 4-minute setup at every change of product after the first: b ends at 1,
    c at 1 + 4 + 2 = 7, a at 7 + 4 + 3 = 14. Tardiness 0 + 3 + 11 = 14 min, flow times 1 + 7 + 14 =
    22 unit-minutes, makespan 14; time_scale = (3 + 1 + 2) / 3 = 2 minutes."""
    scenario = three_jobs(setup={"default": 4})
    env = DispatchEnv(scenario, max_candidates=4)
    assert env.time_scale == 2.0
    observation, info = env.reset(seed=0)
    assert info == {"time": 0.0, "station": "m1"}
    #                     processing remaining ops slack has_due setup next_queue waiting
    np.testing.assert_allclose(observation["candidates"], [[1.5, 1.5, 1, 0.0, 1, 0, 0, 0],    # a
                                                           [0.5, 0.5, 1, 0.5, 1, 0, 0, 0],    # b
                                                           [1.0, 1.0, 1, 1.0, 1, 0, 0, 0],    # c
                                                           [0, 0, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(observation["mask"], [1, 1, 1, 0])
    np.testing.assert_allclose(observation["line"], [0, 3 / 4, 0, 6 / 2])
    assert list(LINE_FEATURES) == ["progress", "candidates", "utilisation", "queued_work"]

    observation, reward, terminated, truncated, info = env.step(1)  # b
    assert (reward, terminated, truncated, info) == (0.0, False, False, {"time": 1.0, "station": "m1"})
    # at 1: a (slack (3 - 1 - 3) / 2), c (slack (4 - 1 - 2) / 2), both a setup of 4 from product b
    np.testing.assert_allclose(observation["candidates"][:2], [[1.5, 1.5, 1, -0.5, 1, 2, 0, 0.5],
                                                               [1.0, 1.0, 1, 0.5, 1, 2, 0, 0.5]])
    np.testing.assert_allclose(observation["line"], [1 / 6, 2 / 4, 1 / 1, 5 / 2])
    np.testing.assert_array_equal(env.action_masks(), [True, True, False, False])

    observation, reward, terminated, truncated, info = env.step(np.int64(1))  # c; a follows alone
    assert (reward, terminated, truncated) == (-14 / 2, True, False)
    assert info["time"] == 14.0 and info["kpis"]["tardiness_mean"] == 14 / 3
    assert not observation["mask"].any()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)

    for reward_name, total in (("makespan", -14 / 2), ("lead_time", -22 / 2), ("throughput", 3)):
        env = DispatchEnv(scenario, max_candidates=4, reward=reward_name)
        env.reset(seed=0)
        assert env.step(1)[1] + env.step(1)[1] == pytest.approx(total)


def test_illegal_actions_raise_and_change_nothing():
    env = DispatchEnv(three_jobs(), max_candidates=4)
    observation, _ = env.reset(seed=0)
    for action in (3, 4, -1, 1.0, "1", np.array([0, 1])):
        with pytest.raises(ValueError, match="not a legal candidate row; legal rows now: 0..2"):
            env.step(action)
    after = env.step(np.array([2]))[0]
    fresh = DispatchEnv(three_jobs(), max_candidates=4)
    fresh.reset(seed=0)
    for key, value in fresh.step(2)[0].items():
        np.testing.assert_array_equal(after[key], value)


# ------------------------------------------------------------------------------------------ rewards
def test_reward_sums_equal_the_kpis_of_the_episode():
    """Tardiness: an episode of the job shop ends when every job is done, and its rewards sum to minus
    the total tardiness of its orders (tardiness_mean x orders_completed from twin.kpi) / time_scale.
    Energy cost: the rewards of a truncated SMT episode sum to minus the stations' energy cost."""
    env = DynamicJobShopEnv()
    rewards, info = run_env(env, LAST, seed=8)
    kpis = info["kpis"]
    assert info["time"] > 1000 and not env.line.in_line  # arrivals stop at 1000; all jobs done
    assert kpis["orders_completed"] > 50
    assert sum(rewards) * env.time_scale == pytest.approx(-kpis["tardiness_mean"] * kpis["orders_completed"])

    env = DispatchEnv(SMT, ["run.warmup=0", "levers.energy={mode: metered}"], reward="energy_cost", horizon=1440)
    rewards, info = run_env(env, FIRST, seed=2)
    cost = sum(k["energy_cost"] for k in replication_kpis(env.line, 0).stations.values())
    assert info["time"] == 1440 and cost > 0 and sum(rewards) == pytest.approx(-cost)


# ------------------------------------------------------------------------------------------ the job shop
def test_dynamic_job_shop_runs_at_90_percent_utilisation():
    """Independent truth from the file's definition: utilisation = arrival rate x mean work a job brings
    to the work centre / its machines = 0.9 at each; against the busy fraction simulated with arrivals
    that do not stop (4 x 50,000 min after a 1,000-min warm-up)."""
    scenario = job_shop("orders.arrivals.until=null", "run.warmup=1000", "run.length=50000")
    arrivals, mix = scenario.orders.arrivals, scenario.orders.mix
    for station in scenario.stations:
        work = sum(mix[p.name] * op.time.mean for p in scenario.products for op in p.routing
                   if op.station == station.name) / sum(mix.values())
        assert work / arrivals.mean_interarrival / station.servers == pytest.approx(0.9, abs=1e-12)
    busy = np.array([[replication_kpis(simulate(scenario, r), r).state_fractions[st]["busy"]
                      for st in ("wc1", "wc2", "wc3")] for r in range(4)])
    assert abs(busy.mean() - 0.9) < 0.015, busy


@pytest.mark.parametrize("tightness", [2, 3])
def test_due_dates_are_tightness_times_the_work(tightness):
    env = DynamicJobShopEnv(tightness=tightness)
    env.reset(seed=1)
    for _ in range(20):
        env.step(0)
    orders = {p.order for p in env.line.in_line.values()}
    assert orders
    for order in orders:
        work = sum(op.time.mean for op in env.scenario.product(order.product.name).routing)
        assert order.due - order.arrival == pytest.approx(tightness * work)


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_and_actions_give_the_same_trajectory():
    trajectories = []
    for seed in (11, 11, 12):
        env = gym.make("yuetwin/DynamicJobShop-v0")
        observation, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        steps = [observation["candidates"].tobytes()]
        for _ in range(60):
            row = rng.choice(np.flatnonzero(observation["mask"]))
            observation, reward, terminated, truncated, info = env.step(row)
            steps.append((observation["candidates"].tobytes(), observation["line"].tobytes(), reward, info["time"]))
        trajectories.append(steps)
    assert trajectories[0] == trajectories[1]
    assert trajectories[0] != trajectories[2]


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("kwargs,error,message", [
    ({"reward": "tardyness"}, ValueError, r"reward='tardyness' is not known. Did you mean 'tardiness'\?"),
    ({"max_candidates": 1}, ValueError, r"max_candidates=1 must be an integer >= 2"),
    ({"horizon": -5}, ValueError, r"horizon=-5 must be a positive number of minutes"),
    ({"overrides": ["stations.wc9.servers=3"]}, ScenarioError,
     r"stations.wc9: no item 'wc9' here. Did you mean 'wc\d'\?"),
    ({"overrides": ["orders.due_date=null"]}, ValueError, r"reward='tardiness' needs due dates.*orders.due_date"),
    ({"reward": "energy_cost"}, ValueError, r"reward='energy_cost' needs an electricity tariff.*levers.energy"),
])
def test_bad_arguments_name_the_field_and_the_fix(kwargs, error, message):
    with pytest.raises(error, match=message):
        DispatchEnv(DYNAMIC_JOB_SHOP, **kwargs)


def test_bad_scenario_arguments():
    with pytest.raises(ScenarioError, match="file not found"):
        DispatchEnv("scenarios/no_such_line.yaml")
    with pytest.raises(ValueError, match="overrides apply to a scenario file"):
        DispatchEnv(job_shop(), ["run.length=10"])
    with pytest.raises(ValueError, match=r"tightness=0 must be a positive number .*2 and 3"):
        DynamicJobShopEnv(tightness=0)
    with pytest.raises(ValueError, match=r"policy 'last row', 31 is not a legal candidate row; legal rows now: 0..2"):
        simulate(three_jobs(), 0, decider=PolicyDecider(LastRowAlways()))


# ------------------------------------------------------------------------------------------ checkers
def test_gymnasium_and_sb3_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    # The checkers step with action_space.sample(), which draws a legal row of the current decision
    for env_id, kwargs in (("yuetwin/Dispatch-v0", {"scenario": str(SMT)}), ("yuetwin/DynamicJobShop-v0", {})):
        check_env(gym.make(env_id, **kwargs).unwrapped)
        sb3_check_env(gym.make(env_id, **kwargs).unwrapped)


def make_job_shop() -> gym.Env:
    return gym.make("yuetwin/DynamicJobShop-v0", horizon=600)


def first_steps(seed: int, steps: int = 5) -> list[np.ndarray]:
    """Candidates seen by one env in this process when always choosing row 0."""
    env = make_job_shop()
    observation, _ = env.reset(seed=seed)
    seen = [observation["candidates"]]
    for _ in range(steps):
        observation = env.step(0)[0]
        seen.append(observation["candidates"])
    return seen


@pytest.mark.parametrize("context", ["forkserver", "spawn"])
def test_vector_envs_in_other_processes_match_a_local_env(context):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    expected = [first_steps(seed) for seed in (21, 22)]
    vector = gym.vector.AsyncVectorEnv([make_job_shop, make_job_shop], context=context)
    try:
        observation, _ = vector.reset(seed=[21, 22])
        seen = [observation["candidates"]]
        for _ in range(5):
            seen.append(vector.step(np.zeros(2, dtype=np.int64))[0]["candidates"])
    finally:
        vector.close()
    for i in range(2):
        for step, candidates in enumerate(seen):
            np.testing.assert_array_equal(candidates[i], expected[i][step])

    sb3 = SubprocVecEnv([make_job_shop, make_job_shop], start_method=context)
    try:
        sb3.seed(21)  # env i is reset with seed 21 + i
        observation = sb3.reset()
        masks = np.stack(sb3.env_method("action_masks"))
        np.testing.assert_array_equal(masks, observation["mask"].astype(bool))
        for step in range(5):
            for i in range(2):
                np.testing.assert_array_equal(observation["candidates"][i], expected[i][step])
            observation = sb3.step(np.zeros(2, dtype=np.int64))[0]
    finally:
        sb3.close()


def test_maskable_ppo_learns_on_the_job_shop():
    """A few updates of sb3-contrib's MaskablePPO: the env's masks reach the policy (an unmasked random
    row past the candidates would raise)."""
    import torch
    from sb3_contrib import MaskablePPO

    torch.set_num_threads(1)
    model = MaskablePPO("MultiInputPolicy", DynamicJobShopEnv(horizon=400), n_steps=64, batch_size=32,
                        n_epochs=1, seed=0)
    model.learn(128)
    assert model.num_timesteps >= 128


# ------------------------------------------------------------------------------------------ docs
def test_the_example_in_docs_envs_runs(monkeypatch):
    doc = (ROOT / "docs" / "envs.md").read_text(encoding="utf-8")
    section = doc.split("## How to write a new env over a scenario", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(ROOT)
    exec(compile(code, "docs/envs.md", "exec"), {"__name__": "docs_example"})
