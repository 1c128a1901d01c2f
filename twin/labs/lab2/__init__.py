"""Lab 2: variability, buffers and Little's law.

Checked: the student's ``line.yaml`` changes only the three budgeted buffers, within the budget; the
engine, run on that line with the lab's seeds, reaches the target throughput; the throughput and lead
time the student reports are the engine's; and the WIP the student computes with Little's law
(WIP = throughput x lead time) is the engine's own time-average WIP.
"""

from __future__ import annotations

from pathlib import Path

from twin.config import ScenarioError, load_scenario
from twin.config.scenario import Scenario
from twin.labs import Finding, as_number, changed_paths, not_checked, read_answer, text

TITLE = text("Variability, buffers and Little's law", "波动、缓冲与利特尔法则")
MINUTES = 40
"""Student time on a laptop (reading, a few runs, hand computation)."""

BUDGETED = ("insert", "test", "pack")
"""Stations whose buffer the student sets."""
BUFFER_BUDGET = 6
"""Buffer places the student may spread over :data:`BUDGETED` (parts)."""
TARGET_THROUGHPUT = 36.0
"""Mean good motors per hour the allocation must reach (the starter's 0, 0, 6 makes 30.6)."""
REPORT_TOLERANCE = 0.02
"""Relative difference allowed between a reported number and the engine's."""
STARTER = Path(__file__).parent / "line.yaml"
"""The line as shipped: its run block (seeds, lengths) is the check's, and only the budgeted buffers may differ."""


def with_buffers(scenario: Scenario, buffers: dict[str, int]) -> Scenario:
    """``scenario`` with the buffers (parts) of the named stations replaced."""
    stations = [s.model_copy(update={"buffer": buffers[s.name]}) if s.name in buffers else s for s in scenario.stations]
    return scenario.model_copy(update={"stations": stations})


def buffer_problems(scenario: Scenario, starter: Scenario) -> list[str]:
    """Why ``scenario`` is not the starter line with the budgeted buffers set within the budget (empty if it is)."""
    allowed = {f"stations.{name}.buffer" for name in BUDGETED}
    given = scenario.model_dump(mode="json", exclude={"run"})
    other = [path for path in changed_paths(given, starter.model_dump(mode="json", exclude={"run"}))
             if path not in allowed]
    if other:
        return [f"only the buffers of {', '.join(BUDGETED)} may change, not {', '.join(other)}"]
    buffers = {name: scenario.station(name).buffer for name in BUDGETED}
    if any(b is None for b in buffers.values()):
        return [f"buffers {buffers}: every budgeted buffer needs a number (null is unlimited)"]
    if sum(buffers.values()) > BUFFER_BUDGET:
        return [f"buffers {', '.join(f'{k} {v}' for k, v in buffers.items())} use {sum(buffers.values())} places; "
                f"the budget is {BUFFER_BUDGET}"]
    return []


