"""``twin train``: train the learned dispatcher (see ``policies.training``). Register it on the main app with
``app.command("train")(train)``. torch and SB3 are imported only when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from twin.console import fail, out, progress_bar

JOB_SHOP, DYNAMIC_JOB_SHOP, DISPATCH = "yuetwin/JobShop-v0", "yuetwin/DynamicJobShop-v0", "yuetwin/Dispatch-v0"
TRAINABLE_ENVS = (JOB_SHOP, DYNAMIC_JOB_SHOP, DISPATCH)
"""Envs ``twin train`` trains in (``policies.training.TRAINABLE_ENVS``, named here so that checking the
command line needs no torch): the job shop on generated instances (makespan), the dynamic job shop and any
scenario's line with due dates (tardiness)."""
JOB_SHOP_DEFAULTS = {"sizes": "10x10,15x10,15x15", "expert_time_limit": 2.0}


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


def _tightness(text: str) -> tuple[float, ...]:
    values = []
    for token in (t.strip() for t in text.split(",") if t.strip()):
        try:
            value = float(token)
        except ValueError:
            value = float("nan")
        if not 0 < value < float("inf"):
            fail([f"--tightness: {token!r} is not a positive number (due = arrival + tightness x work; e.g. 2,3)"])
        values.append(value)
    if not values:
        fail(["--tightness: give at least one value, e.g. 2,3"])
    return tuple(values)


def _check_options(env: str, scenario: Optional[Path], horizon: Optional[float], sizes: Optional[str],
                   expert_time_limit: Optional[float], tightness: Optional[str], lookahead: bool) -> None:
    """Exit 2 naming the option that does not apply to ``env`` or is missing for it."""
    if env not in TRAINABLE_ENVS:
        from twin.config.scenario import suggest

        fail([f"--env: {env!r} cannot be trained by `twin train`; use one of {', '.join(TRAINABLE_ENVS)}."
              + suggest(env, list(TRAINABLE_ENVS))])
    if lookahead and env != DYNAMIC_JOB_SHOP:
        from policies.lookahead import DYNAMIC_JOB_SHOP_ONLY

        fail([f"--lookahead: applies to {DYNAMIC_JOB_SHOP} only (the look-ahead: {DYNAMIC_JOB_SHOP_ONLY}). "
              "Leave it out."])
    if env == JOB_SHOP:
        given = [name for name, value in (("--scenario", scenario), ("--horizon", horizon), ("--tightness", tightness))
                 if value is not None]
        if given:
            fail([f"{given[0]}: applies to line envs ({DYNAMIC_JOB_SHOP}, {DISPATCH}); the job shop trains on "
                  "generated instances (--sizes). Leave it out or choose a line env with --env."])
        return
    given = [name for name, value in (("--sizes", sizes), ("--expert-time-limit", expert_time_limit))
             if value is not None]
    if given:
        fail([f"{given[0]}: applies to {JOB_SHOP} only; on {env} the teacher is the best dispatching rule. "
              "Leave it out."])
    if env == DISPATCH and scenario is None:
        fail([f"--scenario: {DISPATCH} trains on a scenario's line; name its file, e.g. "
              "--scenario scenarios/machining_job_shop.yaml"])
    if env == DISPATCH and tightness is not None:
        fail([f"--tightness: applies to {DYNAMIC_JOB_SHOP}; a scenario's due dates are in its orders.due_date"])
    if env == DYNAMIC_JOB_SHOP and scenario is not None:
        fail([f"--scenario: {DYNAMIC_JOB_SHOP} is scenarios/dynamic_job_shop.yaml already; leave --scenario out "
              f"or use --env {DISPATCH}"])
    if scenario is not None and not scenario.is_file():
        fail([f"--scenario: no scenario file {scenario}"])
    from envs.dispatch import DispatchEnv, DynamicJobShopEnv
    from twin.config import ScenarioError

    try:  # the line must be valid and able to give the tardiness reward
        DynamicJobShopEnv(horizon=horizon) if env == DYNAMIC_JOB_SHOP else DispatchEnv(scenario, horizon=horizon)
    except ScenarioError as exc:
        fail([str(p) for p in exc.problems])
    except ValueError as exc:
        fail([f"--scenario {scenario}: {exc}"])


