"""Lab 5: train a reinforcement-learning dispatcher with a small budget and compare it with MWKR.

Checked: ``model.pt`` exists and loads as a YueTwin dispatcher (``policies.learned.load_model``); on
held-out generated job shops (seeds the training never uses) its makespan, measured by the environment
itself (``policies.evaluate.run_episode``), beats the MWKR rule's by the target; and the gap the student
reports is the measured one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twin.labs import Finding, as_number, not_checked, read_answer, text

TITLE = text("Train an RL dispatcher and beat MWKR", "训练强化学习派工策略并超越 MWKR")
MINUTES = 45
"""Student time on a laptop (reading, a few minutes of training, evaluating, answering)."""

HELD_OUT_SIZES = ((8, 8), (10, 10))
"""Generated job shops of the check (jobs x machines): one size of the training, one larger."""
HELD_OUT_SEEDS = range(2026, 2036)
"""Instance seeds of the check, per size (training draws its instances from other streams)."""
TARGET_GAP_PCT = -3.0
"""The learned dispatcher's mean makespan gap to MWKR (%) must be at most this: 3 % shorter or better."""
REPORT_TOLERANCE_PCT = 0.5
"""Percentage points the reported gap may be from the measured one."""


def gap_vs_mwkr(policy: Any, sizes: tuple[tuple[int, int], ...] = HELD_OUT_SIZES,
                seeds: range = HELD_OUT_SEEDS) -> float:
    """Mean makespan gap (%) of ``policy`` to the MWKR rule on generated job shops of ``sizes`` with
    instance ``seeds``: 100 x (makespan - MWKR's makespan) / MWKR's makespan, averaged over the instances.
    Negative: the policy's schedules are shorter."""
    from envs.jobshop import JobShopEnv
    from policies.evaluate import gap_pct, run_episode
    from policies.rules import make_rule

    mwkr = make_rule("mwkr")
    gaps = []
    for n_jobs, n_machines in sizes:
        env = JobShopEnv(instance=None, n_jobs=n_jobs, n_machines=n_machines, schedule="active")
        gaps += [gap_pct(run_episode(env, policy, seed=seed).makespan, run_episode(env, mwkr, seed=seed).makespan)
                 for seed in seeds]
    return float(np.mean(gaps))


def check(folder: Path) -> list[Finding]:
    """Check lab 5 in ``folder``: ``model.pt`` (written by ``twin train``) and ``answer.yaml``."""
    from policies.learned import LearnedPolicy, ModelFileError, load_model

    train_hint = text("Train it in this folder: `twin train --out model.pt --steps 100000 --imitate 200 "
                      "--sizes 6x6,8x8` (see the instructions).",
                      "在本文件夹中训练：`twin train --out model.pt --steps 100000 --imitate 200 --sizes 6x6,8x8`"
                      "（见说明）。")
    try:
        net, card = load_model(folder / "model.pt")
    except ModelFileError as exc:
        return [Finding("model", False, text(str(exc), str(exc)), train_hint),
                *not_checked(("beats_mwkr", "reported"), text("no model", "没有模型"), train_hint)]
    findings = [Finding("model", True, text(f"model.pt loads: {card.budget or 'no budget recorded'}.",
                                            f"model.pt 可以加载：{card.budget or '未记录训练预算'}。"))]
    gap = gap_vs_mwkr(LearnedPolicy(net))
    where = (f"{len(HELD_OUT_SEEDS)} held-out job shops each of "
             + ", ".join(f"{j}x{m}" for j, m in HELD_OUT_SIZES))
    where_zh = f"{'、'.join(f'{j}x{m}' for j, m in HELD_OUT_SIZES)} 各 {len(HELD_OUT_SEEDS)} 个保留作业车间"
    beats = gap <= TARGET_GAP_PCT
    findings.append(Finding("beats_mwkr", beats, text(
        f"Makespan {gap:+.1f} % against MWKR on {where}; the target is {TARGET_GAP_PCT:+.0f} % or better"
        + ("." if beats else ": not yet."),
        f"在{where_zh}上，完工时间相对 MWKR 为 {gap:+.1f}%；目标为 {TARGET_GAP_PCT:+.0f}% 或更好"
        + ("。" if beats else "：尚未达到。")), text(
        "Imitation of CP-SAT does most of the learning: raise --imitate (e.g. to 200 or 400) before --steps, "
        "and train on the sizes you are tested on.",
        "大部分学习来自模仿 CP-SAT：先增大 --imitate（如增至 200 或 400），再增大 --steps，并在被测试的规模上训练。")))
    answer, problem = read_answer(folder)
    reported = as_number(answer.get("gap_vs_mwkr_pct"))
    right = reported is not None and abs(reported - gap) <= REPORT_TOLERANCE_PCT
    findings.append(Finding("reported", right, text(
        f"Right: you measured {reported:+.1f} % against MWKR." if right else
        f"gap_vs_mwkr_pct {answer.get('gap_vs_mwkr_pct')!r} is not the measured gap (within "
        f"{REPORT_TOLERANCE_PCT} percentage points){'; ' + problem if problem else ''}.",
        f"正确：你测得相对 MWKR 为 {reported:+.1f}%。" if right else
        f"gap_vs_mwkr_pct {answer.get('gap_vs_mwkr_pct')!r} 不是测得的差距（允许误差 {REPORT_TOLERANCE_PCT} 个百分点）"
        f"{'；' + problem if problem else ''}。"), text(
        "Run the evaluation cell of lab5.ipynb (or twin.labs.lab5.gap_vs_mwkr) and copy the number.",
        "运行 lab5.ipynb 的评估单元（或 twin.labs.lab5.gap_vs_mwkr），抄下该数值。")))
    return findings