def check(folder: Path) -> list[Finding]:
    """Check lab 2 in ``folder``: ``line.yaml`` (the buffers) and ``answer.yaml`` (the measured KPIs)."""
    from twin.experiment import run_experiment

    line_hint = text(f"Change only the buffer: numbers of {', '.join(BUDGETED)} (whole parts, at most "
                     f"{BUFFER_BUDGET} together); `twin validate line.yaml` names any error.",
                     f"只修改 {', '.join(BUDGETED)} 的 buffer 数值（整数，合计不超过 {BUFFER_BUDGET}）；"
                     "`twin validate line.yaml` 会指出错误。")
    try:
        scenario = load_scenario(folder / "line.yaml").scenario
    except (ScenarioError, OSError) as exc:
        why = "; ".join(map(str, exc.problems)) if isinstance(exc, ScenarioError) else str(exc)
        return [Finding("buffers", False, text(f"line.yaml does not load: {why}", f"line.yaml 无法加载：{why}"),
                        line_hint),
                *not_checked(("throughput", "measured", "littles_law"), text("line.yaml does not load",
                                                                            "line.yaml 无法加载"), line_hint)]
    starter = load_scenario(STARTER).scenario
    problems = buffer_problems(scenario, starter)
    allocation = ", ".join(f"{name} {scenario.station(name).buffer}" for name in BUDGETED)
    findings = [Finding("buffers", not problems, text(f"Buffers {allocation}: within the budget of {BUFFER_BUDGET}.",
                                                      f"缓冲 {allocation}：未超出 {BUFFER_BUDGET} 个的预算。")
                        if not problems else text("; ".join(problems), "；".join(problems)), line_hint)]
    line = run_experiment(scenario.model_copy(update={"run": starter.run})).line()
    throughput, lead_time, wip = line["throughput_per_hour"], line["lead_time_mean"], line["wip_mean"]
    reached = not problems and throughput.mean >= TARGET_THROUGHPUT
    findings.append(Finding("throughput", reached, text(
        f"Throughput {throughput.mean:.2f} motors/h (95% CI {throughput.ci_low:.2f} to {throughput.ci_high:.2f}, "
        f"{throughput.n} replications); the target is at least {TARGET_THROUGHPUT:g}"
        + ("." if reached else ", with the buffers allowed." if problems else ": too low."),
        f"产出 {throughput.mean:.2f} 台/小时（95% 置信区间 {throughput.ci_low:.2f} 至 {throughput.ci_high:.2f}，"
        f"{throughput.n} 次重复）；目标为不低于 {TARGET_THROUGHPUT:g}"
        + ("。" if reached else "，且缓冲须合规。" if problems else "：偏低。")),
        text("With random times a station with no buffer after it is blocked, and one with none before it starves. "
             "Spread the places so that no station, least of all the slow test, is cut off from its neighbours.",
             "加工时间随机时，下游没有缓冲的工位会被阻塞，上游没有缓冲的工位会断料。请分散布置缓冲位，"
             "不要让任何工位（尤其是最慢的 test）与相邻工位隔断。")))
    answer, problem = read_answer(folder)
    given = {key: as_number(answer.get(key)) for key in ("throughput_per_hour", "lead_time_min", "wip")}
    measured_ok = all(given[key] is not None and abs(given[key] - truth.mean) <= REPORT_TOLERANCE * truth.mean
                      for key, truth in (("throughput_per_hour", throughput), ("lead_time_min", lead_time)))
    read = f"throughput_per_hour {answer.get('throughput_per_hour')!r}, lead_time_min {answer.get('lead_time_min')!r}"
    findings.append(Finding("measured", measured_ok, text(
        f"Right: {read} are the engine's for your line." if measured_ok else
        f"{read}: not the engine's throughput and mean lead time of your line (within {REPORT_TOLERANCE:.0%})"
        f"{'; ' + problem if problem else ''}.",
        f"正确：{read} 与仿真引擎对你的产线的结果一致。" if measured_ok else
        f"{read}：不是仿真引擎对你的产线得出的产出和平均交付周期（允许误差 {REPORT_TOLERANCE:.0%}）"
        f"{'；' + problem if problem else ''}。"), text(
        "Run `twin run line.yaml` on your final line and copy the 'Throughput' (per hour) and 'Lead time (mean)' "
        "(minutes) rows.",
        "对最终的产线运行 `twin run line.yaml`，抄下 'Throughput'（每小时）和 'Lead time (mean)'（分钟）两行。")))
    little_ok = given["wip"] is not None and abs(given["wip"] - wip.mean) <= REPORT_TOLERANCE * wip.mean
    findings.append(Finding("littles_law", little_ok, text(
        f"Right: wip {given['wip']:g} motors; the engine measured a time-average WIP of {wip.mean:.2f}."
        if little_ok else f"wip {answer.get('wip')!r} is not the WIP of your line (within {REPORT_TOLERANCE:.0%}).",
        f"正确：wip {given['wip']:g} 台；仿真引擎测得时间平均在制品为 {wip.mean:.2f}。"
        if little_ok else f"wip {answer.get('wip')!r} 不是你的产线的在制品数（允许误差 {REPORT_TOLERANCE:.0%}）。"), text(
        "Little's law: WIP = throughput x lead time, in the same time unit: motors per hour / 60 x minutes.",
        "利特尔法则：在制品 = 产出率 × 交付周期，时间单位要一致：每小时台数 / 60 × 分钟数。")))
    return findings