def train(
    env: str = typer.Option(JOB_SHOP, "--env", help=f"Environment id to train in: {', '.join(TRAINABLE_ENVS)}."),
    steps: int = typer.Option(200_000, "--steps", min=0, help="MaskablePPO environment steps."),
    out_path: Path = typer.Option(..., "--out", help="Model file to write (weights only); the CSV log "
                                                     "and the SB3 checkpoint go beside it."),
    seed: int = typer.Option(0, "--seed", help="Seed of instances or episodes, imitation data, network and PPO."),
    scenario: Optional[Path] = typer.Option(None, "--scenario", help=f"{DISPATCH}: the scenario file of the line "
                                                                     "(it needs due dates)."),
    tightness: Optional[str] = typer.Option(None, "--tightness", help=f"{DYNAMIC_JOB_SHOP}: due-date tightness "
                                                                      "values, comma-separated (default 2)."),
    horizon: Optional[float] = typer.Option(None, "--horizon", min=1.0, help="Line envs: episode length, minutes "
                                                                             "(default: the scenario's run.length)."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Job shop: generated instance sizes, JOBSxMACHINES "
                                                              f"(default {JOB_SHOP_DEFAULTS['sizes']})."),
    imitate: int = typer.Option(300, "--imitate", min=0,
                                help="Episodes imitated before PPO (0: none): generated job-shop instances solved by "
                                     "CP-SAT, or on line envs episodes of the best rule on training seeds."),
    expert_time_limit: Optional[float] = typer.Option(
        None, "--expert-time-limit", min=0.01,
        help="Job shop: CP-SAT deterministic seconds per imitated instance (reproducible; default "
             f"{JOB_SHOP_DEFAULTS['expert_time_limit']})."),
    lookahead: bool = typer.Option(False, "--lookahead",
                                   help=f"{DYNAMIC_JOB_SHOP}: imitate the best rule improved by the twin's look-ahead "
                                        "(every candidate simulated; seconds per episode) instead of the rule."),
    members: int = typer.Option(1, "--members", min=1, max=16,
                                help="Networks fitted by imitation from different initialisations; above 1 the model "
                                     "is their ensemble (mean log-probability) and --steps must be 0."),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", min=1e-7, max=1.0, help="MaskablePPO learning rate."),
    eval_every: int = typer.Option(20_000, "--eval-every", min=1, help="PPO steps between evaluations."),
    eval_seeds: int = typer.Option(50, "--eval-seeds", min=1, help="Line envs: validation episodes per evaluation "
                                                                   "(seeds 10000, 10001, ...)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="SB3 checkpoint (OUT.ckpt.zip) to continue "
                                                                 "from. It is unpickled: name only files you trust."),
) -> None:
    """Train the learned dispatcher: on generated job-shop instances (makespan) or on a line with due dates
    (tardiness); keeps the best model on the validation set."""
    _check_options(env, scenario, horizon, sizes, expert_time_limit, tightness, lookahead)
    if resume is not None and not resume.is_file():
        fail([f"--resume: no checkpoint file {resume}"])
    from policies.training import TrainConfig, train as run_training

    try:
        config = TrainConfig(out=out_path, env=env, steps=steps, seed=seed,
                             sizes=_sizes(sizes or JOB_SHOP_DEFAULTS["sizes"]), imitate=imitate,
                             expert_time_limit=expert_time_limit or JOB_SHOP_DEFAULTS["expert_time_limit"],
                             scenario=scenario, tightness=_tightness(tightness or "2"), horizon=horizon,
                             eval_seeds=eval_seeds, learning_rate=learning_rate, eval_every=eval_every,
                             lookahead=lookahead, members=members, resume=resume)
    except ValueError as exc:  # the only one TrainConfig raises: --members with PPO
        fail([f"--members {members}: {exc} (--steps, --imitate, --resume)"])
    with progress_bar(transient=False) as progress:
        result = run_training(config, progress)
    out().print(f"teacher {result['teacher']}; best validation {result['metric']} {result['best']:.2f}% "
                f"({result['best_phase']}, step {result['best_steps']}); model {result['model']}, log "
                f"{result['log']}, checkpoint {result['checkpoint']}", highlight=False)
