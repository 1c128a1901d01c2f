"""Training the learned dispatcher (``policies.learned``) on seeded, generated job-shop instances.

Two phases, both on Taillard-style generated instances only (never on benchmark instances):

1. **Imitation** (``imitate`` instances): CP-SAT solves each generated instance; the env replays the
   solution in ``active`` schedule mode and every decision (observation, the solver's choice) becomes a
   training example; the network learns them with cross-entropy over the legal candidates. This gives
   PPO a start far better than random.
2. **MaskablePPO** (``steps`` environment steps): reinforcement learning on freshly generated instances
   with the env's makespan reward. Every ``eval_every`` steps the greedy policy is scored on the dev set
   (``eval_instances``, gap to the best known makespan, %); the best model so far is kept.

Progress shows in a rich bar; ``OUT.csv`` logs reward and evaluation gap; ``OUT.ckpt.zip`` is the SB3
checkpoint for ``--resume``; ``OUT`` is the model file (weights only) with its model card.
Seeds: one ``seed`` feeds a SeedSequence whose children seed the instance generator, the imitation data,
the network initialisation and PPO.
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

import numpy as np
import torch

from envs.instances import generate_instance, load_instance
from policies.evaluate import gap_pct, run_episode
from policies.learned import (CandidateNet, LearnedPolicy, ModelCard, candidate_policy_class, load_model,
                              net_of, save_model)


@dataclass
class TrainConfig:
    """What ``twin train`` does. Sizes are (jobs, machines); times are seconds of wall clock."""

    out: Path
    steps: int = 200_000
    seed: int = 0
    sizes: tuple[tuple[int, int], ...] = ((10, 10), (15, 10), (15, 15))
    imitate: int = 300
    expert_time_limit: float = 2.0
    """CP-SAT deterministic seconds per imitated instance (about wall seconds on one core)."""
    imitation_epochs: int = 30
    eval_instances: tuple[str, ...] = tuple(f"ta{i:02d}" for i in range(1, 11))
    eval_every: int = 20_000
    learning_rate: float = 1e-4
    resume: Optional[Path] = None
    command: str = field(default_factory=lambda: shlex.join(["twin", *sys.argv[1:]]))


def _streams(seed: int) -> dict[str, np.random.SeedSequence]:
    children = np.random.SeedSequence(seed).spawn(3)
    return dict(zip(("instances", "imitation", "network"), children))


def evaluate_gap(policy: Any, names: tuple[str, ...], schedule: str = "active") -> float:
    """Mean gap (%) of ``policy`` to the best known makespans of the named instances."""
    from envs.jobshop import JobShopEnv

    gaps = []
    for name in names:
        env = JobShopEnv(instance=name, schedule=schedule)
        result = run_episode(env, policy, seed=0)
        gaps.append(gap_pct(result.makespan, load_instance(name).upper_bound))
    return float(np.mean(gaps))


def imitation_data(config: TrainConfig, progress: Callable[[int], None]) -> tuple[list[dict], list[int]]:
    """(observations, solver choices) from CP-SAT solutions of ``config.imitate`` generated instances."""
    from envs.jobshop import JobShopEnv
    from policies.cpsat import CpsatPolicy

    rng = np.random.default_rng(_streams(config.seed)["imitation"])
    expert = CpsatPolicy(time_limit=config.expert_time_limit, deterministic=True)
    observations, actions = [], []
    for _ in range(config.imitate):
        n, m = config.sizes[rng.integers(len(config.sizes))]
        env = JobShopEnv(instance=generate_instance(int(n), int(m), rng), schedule="active")
        obs, _ = env.reset(seed=0)
        expert.reset(env)
        done = False
        while not done:
            action, _ = expert.predict(obs)
            observations.append(obs)
            actions.append(int(action))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        progress(1)
    return observations, actions


def imitate(net: CandidateNet, observations: list[dict], actions: list[int], epochs: int,
            seed: np.random.SeedSequence, learning_rate: float = 1e-3, batch: int = 256) -> float:
    """Fit ``net`` to the solver's choices (cross-entropy over legal rows); returns the final accuracy."""
    gen = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
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
        return float((scores.argmax(1) == target).float().mean())


