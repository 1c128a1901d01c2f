"""Lab 1: describe a small line in YAML, run it, find the bottleneck.

Checked: the student's ``line.yaml`` is the line of the instructions (stations, servers, routing, mean
times), the station named in ``answer.yaml`` is the engine's own bottleneck of that line, and the
hand-computed utilisation matches arrival rate x mean time / servers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from twin.config import ScenarioError, load_scenario
from twin.config.scenario import Scenario, suggest
from twin.labs import Finding, as_number, not_checked, read_answer, text

TITLE = text("Find the bottleneck of a line", "找出产线瓶颈")
MINUTES = 30
"""Student time on a laptop (reading, editing, running); the computing part is measured in the
instructions."""

REQUIRED_ROUTING = (("cut", 1, 3.0), ("weld", 2, 7.0), ("paint", 1, 4.4), ("pack", 1, 2.5))
"""The line of the instructions: (station, servers, mean processing time in minutes), in routing order."""
UTILIZATION_TOLERANCE = 0.02
"""How far the hand-computed utilisation (a fraction) may be from arrival rate x mean time / servers."""
CHECK_RUN = {"warmup": 1440.0, "length": 20160.0, "replications": 3, "seed": 2026}
"""The engine run of the checker (minutes, replications, root seed), whatever the student's run block says."""


def _line_findings(scenario: Scenario) -> list[str]:
    """Differences between the student's line and the line of the instructions (empty if none)."""
    wrong = []
    names = [s.name for s in scenario.stations]
    for station, servers, _ in REQUIRED_ROUTING:
        if station not in names:
            wrong.append(f"station '{station}' missing.{suggest(station, names)}")
        elif scenario.station(station).servers != servers:
            given = scenario.station(station).servers
            wrong.append(f"stations[{station}].servers is {given}, the table says {servers}")
    routing = scenario.products[0].routing
    steps = [op.station for op in routing]
    wanted = [s for s, _, _ in REQUIRED_ROUTING]
    if steps != wanted:
        wrong.append(f"routing is {' -> '.join(steps)}, the table says {' -> '.join(wanted)}")
    else:
        for op, (station, _, mean) in zip(routing, REQUIRED_ROUTING):
            actual = op.time.mean if op.time is not None else math.nan
            if not math.isclose(actual, mean, rel_tol=0.01):
                wrong.append(f"routing step {station}: mean time {actual:g} min, the table says {mean:g} min")
    return wrong


def _hand_utilization(scenario: Scenario, station: str) -> float:
    """Arrival rate (orders/min) x lot size x mean processing time (min) / servers, before scrap."""
    orders = scenario.orders
    rate = orders.lot_size / orders.arrivals.mean_interarrival
    op = next(op for op in scenario.products[0].routing if op.station == station)
    return rate * op.time.mean / scenario.station(station).servers


