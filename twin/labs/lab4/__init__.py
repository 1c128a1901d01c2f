"""Lab 4: maturity tiers, the attribution of a step to its levers, and payback.

Checked against the comparison itself (``twin.compare.run_comparison`` of the lab's line, basic against
advanced, the seeds of ``line.yaml``): the step's payback the student reads is the comparison's, and
the lever the student picks is the one whose own investment pays back soonest from its attributed
throughput gain (its Shapley share) at the line's margin, less its running cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from twin.config.scenario import suggest
from twin.labs import Finding, as_number, read_answer, text

if TYPE_CHECKING:
    from twin.compare import ComparisonResult

TITLE = text("Maturity tiers: which upgrade pays back first", "成熟度等级：哪项升级最先回本")
MINUTES = 40
"""Student time on a laptop (reading, one comparison, reading the tables, a hand computation)."""

LEVELS = ("basic", "advanced")
"""The tiers compared: the step from the first to the second."""
LINE = Path(__file__).parent / "line.yaml"
"""The lab's line (run block: replications and seed of the comparison)."""
TOLERANCE = 0.05
"""Relative difference allowed between a reported payback and the comparison's (or 0.02 years)."""


def compare_tiers() -> "ComparisonResult":
    """The comparison of the lab: ``twin compare line.yaml --levels basic,advanced`` (replications and
    seed from the line's run block, 3 replications per lever combination for the attribution)."""
    from twin.compare import run_comparison
    from twin.config import load_scenario

    scenario = load_scenario(LINE).scenario
    return run_comparison(scenario, list(LEVELS), scenario.run.replications, scenario.run.seed)


def _close(reported: Optional[float], truth: Optional[float]) -> bool:
    return reported is not None and truth is not None and abs(reported - truth) <= max(TOLERANCE * truth, 0.02)


def check(folder: Path) -> list[Finding]:
    """Check lab 4 in ``folder``: ``answer.yaml`` with ``step_payback_years``, ``best_lever`` and
    ``best_lever_payback_years``."""
    result = compare_tiers()
    answer, problem = read_answer(folder)
    step = result.economics(LEVELS[1])["payback_years"]
    reported = as_number(answer.get("step_payback_years"))
    where = text(f"{'; ' + problem if problem else ''}", f"{'；' + problem if problem else ''}")
    findings = [Finding("step_payback", _close(reported, step), text(
        f"Right: the step {LEVELS[0]} -> {LEVELS[1]} pays back in {step:.2f} years." if _close(reported, step) else
        f"step_payback_years {answer.get('step_payback_years')!r} is not the comparison's payback of "
        f"{LEVELS[1]}{where['en']}.",
        f"正确：从 {LEVELS[0]} 升到 {LEVELS[1]} 的投资回收期为 {step:.2f} 年。" if _close(reported, step) else
        f"step_payback_years {answer.get('step_payback_years')!r} 不是比较结果中 {LEVELS[1]} 的投资回收期{where['zh']}。"),
        text("Read the 'Payback vs previous (years)' row of `twin compare line.yaml --levels basic,advanced`, "
             "column Advanced.",
             "在 `twin compare line.yaml --levels basic,advanced` 的 'Payback vs previous (years)' 行读取 Advanced 列。"))]
    levers = list(result.attribution[f"{LEVELS[0]}->{LEVELS[1]}"]["levers"])
    paybacks = {lever: result.lever_payback(f"{LEVELS[0]}->{LEVELS[1]}", lever) for lever in levers}
    best = min((lever for lever in levers if paybacks[lever] is not None), key=lambda lever: paybacks[lever])
    named = str(answer.get("best_lever", ""))
    lever_hint = text(
        "For each lever of the step: its throughput share (parts/h) x 168 h x 50 weeks x the margin per valve = "
        "gain per year; less its extra running cost; its extra investment / that = payback. The costs are "
        "in the table of the instructions.",
        "对该步的每个杠杆：产出份额（件/小时）× 168 小时 × 50 周 × 每件边际利润 = 年收益；减去新增运行成本；"
        "新增投资 ÷ 该值 = 投资回收期。成本见说明中的表格。")
    if named == best:
        findings.append(Finding("best_lever", True, text(
            f"Right: {best} pays back first, in {paybacks[best]:.2f} years, against {step:.2f} for the whole tier.",
            f"正确：{best} 最先回本，只需 {paybacks[best]:.2f} 年，而整个等级需要 {step:.2f} 年。")))
    else:
        why = (f"best_lever: {named!r} is not a lever of the step ({', '.join(levers)}).{suggest(named, levers)}"
               if named not in levers else f"{named} is not the lever that pays back first.")
        why_zh = (f"best_lever: {named!r} 不是该步的杠杆（{', '.join(levers)}）。{suggest(named, levers)}"
                  if named not in levers else f"{named} 不是最先回本的杠杆。")
        findings.append(Finding("best_lever", False, text(why, why_zh), lever_hint))
    truth = paybacks.get(named) if named in levers else None
    given = as_number(answer.get("best_lever_payback_years"))
    right = named == best and _close(given, truth)
    findings.append(Finding("lever_payback", right, text(
        f"Right: {given:g} years." if right else
        f"best_lever_payback_years {answer.get('best_lever_payback_years')!r} is not the payback of the best "
        f"lever (within {TOLERANCE:.0%}){where['en']}.",
        f"正确：{given:g} 年。" if right else
        f"best_lever_payback_years {answer.get('best_lever_payback_years')!r} 不是最佳杠杆的投资回收期"
        f"（允许误差 {TOLERANCE:.0%}）{where['zh']}。"), lever_hint))
    return findings