class _Log:
    """The CSV log (appended on resume): steps, mean episode reward, evaluation gap (%), wall seconds."""

    FIELDS = ("phase", "steps", "episode_reward_mean", "eval_gap_pct", "seconds")

    def __init__(self, path: Path, append: bool):
        self.path = path
        self.start = time.perf_counter()
        if not (append and path.exists()):
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(self.FIELDS)

    def row(self, phase: str, steps: int, reward: float, gap: float) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([phase, steps, f"{reward:.4f}", f"{gap:.3f}",
                                    f"{time.perf_counter() - self.start:.1f}"])


def train(config: TrainConfig, progress: Any) -> dict[str, Any]:
    """Run both phases (imitation is skipped on resume); returns the best evaluation gap and where the
    files are. ``progress`` is a rich Progress. Ctrl-C stops PPO and keeps the best model and the
    checkpoint."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from envs.jobshop import JobShopEnv

    torch.set_num_threads(1)
    streams = _streams(config.seed)
    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = out.with_suffix(".ckpt.zip")
    log = _Log(out.with_suffix(".csv"), append=config.resume is not None)
    n_jobs, n_machines = max(config.sizes)

    def make_env() -> Monitor:
        return Monitor(JobShopEnv(instance=None, n_jobs=n_jobs, n_machines=n_machines, schedule="active"))

    venv = DummyVecEnv([make_env] * 4)
    venv.seed(int(streams["instances"].generate_state(1)[0]))  # each env draws its instances from its seed
    best = {"gap": math.inf, "steps": 0, "phase": ""}
    if config.resume is not None and out.exists():
        best.update(gap=load_model(out)[1].results.get("eval_gap_pct", math.inf), phase="before resume")

    def keep_if_best(model_net: CandidateNet, phase: str, steps: int, reward: float) -> float:
        gap = evaluate_gap(LearnedPolicy(model_net), config.eval_instances)
        log.row(phase, steps, reward, gap)
        if gap < best["gap"]:
            best.update(gap=gap, steps=steps, phase=phase)
            save_model(model_net, out, ModelCard(
                training_command=config.command, seed=config.seed,
                budget=f"imitation of {config.imitate} CP-SAT solutions ({config.expert_time_limit} s each) + "
                       f"{config.steps} MaskablePPO steps on generated {config.sizes} instances",
                results={"eval_instances": list(config.eval_instances), "eval_gap_pct": round(gap, 3),
                         "phase": phase, "steps": steps}))
        return gap

    if config.resume is not None:
        model = MaskablePPO.load(config.resume, env=venv, device="cpu")
    else:
        model = MaskablePPO(candidate_policy_class(), venv, learning_rate=config.learning_rate, n_steps=512,
                            batch_size=256, n_epochs=4, gamma=1.0, gae_lambda=0.95, clip_range=0.1,
                            ent_coef=0.0, seed=int(streams["network"].generate_state(1)[0]), device="cpu",
                            verbose=0)
        if config.imitate:
            task = progress.add_task("imitation: CP-SAT solutions", total=config.imitate)
            observations, actions = imitation_data(config, lambda k: progress.advance(task, k))
            accuracy = imitate(net_of(model), observations, actions, config.imitation_epochs, streams["imitation"])
            progress.update(task, description=f"imitation: {len(actions)} decisions, accuracy {accuracy:.1%}")
        keep_if_best(net_of(model), "imitation", 0, math.nan)

    task = progress.add_task("MaskablePPO", total=config.steps)

    class Callback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval = config.eval_every

        def _on_step(self) -> bool:
            progress.update(task, completed=min(self.num_timesteps - start, config.steps))
            if self.num_timesteps - start >= self.next_eval:
                self.next_eval += config.eval_every
                rewards = [e["r"] for e in self.model.ep_info_buffer] or [math.nan]
                gap = keep_if_best(net_of(self.model), "ppo", self.num_timesteps, float(np.mean(rewards)))
                progress.update(task, description=f"MaskablePPO (dev gap {gap:.1f}%, best {best['gap']:.1f}%)")
                self.model.save(checkpoint)
            return True

    start = model.num_timesteps
    try:
        model.learn(config.steps, callback=Callback(), reset_num_timesteps=False)
    except KeyboardInterrupt:
        progress.console.print("[yellow]interrupted: the best model and the checkpoint are kept[/]")
    model.save(checkpoint)
    return {"best_gap_pct": best["gap"], "best_phase": best["phase"], "best_steps": best["steps"],
            "model": str(out), "checkpoint": str(checkpoint), "log": str(log.path)}
