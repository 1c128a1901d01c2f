"""Training the learned dispatcher (``policies.learned``): one routine for the static job shop and for lines.

Two phases:

1. **Imitation** (``imitate`` episodes) of a teacher: every decision (observation, the teacher's choice)
   becomes a training example and the network learns them with cross-entropy over the legal candidates,
   which gives PPO a start far better than random.

   * job shop (``yuetwin/JobShop-v0``): CP-SAT solves each generated Taillard-style instance and the env
     replays the solution in ``active`` schedule mode;
   * lines (``yuetwin/DynamicJobShop-v0``, ``yuetwin/Dispatch-v0`` on a scenario with due dates): the
     teacher is the dispatching rule (``policies.rules``) with the lowest mean total tardiness on
     ``TEACHER_TRIAL_EPISODES`` training seeds, chosen at the start of the run. With ``lookahead`` (the
     dynamic job shop only) the expert imitated is the teacher improved by the twin's look-ahead
     (``policies.lookahead``), in two DAgger rounds (``_Task.imitation_rounds``).
2. **MaskablePPO** (``steps`` environment steps). Job shop: the env's makespan reward on freshly generated
   instances. Lines: the reward is paired with the teacher (``PairedWithTeacher``): 0 until the episode
   ends, then the teacher's total tardiness on the same episode (same root seed, so the same arrivals and
   times) minus the agent's, so the luck of the episode cancels out of what PPO learns from. Every
   ``eval_every`` steps the greedy policy is scored on the validation set and the best model so far is
   kept:

   * job shop: mean gap (%) to the best known makespan of ``eval_instances`` (``gap_pct``);
   * lines: mean total tardiness of ``eval_seeds`` episodes with seeds ``VALIDATION_SEED``,
     ``VALIDATION_SEED`` + 1, ..., in % of the teacher's on the same seeds (``tardiness_pct_of_teacher``;
     on the dynamic job shop, the largest of that % over the ``tightness`` values, so the model kept is
     the one that does best where it does worst).

Seeds of line episodes: benchmark test seeds are 0-99 (``bench/scheduling_quality.py``), validation seeds
start at ``VALIDATION_SEED`` (10 000), imitation and teacher-trial seeds are drawn at or above
``TRAINING_SEED_FLOOR`` (1 000 000), and PPO episodes draw 63-bit root seeds from each env's generator.

With ``members`` > 1 the imitation fits that many networks, each from its own initialisation, and the
model is their ``Ensemble`` (no PPO: ``steps`` must be 0); DAgger's second round follows the ensemble.

Progress shows in a rich bar; ``OUT.csv`` logs the mean episode reward and the evaluation (``metric``,
``eval_metric``); ``OUT.ckpt.zip`` is the SB3 checkpoint for ``--resume``; ``OUT`` is the model file
(weights only) with its model card. Seeds: one ``seed`` feeds a SeedSequence whose children seed the
instances (or PPO episodes), the imitation data, the network initialisation and PPO.
"""

from __future__ import annotations

import csv
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch

from envs.instances import generate_instance, load_instance
from policies.base import Policy
from policies.evaluate import gap_pct, run_episode
from policies.learned import (CandidateNet, Dispatcher, Ensemble, LearnedPolicy, ModelCard, candidate_policy_class,
                              load_model, net_of, save_model)

JOB_SHOP = "yuetwin/JobShop-v0"
DYNAMIC_JOB_SHOP = "yuetwin/DynamicJobShop-v0"
DISPATCH = "yuetwin/Dispatch-v0"
TRAINABLE_ENVS: tuple[str, ...] = (JOB_SHOP, DYNAMIC_JOB_SHOP, DISPATCH)
"""Envs ``train`` trains in: the job shop on generated instances; the dynamic job shop; any scenario's line
(``scenario``) with due dates."""
VALIDATION_SEED = 10_000
"""First seed of the validation episodes of line envs (model selection); the benchmark tests on 0-99."""
TRAINING_SEED_FLOOR = 1_000_000
"""Imitation and teacher-trial episodes of line envs use seeds at or above this."""
TEACHER_TRIAL_EPISODES = 20
"""Training episodes on which every rule is scored to choose the line teacher."""
TARDINESS_FLOOR = 1.0
"""Minutes: the teacher's tardiness used to scale rewards and scores is at least this (a teacher without
tardiness on a variant would otherwise divide by zero)."""