def check(folder: Path) -> list[Finding]:
    """Check lab 1 in ``folder``: ``line.yaml`` and ``answer.yaml``."""
    from twin.experiment import run_experiment

    try:
        loaded = load_scenario(folder / "line.yaml")
    except (ScenarioError, OSError) as exc:
        problems = [str(p) for p in exc.problems] if isinstance(exc, ScenarioError) else [str(exc)]
        joined = "; ".join(problems)
        fix = text("Run `twin validate line.yaml` and fix each error it names.",
                   "运行 `twin validate line.yaml`，逐条修正其指出的错误。")
        return [Finding("line", False, text(f"line.yaml does not load: {joined}", f"line.yaml 无法加载：{joined}"),
                        fix),
                *not_checked(("bottleneck", "utilization"), text("line.yaml does not load", "line.yaml 无法加载"),
                             fix)]
    scenario = loaded.scenario
    wrong = _line_findings(scenario)
    findings = [Finding("line", not wrong,
                        text("line.yaml describes the line of the table: cut -> weld (2 servers) -> paint -> pack.",
                             "line.yaml 与表格一致：cut → weld（2 台）→ paint → pack。")
                        if not wrong else text("line.yaml differs from the table: " + "; ".join(wrong),
                                               "line.yaml 与表格不一致：" + "; ".join(wrong)),
                        text("Compare each station and routing step with the table in the instructions.",
                             "请把每个工位和工序与说明中的表格逐一对照。"))]
    run = scenario.run.model_copy(update=CHECK_RUN)
    result = run_experiment(scenario.model_copy(update={"run": run}))
    engine_bottleneck = result.bottleneck()["station"]
    measured = result.stations()[engine_bottleneck]["utilization"].mean
    answer, problem = read_answer(folder)
    named = answer.get("bottleneck")
    names = [s.name for s in scenario.stations]
    if problem is not None or named not in names:
        close = suggest(str(named), names)
        why = text(problem, problem) if problem else text(
            f"bottleneck: {named!r} is not a station of line.yaml.{close}",
            f"bottleneck: {named!r} 不是 line.yaml 中的工位。{close}")
        findings.append(Finding("bottleneck", False, why,
                                text("Write the station name after 'bottleneck:' in answer.yaml.",
                                     "请在 answer.yaml 的 'bottleneck:' 后写上工位名称。")))
    elif named == engine_bottleneck:
        findings.append(Finding("bottleneck", True, text(
            f"Right: {named} is the bottleneck (the engine finds it in {result.bottleneck()['share']:.0%} of runs).",
            f"正确：{named} 是瓶颈（仿真引擎在 {result.bottleneck()['share']:.0%} 的重复运行中判定如此）。")))
    else:
        findings.append(Finding("bottleneck", False, text(
            f"{named} is not the bottleneck: the engine finds another station busier.",
            f"{named} 不是瓶颈：仿真引擎发现另一个工位更忙。"), text(
            "The longest processing time is not always the bottleneck: divide by the number of servers. "
            "Look at the Util column and the 'Bottleneck' row of `twin run line.yaml`.",
            "加工时间最长的工位不一定是瓶颈：要除以并行机器数。请看 `twin run line.yaml` 输出中的 Util 列和 "
            "'Bottleneck' 行。")))
    findings.append(_utilization_finding(scenario, engine_bottleneck, measured, answer))
    return findings


def _utilization_finding(scenario: Scenario, bottleneck: str, measured: float,
                         answer: dict[str, Any]) -> Finding:
    hint = text(f"Utilisation = arrival rate x mean time / servers, e.g. 1/5 per min x 4.0 min / 1 = 0.80. "
                f"Compute it for {bottleneck} by hand.",
                f"利用率 = 到达率 × 平均加工时间 / 并行机器数，例如 每分钟 1/5 × 4.0 分钟 / 1 = 0.80。"
                f"请手工计算 {bottleneck} 的利用率。")
    value = as_number(answer.get("bottleneck_utilization"))
    if value is None or not 0 <= value <= 1:
        return Finding("utilization", False, text(
            f"bottleneck_utilization: {answer.get('bottleneck_utilization')!r} is not a fraction between 0 and 1.",
            f"bottleneck_utilization: {answer.get('bottleneck_utilization')!r} 不是 0 到 1 之间的小数。"), hint)
    truth = _hand_utilization(scenario, bottleneck)
    if abs(value - truth) <= UTILIZATION_TOLERANCE:
        return Finding("utilization", True, text(
            f"Right: {bottleneck} utilisation {truth:.2f} by hand; the simulation measured {measured:.2f} "
            "(random orders make it differ a little).",
            f"正确：{bottleneck} 的手算利用率为 {truth:.2f}；仿真测得 {measured:.2f}（订单随机到达，略有差异）。"))
    return Finding("utilization", False, text(
        f"bottleneck_utilization {value:g} is more than {UTILIZATION_TOLERANCE} away from the bottleneck's "
        "utilisation computed by hand.",
        f"bottleneck_utilization {value:g} 与瓶颈工位的手算利用率相差超过 {UTILIZATION_TOLERANCE}。"), hint)
