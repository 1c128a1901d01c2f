"""Lab 3: dispatching rules on a dynamic job shop.

Checked: the rule named in ``answer.yaml`` exists, its mean total tardiness on the job shop's held-out
seeds (measured by the environment itself) meets the target, and the tardiness the student reports is
the one the environment measures.
"""

from __future__ import annotations

from pathlib import Path

from twin.config.scenario import suggest
from twin.labs import Finding, as_number, not_checked, read_answer, text

TITLE = text("Dispatching rules on a job shop", "作业车间的派工规则")
MINUTES = 30
"""Student time on a laptop (reading, running the rules, answering)."""

TARGET_TARDINESS = 500.0
"""Mean total tardiness (minutes per episode) the chosen rule must not exceed on the held-out seeds."""
HELD_OUT_SEEDS = range(2026, 2036)
"""Episode seeds of the check (the instructions tell students to try seeds 0-9)."""
REPORT_TOLERANCE = 0.05
"""Relative difference allowed between the reported and the measured tardiness."""


def check(folder: Path) -> list[Finding]:
    """Check lab 3 in ``folder``: ``answer.yaml`` with ``rule`` and ``rule_tardiness``."""
    from envs.dispatch import DynamicJobShopEnv
    from policies.rules import RULE_NAMES, make_rule
    from policies.training import mean_tardiness

    answer, problem = read_answer(folder)
    name = str(answer.get("rule", ""))
    rule_hint = text(f"Write one of {', '.join(RULE_NAMES)} after 'rule:' in answer.yaml.",
                     f"请在 answer.yaml 的 'rule:' 后写上 {', '.join(RULE_NAMES)} 之一。")
    if problem is not None or name.lower() not in RULE_NAMES:
        why = problem or f"rule: {name!r} is not a dispatching rule.{suggest(name.lower(), list(RULE_NAMES))}"
        return [Finding("rule", False, text(why, why), rule_hint),
                *not_checked(("target", "reported"), text("no valid rule", "规则无效"), rule_hint)]
    findings = [Finding("rule", True, text(f"rule {name} is a known dispatching rule.", f"规则 {name} 有效。"))]
    measured = mean_tardiness(DynamicJobShopEnv(), make_rule(name), HELD_OUT_SEEDS)
    if measured <= TARGET_TARDINESS:
        findings.append(Finding("target", True, text(
            f"Right: {name} gives a mean total tardiness of {measured:.0f} min on {len(HELD_OUT_SEEDS)} held-out "
            f"episodes, within the target of {TARGET_TARDINESS:.0f} min.",
            f"正确：{name} 在 {len(HELD_OUT_SEEDS)} 个保留回合上的平均总拖期为 {measured:.0f} 分钟，"
            f"达到不超过 {TARGET_TARDINESS:.0f} 分钟的目标。")))
    else:
        findings.append(Finding("target", False, text(
            f"{name} gives a mean total tardiness of {measured:.0f} min on {len(HELD_OUT_SEEDS)} held-out episodes; "
            f"the target is at most {TARGET_TARDINESS:.0f} min.",
            f"{name} 在 {len(HELD_OUT_SEEDS)} 个保留回合上的平均总拖期为 {measured:.0f} 分钟；目标为不超过 "
            f"{TARGET_TARDINESS:.0f} 分钟。"), text(
            "Tardiness depends on due dates: try the rules that look at them (edd, cr, atc) and compare.",
            "拖期取决于交期：试试考虑交期的规则（edd、cr、atc）并比较结果。")))
    reported = answer.get("rule_tardiness")
    if as_number(reported) is not None and abs(reported - measured) <= REPORT_TOLERANCE * measured:
        findings.append(Finding("reported", True, text(
            f"Right: you measured {reported:g} min for {name} on the held-out seeds.",
            f"正确：你测得 {name} 在保留种子上的平均总拖期为 {reported:g} 分钟。")))
    else:
        findings.append(Finding("reported", False, text(
            f"rule_tardiness {reported!r} is not the mean total tardiness of {name} on seeds "
            f"{HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1} (within {REPORT_TOLERANCE:.0%}).",
            f"rule_tardiness {reported!r} 不是 {name} 在种子 {HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1} "
            f"上的平均总拖期（允许误差 {REPORT_TOLERANCE:.0%}）。"), text(
            f"Run the last cell of lab3.ipynb (seeds {HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1}) and copy "
            "the number for your rule.",
            f"运行 lab3.ipynb 的最后一个单元（种子 {HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1}），抄下你所选规则的数值。")))
    return findings