@dataclass
class TrainConfig:
    """What ``twin train`` does. Sizes are (jobs, machines); times are seconds of wall clock."""

    out: Path
    env: str = JOB_SHOP
    """One of ``TRAINABLE_ENVS``."""
    steps: int = 200_000
    seed: int = 0
    sizes: tuple[tuple[int, int], ...] = ((10, 10), (15, 10), (15, 15))
    """Job shop only: generated instance sizes."""
    imitate: int = 300
    """Imitated episodes: CP-SAT-solved instances (job shop) or teacher-rule episodes (lines)."""
    expert_time_limit: float = 2.0
    """Job shop only: CP-SAT deterministic seconds per imitated instance (about wall seconds on one core)."""
    imitation_epochs: int = 30
    members: int = 1
    """Networks fitted to the imitation data, each from its own initialisation; more than one makes the
    model an ``Ensemble`` (the mean of their log-probabilities). PPO trains one network, so more than one
    needs ``steps`` 0."""
    eval_instances: tuple[str, ...] = tuple(f"ta{i:02d}" for i in range(1, 11))
    """Job shop only: the dev set."""
    scenario: Optional[Path] = None
    """``yuetwin/Dispatch-v0`` only: the scenario file of the line."""
    tightness: tuple[float, ...] = (2.0,)
    """``yuetwin/DynamicJobShop-v0`` only: due-date tightness values (due = arrival + tightness x work). The
    PPO envs and the imitation episodes cycle through them, each counting the same (see ``_line_task``);
    the teacher is the rule with the lowest mean trial tardiness over them."""
    horizon: Optional[float] = None
    """Lines only: episode length, minutes (None: the scenario's ``run.length``)."""
    eval_seeds: int = 50
    """Lines only: validation episodes per evaluation."""
    eval_every: int = 20_000
    learning_rate: float = 1e-4
    lookahead: bool = False
    """``yuetwin/DynamicJobShop-v0`` only: imitate the teacher rule improved by the twin's look-ahead
    (``policies.lookahead.Lookahead``) rather than the rule itself; rewards and validation stay paired with
    the rule."""
    resume: Optional[Path] = None
    command: str = field(default_factory=lambda: shlex.join(["twin", *sys.argv[1:]]))

    def __post_init__(self) -> None:
        if self.members > 1 and (self.steps or self.resume is not None or not self.imitate):
            raise ValueError("an ensemble is fitted by imitation only (PPO trains one network): give steps 0, "
                             "imitate above 0 and no resume, or one member")


def _streams(seed: int) -> dict[str, np.random.SeedSequence]:
    children = np.random.SeedSequence(seed).spawn(4)
    return dict(zip(("instances", "imitation", "network", "members"), children))


def _member(hidden: int, seed: np.random.SeedSequence) -> CandidateNet:
    """A further ensemble member, initialised as SB3 initialises the first (inside MaskablePPO): every layer
    orthogonal with gain sqrt(2), biases 0, from its own seed."""
    net = CandidateNet(hidden)
    generator = torch.Generator().manual_seed(int(seed.generate_state(2)[1]))  # [0] seeds its fit's shuffles
    for layer in net.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.orthogonal_(layer.weight, gain=math.sqrt(2), generator=generator)
            torch.nn.init.zeros_(layer.bias)
    return net


