"""``twin train``: train the learned dispatcher (see ``policies.training``). Register it on the main app with
``app.command("train")(train)``. torch and SB3 are imported only when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from twin.console import fail, out, progress_bar

TRAINABLE_ENVS = ("yuetwin/JobShop-v0",)
"""Envs ``twin train`` trains on: the job shop, on generated instances."""


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    sizes = []
    for token in (t.strip() for t in text.split(",") if t.strip()):
        jobs, _, machines = token.partition("x")
        if not (jobs.isdigit() and machines.isdigit() and int(jobs) >= 2 and int(machines) >= 2):
            fail([f"--sizes: {token!r} is not JOBSxMACHINES with at least 2 of each (e.g. 10x10,15x15)"])
        sizes.append((int(jobs), int(machines)))
    if not sizes:
        fail(["--sizes: give at least one JOBSxMACHINES size, e.g. 15x15"])
    return tuple(sizes)


def train(
    env: str = typer.Option("yuetwin/JobShop-v0", "--env", help="Environment id to train in."),
    steps: int = typer.Option(200_000, "--steps", min=0, help="MaskablePPO environment steps."),
    out_path: Path = typer.Option(..., "--out", help="Model file to write (weights only); the CSV log "
                                                     "and the SB3 checkpoint go beside it."),
    seed: int = typer.Option(0, "--seed", help="Seed of instances, imitation data, network and PPO."),
    sizes: str = typer.Option("10x10,15x10,15x15", "--sizes", help="Generated instance sizes, JOBSxMACHINES."),
    imitate: int = typer.Option(300, "--imitate", min=0,
                                help="Generated instances solved by CP-SAT to imitate before PPO (0: none)."),
    expert_time_limit: float = typer.Option(2.0, "--expert-time-limit", min=0.01,
                                            help="CP-SAT deterministic seconds per imitated instance (reproducible)."),
    eval_every: int = typer.Option(20_000, "--eval-every", min=1, help="PPO steps between dev-set evaluations."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="SB3 checkpoint (OUT.ckpt.zip) to continue "
                                                                 "from. It is unpickled: name only files you trust."),
) -> None:
    """Train the learned dispatcher on generated job-shop instances; keeps the best model on the dev set."""
    if env not in TRAINABLE_ENVS:
        from twin.config.scenario import suggest

        fail([f"--env: {env!r} cannot be trained by `twin train`; use one of {', '.join(TRAINABLE_ENVS)}."
              + suggest(env, list(TRAINABLE_ENVS))])
    if resume is not None and not resume.is_file():
        fail([f"--resume: no checkpoint file {resume}"])
    from policies.training import TrainConfig, train as run_training

    config = TrainConfig(out=out_path, steps=steps, seed=seed, sizes=_sizes(sizes), imitate=imitate,
                         expert_time_limit=expert_time_limit, eval_every=eval_every, resume=resume)
    with progress_bar(transient=False) as progress:
        result = run_training(config, progress)
    out().print(f"best dev-set gap {result['best_gap_pct']:.2f}% ({result['best_phase']}, step "
                f"{result['best_steps']}); model {result['model']}, log {result['log']}, "
                f"checkpoint {result['checkpoint']}", highlight=False)