def total_tardiness(env: Any, policy: Policy, seed: int) -> float:
    """Total tardiness (minutes) of one episode of ``policy`` on the line env ``env`` (a ``DispatchEnv``
    with the tardiness reward) from root seed ``seed``: minus the sum of the rewards x time_scale, which is
    the orders' total tardiness, open orders counted up to the episode's end."""
    return -run_episode(env, policy, seed=seed).total_reward * env.time_scale


def mean_tardiness(env: Any, policy: Policy, seeds: Any) -> float:
    """Mean total tardiness (minutes) of ``policy`` over episodes with the given root seeds."""
    return float(np.mean([total_tardiness(env, policy, int(s)) for s in seeds]))


def evaluate_gap(policy: Any, names: tuple[str, ...], schedule: str = "active") -> float:
    """Mean gap (%) of ``policy`` to the best known makespans of the named instances."""
    from envs.jobshop import JobShopEnv

    gaps = []
    for name in names:
        env = JobShopEnv(instance=name, schedule=schedule)
        result = run_episode(env, policy, seed=0)
        gaps.append(gap_pct(result.makespan, load_instance(name).upper_bound))
    return float(np.mean(gaps))


def _record(env: Any, teacher: Policy, seed: int, observations: list[dict], actions: list[int],
            actor: Optional[Policy] = None) -> None:
    """Append every decision of one greedy episode on ``env`` (root seed ``seed``) with ``teacher``'s choice;
    ``actor`` (default: the teacher) makes the choices the episode follows."""
    obs, _ = env.reset(seed=seed)
    teacher.reset(env)
    if actor is not None:
        actor.reset(env)
    done = False
    while not done:
        action, _ = teacher.predict(obs)
        observations.append(obs)
        actions.append(int(action))
        if actor is not None:
            action, _ = actor.predict(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated


@dataclass
class _Task:
    """What differs between envs: how PPO's envs are made, the teacher, the evaluation and its metric."""

    metric: str
    """Name of the evaluation metric (lower is better): ``gap_pct`` or ``tardiness_pct_of_teacher``."""
    make_env: Callable[[int], Any]
    """The env of PPO's ``i``-th vectorised env."""
    evaluate: Callable[[Policy], float]
    imitation_data: Callable[[Callable[[int], None], np.ndarray, Optional[Policy]], tuple[list[dict], list[int]]]
    """(observations, the expert's choices) of the imitation episodes numbered in the array (0 ..
    ``imitate`` - 1), given a progress callback and the round's actor (None: the expert acts; else the
    network so far, DAgger)."""
    imitation_rounds: int
    """Rounds of imitation: 1, or 2 for DAgger (Ross, Gordon & Bagnell 2011): the second round's episodes
    follow the network trained on the first round, labelled by the expert, and the network is trained on
    both rounds' decisions (where it strays from the expert's episodes, it learns what the expert does)."""
    teacher: str
    """Name of the policy PPO's reward and the evaluation are paired with (lines) or the solver (job shop)."""
    expert: str
    """Name of the policy whose choices are imitated: the teacher, or its look-ahead."""
    budget: str
    evaluation: dict[str, Any]
    """What the evaluation runs on (for the model card)."""
    gae_lambda: float
    """PPO's GAE lambda: 1 where the reward comes only at the episode's end (lines), so that every decision
    gets the whole of it."""


def _job_shop_task(config: TrainConfig) -> _Task:
    from envs.jobshop import JobShopEnv
    from policies.cpsat import CpsatPolicy

    n_jobs, n_machines = max(config.sizes)

    def imitation_data(progress: Callable[[int], None], episodes: np.ndarray,
                       actor: Optional[Policy]) -> tuple[list[dict], list[int]]:
        """(observations, solver choices) from CP-SAT solutions of ``config.imitate`` generated instances (one
        round, all the episodes: the solver plans whole schedules, it cannot label states off them)."""
        rng = np.random.default_rng(_streams(config.seed)["imitation"])
        expert = CpsatPolicy(time_limit=config.expert_time_limit, deterministic=True)
        observations: list[dict] = []
        actions: list[int] = []
        for _ in episodes:
            n, m = config.sizes[rng.integers(len(config.sizes))]
            env = JobShopEnv(instance=generate_instance(int(n), int(m), rng), schedule="active")
            _record(env, expert, 0, observations, actions)
            progress(1)
        return observations, actions

    return _Task(
        metric="gap_pct",
        make_env=lambda i: JobShopEnv(instance=None, n_jobs=n_jobs, n_machines=n_machines, schedule="active"),
        evaluate=lambda policy: evaluate_gap(policy, config.eval_instances),
        imitation_data=imitation_data, imitation_rounds=1, teacher="cpsat", expert="cpsat",
        budget=f"imitation of {config.imitate} CP-SAT solutions ({config.expert_time_limit} s each) + "
               f"{config.steps} MaskablePPO steps on generated {config.sizes} instances",
        evaluation={"eval_instances": list(config.eval_instances)}, gae_lambda=0.95)


def _line_task(config: TrainConfig, progress: Any) -> _Task:
    """The tardiness task of a line env; chooses the teacher rule on training seeds (shown in ``progress``).

    On the dynamic job shop with several tightness values, loose due dates leave far less tardiness than
    tight ones (at 2 and 3: about 1300 and 200 minutes per episode), so without care the tight variant
    would swamp both PPO's gradients and the model selection. Each variant therefore counts the same:
    PPO's rewards on variant ``i`` are scaled by (the teacher's mean trial tardiness over the variants) /
    (its trial tardiness on variant ``i``), and the validation score is relative to the teacher."""
    from envs.dispatch import DispatchEnv, DynamicJobShopEnv
    from policies.lookahead import Lookahead
    from policies.rules import RULE_NAMES, make_rule

    def variant(i: int) -> DispatchEnv:
        """The ``i``-th variant: on the dynamic job shop, tightness ``config.tightness[i]`` (cyclically)."""
        if config.env == DYNAMIC_JOB_SHOP:
            return DynamicJobShopEnv(config.tightness[i % len(config.tightness)], horizon=config.horizon)
        return DispatchEnv(config.scenario, reward="tardiness", horizon=config.horizon)

    variants = [variant(i) for i in range(len(config.tightness) if config.env == DYNAMIC_JOB_SHOP else 1)]

    def tardiness(policy: Policy, seeds: Any) -> np.ndarray:
        """Mean total tardiness (minutes) over ``seeds``, one value per variant."""
        return np.array([mean_tardiness(env, policy, seeds) for env in variants])

    rng = np.random.default_rng(_streams(config.seed)["imitation"])
    trial_seeds = rng.integers(TRAINING_SEED_FLOOR, 2 ** 62, TEACHER_TRIAL_EPISODES)
    task = progress.add_task("teacher: rules on training seeds", total=len(RULE_NAMES))
    trial = {}
    for name in RULE_NAMES:
        trial[name] = tardiness(make_rule(name, seed=config.seed), trial_seeds)
        progress.advance(task)
    teacher = min(trial, key=lambda name: trial[name].mean())
    floor = np.maximum(trial[teacher], TARDINESS_FLOOR)
    reward_scale = floor.mean() / floor
    progress.update(task, description=f"teacher: {teacher} (mean tardiness {trial[teacher].mean():.0f} min on "
                                      f"{TEACHER_TRIAL_EPISODES} training seeds)")
    validation = range(VALIDATION_SEED, VALIDATION_SEED + config.eval_seeds)
    teacher_validation = np.maximum(tardiness(make_rule(teacher, seed=config.seed), validation), TARDINESS_FLOOR)

    def make_env(i: int) -> Any:
        """PPO's ``i``-th env: variant ``i`` paired with the teacher on a twin of itself, rewards scaled (see
        above)."""
        return PairedWithTeacher(variant(i), variant(i), make_rule(teacher, seed=config.seed),
                                 float(reward_scale[i % len(variants)]))

    rule = make_rule(teacher, seed=config.seed)
    expert = Lookahead(rule) if config.lookahead else rule
    rounds = 2 if config.lookahead else 1
    seeds = rng.integers(TRAINING_SEED_FLOOR, 2 ** 62, config.imitate)

    def imitation_data(progress_imitation: Callable[[int], None], episodes: np.ndarray,
                       actor: Optional[Policy]) -> tuple[list[dict], list[int]]:
        """(observations, the expert's choices) of the training episodes numbered in ``episodes`` (the
        variants alternate), followed by ``actor`` (None: the expert)."""
        observations: list[dict] = []
        actions: list[int] = []
        for i in episodes:
            _record(variants[i % len(variants)], expert, int(seeds[i]), observations, actions, actor)
            progress_imitation(1)
        return observations, actions

    where = config.env + (f" on {config.scenario}" if config.env == DISPATCH else
                          f" at tightness {', '.join(f'{t:g}' for t in config.tightness)}")
    return _Task(
        metric="tardiness_pct_of_teacher", make_env=make_env,
        evaluate=lambda policy: float(np.max(100.0 * tardiness(policy, validation) / teacher_validation)),
        imitation_data=imitation_data, imitation_rounds=rounds, teacher=teacher, expert=expert.name,
        budget=f"imitation of {config.imitate} episodes of {expert.name}"
               + (f" (DAgger, {rounds} rounds)" if rounds > 1 else "") + f" + {config.steps} MaskablePPO "
               f"steps (tardiness reward paired with the teacher's, learning rate {config.learning_rate:g}) on "
               f"{where}, horizon {variants[0].horizon:g} min",
        evaluation={"eval_seeds": [validation.start, validation.stop - 1],
                    "teacher_trial_tardiness_min": {k: round(float(v.mean()), 1) for k, v in trial.items()},
                    "teacher_validation_tardiness_min": [round(float(v), 1) for v in teacher_validation],
                    "reward_scale": [round(float(v), 4) for v in reward_scale]},
        gae_lambda=1.0)


class PairedWithTeacher(gym.Wrapper):
    """A line env whose reward is paired with a teacher's: 0 at every decision, then at the episode's end
    ``scale`` x (the teacher's total tardiness - the agent's) / ``time_scale`` (positive when the agent
    is less late), the teacher having run the same episode (the same root seed: the same arrivals,
    processing times and failures, common random numbers) on ``twin``, an env like ``env``.

    An episode's total tardiness depends far more on its arrivals than on any one decision; with the
    teacher's result subtracted, what is left is what the agent's choices changed, so PPO learns from less
    noise (use it with GAE lambda = 1, as the reward comes at the end). Each reset draws the episode's root
    seed from the wrapper's generator (seeded by ``reset(seed=...)``); ``info["teacher_tardiness"]`` at the
    end is the teacher's total (minutes).

    An episode cut at the env's horizon ends ``terminated``, not ``truncated``: both totals count the open
    orders' tardiness up to the horizon, so nothing follows, and PPO must not add its critic's guess of a
    continuation (which SB3 does at a truncation)."""

    def __init__(self, env: gym.Env, twin: gym.Env, teacher: Policy, scale: float = 1.0):
        super().__init__(env)
        self.twin = twin
        self.teacher = teacher
        self.scale = scale
        self._episodes = np.random.default_rng(0)
        self._teacher_total = 0.0
        self._agent_total = 0.0

    def reset(self, *, seed: Optional[int] = None,
              options: Optional[dict[str, Any]] = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            self._episodes = np.random.default_rng(seed)
        root = int(self._episodes.integers(2 ** 63))
        self._teacher_total = total_tardiness(self.twin, self.teacher, root)
        self._agent_total = 0.0
        return self.env.reset(seed=root, options=options)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        unwrapped = self.env.unwrapped
        self._agent_total -= reward * unwrapped.time_scale  # the tardiness reward: -(increase) / time_scale
        if not (terminated or truncated):
            return observation, 0.0, terminated, truncated, info
        info = {**info, "teacher_tardiness": self._teacher_total}
        paired = self.scale * (self._teacher_total - self._agent_total) / unwrapped.time_scale
        return observation, float(paired), True, False, info


def imitate(nets: list[CandidateNet], observations: list[dict], actions: list[int], epochs: int,
            seeds: list[np.random.SeedSequence], learning_rate: float = 1e-3, batch: int = 256) -> list[float]:
    """Fit each of ``nets`` to the expert's choices (cross-entropy over legal rows), shuffled by its own seed
    of ``seeds``; returns their final accuracies."""
    width = max(o["candidates"].shape[0] for o in observations)

    def pad(key: str, o: dict) -> np.ndarray:
        a = o[key]
        if key == "line":
            return a
        out = np.zeros((width,) + a.shape[1:], dtype=a.dtype)
        out[:a.shape[0]] = a
        return out

    cand = torch.as_tensor(np.stack([pad("candidates", o) for o in observations]), dtype=torch.float32)
    mask = torch.as_tensor(np.stack([pad("mask", o) for o in observations]), dtype=torch.float32)
    line = torch.as_tensor(np.stack([o["line"] for o in observations]), dtype=torch.float32)
    target = torch.as_tensor(actions)
    accuracies = []
    for net, seed in zip(nets, seeds, strict=True):
        gen = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(target), generator=gen)
            for i in range(0, len(order), batch):
                idx = order[i:i + batch]
                scores, _ = net(cand[idx], mask[idx], line[idx])
                loss = torch.nn.functional.cross_entropy(scores.clamp(min=-1e9), target[idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        net.eval()
        with torch.no_grad():
            scores, _ = net(cand, mask, line)
            accuracies.append(float((scores.argmax(1) == target).float().mean()))
    return accuracies


class _Log:
    """The CSV log (appended on resume): steps, mean episode reward, the evaluation metric's name and
    value (``gap_pct`` and ``tardiness_pct_of_teacher``: %), wall seconds. On line envs the episode reward is
    the paired one PPO sees (``PairedWithTeacher``): above 0 when the agent was less late than the teacher."""

    FIELDS = ("phase", "steps", "episode_reward_mean", "metric", "eval_metric", "seconds")

    def __init__(self, path: Path, append: bool, metric: str):
        self.path = path
        self.metric = metric
        self.start = time.perf_counter()
        if not (append and path.exists()):
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(self.FIELDS)

    def row(self, phase: str, steps: int, reward: float, value: float) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([phase, steps, f"{reward:.4f}", self.metric, f"{value:.3f}",
                                    f"{time.perf_counter() - self.start:.1f}"])


def train(config: TrainConfig, progress: Any) -> dict[str, Any]:
    """Run both phases (imitation is skipped on resume); returns the best evaluation (``metric``,
    ``best``), the teacher, and where the files are. ``progress`` is a rich Progress. Ctrl-C stops PPO and
    keeps the best model and the checkpoint. Raises ValueError for an env ``train`` does not know."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    if config.env not in TRAINABLE_ENVS:
        raise ValueError(f"env={config.env!r} cannot be trained; use one of {', '.join(TRAINABLE_ENVS)}")
    torch.set_num_threads(1)
    streams = _streams(config.seed)
    task = _job_shop_task(config) if config.env == JOB_SHOP else _line_task(config, progress)
    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = out.with_suffix(".ckpt.zip")
    log = _Log(out.with_suffix(".csv"), append=config.resume is not None, metric=task.metric)

    venv = DummyVecEnv([lambda i=i: Monitor(task.make_env(i)) for i in range(4)])
    venv.seed(int(streams["instances"].generate_state(1)[0]))  # each env draws its episodes from its seed
    best = {"value": math.inf, "steps": 0, "phase": ""}
    if config.resume is not None and out.exists():
        results = load_model(out)[1].results  # model files written before the metric field: eval_gap_pct
        if results.get("metric", "gap_pct") == task.metric:  # a model scored otherwise cannot be compared
            best.update(value=results.get("eval_metric", results.get("eval_gap_pct", math.inf)), phase="before resume")

    def keep_if_best(model_net: Dispatcher, phase: str, steps: int, reward: float) -> float:
        value = task.evaluate(LearnedPolicy(model_net))
        log.row(phase, steps, reward, value)
        if value < best["value"]:
            best.update(value=value, steps=steps, phase=phase)
            save_model(model_net, out, ModelCard(
                training_command=config.command, seed=config.seed, budget=task.budget + (
                    f"; an ensemble of {config.members} networks" if config.members > 1 else ""),
                results={"env": config.env, "teacher": task.teacher, "expert": task.expert, **task.evaluation,
                         "metric": task.metric, "eval_metric": round(value, 3), "phase": phase, "steps": steps}))
        return value

    if config.resume is not None:
        model = MaskablePPO.load(config.resume, env=venv, device="cpu")
        # new episodes rather than a replay of the first run's: the seed depends on the steps already done
        episodes = streams["instances"]
        venv.seed(int(np.random.SeedSequence(episodes.entropy, spawn_key=(*episodes.spawn_key, model.num_timesteps))
                      .generate_state(1)[0]))
    else:
        model = MaskablePPO(candidate_policy_class(), venv, learning_rate=config.learning_rate, n_steps=512,
                            batch_size=256, n_epochs=4, gamma=1.0, gae_lambda=task.gae_lambda, clip_range=0.1,
                            ent_coef=0.0, seed=int(streams["network"].generate_state(1)[0]), device="cpu",
                            verbose=0)
        first = net_of(model)
        seeds = [streams["imitation"], *streams["members"].spawn(config.members - 1)]
        members = [first, *(_member(first.hidden, seed) for seed in seeds[1:])]
        dispatcher: Dispatcher = Ensemble(members) if config.members > 1 else first
        if config.imitate:
            bar = progress.add_task(f"imitation of {task.expert}", total=config.imitate)
            observations, actions = [], []
            for round_, episodes in enumerate(np.array_split(np.arange(config.imitate), task.imitation_rounds)):
                actor = LearnedPolicy(dispatcher) if round_ else None
                more_observations, more_actions = task.imitation_data(lambda k: progress.advance(bar, k), episodes,
                                                                      actor)
                observations += more_observations
                actions += more_actions
                accuracy = imitate(members, observations, actions, config.imitation_epochs, seeds)
            progress.update(bar, description=f"imitation of {task.expert}: {len(actions)} decisions, accuracy "
                                             + ", ".join(f"{a:.1%}" for a in accuracy))
        keep_if_best(dispatcher, "imitation", 0, math.nan)

    bar = progress.add_task("MaskablePPO", total=config.steps)

    class Callback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval = config.eval_every

        def _on_step(self) -> bool:
            progress.update(bar, completed=min(self.num_timesteps - start, config.steps))
            if self.num_timesteps - start >= self.next_eval:
                self.next_eval += config.eval_every
                rewards = [e["r"] for e in self.model.ep_info_buffer] or [math.nan]
                value = keep_if_best(net_of(self.model), "ppo", self.num_timesteps, float(np.mean(rewards)))
                progress.update(bar, description=f"MaskablePPO ({task.metric} {value:.1f}, best {best['value']:.1f})")
                self.model.save(checkpoint)
            return True

    start = model.num_timesteps
    try:
        model.learn(config.steps, callback=Callback(), reset_num_timesteps=False)
    except KeyboardInterrupt:
        progress.console.print("[yellow]interrupted: the best model and the checkpoint are kept[/]")
    model.save(checkpoint)
    return {"metric": task.metric, "best": best["value"], "best_phase": best["phase"], "best_steps": best["steps"],
            "teacher": task.teacher, "model": str(out), "checkpoint": str(checkpoint), "log": str(log.path)}
