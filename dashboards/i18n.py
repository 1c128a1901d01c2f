"""Every word the dashboard shows, in English and Chinese, and how KPI values are written with their units.

KPI names follow the terms of ISO 22400-2 and their usual Chinese renderings in the national adoption and
MIIT (工业和信息化部) smart-manufacturing documents: 设备综合效率 (OEE), 可用率, 性能效率, 质量合格率,
产出, 在制品, 交付周期 / 生产周期, 单位产品能耗, 准时交付率, ... Tier names come from the tier presets
(``twin/tiers/*.yaml``: 基础级, 先进级, 卓越级, 领航级).

Fractions are shown as percentages (their differences in percentage points); every other value carries
its unit (minutes, parts/hour, kWh per part, CNY, ...).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Optional

from twin.config.tiers import AS_IS, TIERS, load_preset
from twin.console import fmt_estimate

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"

TEXT: dict[str, tuple[str, str]] = {
    # shell
    "nav_maturity": ("Maturity comparison", "成熟度对比"),
    "nav_line": ("Line", "产线"),
    "nav_whatif": ("What-if", "假设分析"),
    "nav_runs": ("Runs", "运行记录"),
    "nav_enterprise": ("Enterprise diagnosis", "企业诊断"),
    # enterprise diagnosis page
    "enterprise_title": ("Enterprise diagnosis", "企业智能制造诊断"),
    "enterprise": ("Enterprise", "企业"),
    "no_enterprises": ("The store {path} has no enterprise yet: run `twin diagnose assess PROFILE.yaml` first.",
                       "结果库 {path} 中还没有企业：请先运行 `twin diagnose assess 企业画像.yaml`。"),
    "enterprise_score": ("Overall score S = {score:.2f}: maturity level {level} (GB/T 39116); "
                         "MIIT tier it may apply for: {tier}.",
                         "综合得分 S = {score:.2f}：成熟度等级 {level}（GB/T 39116）；可申报智能工厂层级：{tier}。"),
    "enterprise_none": ("none yet", "暂不满足"),
    "enterprise_blockers": ("What blocks {tier}", "申报{tier}的差距"),
    "enterprise_roadmap": ("Simulated roadmap (line {line}, {reps} replications, against today)",
                           "升级路线仿真（产线 {line}，{reps} 次重复实验，相对现状）"),
    "enterprise_no_roadmap": ("No roadmap kept yet: run `twin diagnose report PROFILE.yaml --out report.pdf`.",
                              "尚无路线图：请运行 `twin diagnose report 企业画像.yaml --out report.pdf`。"),
    "col_upgrade": ("Upgrade", "升级项"),
    "col_investment": ("Investment after vouchers (CNY)", "扣除补贴券后投资（元）"),
    "col_payback": ("Payback (years)", "回收期（年）"),
    "col_gain": ("Throughput gain (parts/h)", "产出增加（件/小时）"),
    "never_pays_back": ("does not pay back", "无法回收"),
    # common
    "run": ("Run", "运行"),
    "level": ("Level", "等级"),
    "replication": ("Replication", "重复实验"),
    "kpi": ("KPI", "指标"),
    "unit": ("Unit", "单位"),
    "station": ("Station", "工位"),
    "no_store": ("No results store at {path}: run `twin compare SCENARIO` or `twin run SCENARIO` first, "
                 "or start the dashboard with --store PATH.",
                 "结果库 {path} 不存在：请先运行 `twin compare 场景文件` 或 `twin run 场景文件`，"
                 "或用 --store 指定结果库。"),
    "no_runs": ("The store {path} has no runs yet: run `twin compare SCENARIO` first.",
                "结果库 {path} 中还没有运行记录：请先运行 `twin compare 场景文件`。"),
    "no_comparisons": ("No comparison in the store yet: run `twin compare SCENARIO` (the runs page lists "
                       "the plain runs).",
                       "结果库中还没有成熟度对比：请运行 `twin compare 场景文件`（单次运行见“运行记录”页）。"),
    "error": ("Error", "错误"),
    "run_option": ("#{id} {scenario} · {kind} · {levels} · {done}/{planned} reps · {status}",
                   "#{id} {scenario} · {kind} · {levels} · {done}/{planned} 次 · {status}"),
    "run_meta": ("{scenario} — run {id}, {kind}, seed {seed}, {reps} replications per level, status {status}, "
                 "YueTwin {version}",
                 "{scenario} — 运行 {id}，{kind}，随机种子 {seed}，每级 {reps} 次重复实验，状态 {status}，"
                 "YueTwin {version}"),
    "mean_ci": ("mean ± 95 % CI half-width over replications", "重复实验均值 ± 95% 置信区间半宽"),
    # maturity page
    "maturity_title": ("Maturity comparison", "智能工厂成熟度对比"),
    "kpi_table_title": ("KPIs per tier", "各等级关键绩效指标"),
    "radar_title": ("Normalised KPIs (1 = best tier on that KPI)", "归一化指标（1 = 该指标最优的等级）"),
    "deltas_title": ("Paired change against {base} (common random numbers, 95 % CI)",
                     "相对 {base} 的配对差值（公共随机数，95% 置信区间）"),
    "waterfall_title": ("Change attributed to the levers (Shapley values)", "变化按杠杆归因（Shapley 值）"),
    "waterfall_step": ("Step", "升级步骤"),
    "waterfall_kpi": ("KPI", "指标"),
    "waterfall_total": ("Total", "合计"),
    "waterfall_note": ("{method} Shapley values over {reps} replication(s) per lever combination",
                       "{method} Shapley 值，每种杠杆组合 {reps} 次重复实验"),
    "method_exact": ("Exact", "精确"),
    "method_sampled": ("Sampled", "抽样"),
    "no_attribution": ("This comparison was kept without its lever attribution (compare with "
                       "--attribution-reps 1 or more).",
                       "该对比未保存杠杆归因（请以 --attribution-reps 1 或以上重新对比）。"),
    "no_levers_differ": ("No lever changes what this line does between these levels.",
                         "这两个等级之间没有对本产线起作用的杠杆差异。"),
    "economics_title": ("Cost per unit and payback", "单位成本与投资回收期"),
    "no_costs": ("No lever of these tiers carries a cost: give investment and running_cost_per_year in the "
                 "presets or the scenario's tiers section.",
                 "这些等级的杠杆均未给出成本：请在等级预设或场景的 tiers 中填写 investment 与 "
                 "running_cost_per_year。"),
    "open_line": ("Open the line at this level", "查看该等级的产线"),
    # line page
    "line_title": ("Line", "产线"),
    "robot_cells": ("Robot cells (PyBullet physics)", "机器人单元（PyBullet 物理仿真）"),
    "robot_cell_caption": ("{station}: cycle time {seconds} s per part, computed from the robot's joint "
                           "limits and the cell layout (pick green, place blue, waypoints orange).",
                           "{station}：每件节拍 {seconds} 秒，由机器人关节限制与单元布局计算"
                           "（绿色为抓取点，蓝色为放置点，橙色为途经点）。"),
    "robot_cell_problem": ("{station}: the cell cannot do its tasks: {problem}",
                           "{station}：该单元无法完成任务：{problem}"),
    "flow_title": ("Material flow graph: utilisation per station, bottleneck marked",
                   "物流图：各工位利用率，瓶颈已标出"),
    "bottleneck": ("bottleneck", "瓶颈"),
    "bottleneck_share": ("bottleneck in {share} of replications", "{share} 的重复实验中为瓶颈"),
    "buffer": ("buffer", "缓冲"),
    "unlimited": ("∞", "∞"),
    "servers": ("servers", "台"),
    "orders_node": ("orders", "订单投放"),
    "finished_node": ("finished goods", "成品"),
    "scrap_node": ("scrap", "报废"),
    "edge_conveyor": ("conveyor", "输送线"),
    "edge_agv": ("AGV", "AGV"),
    "edge_cart": ("cart", "人工推车"),
    "edge_rework": ("rework", "返工"),
    "edge_direct": ("direct", "直接传递"),
    "states_title": ("Time per state and station (share of the window)", "各工位状态时间占比"),
    "share_of_time": ("share of time (%)", "时间占比 (%)"),
    "sankey_title": ("Material flow in replication {rep} (parts in the window)",
                     "第 {rep} 次重复实验的物料流（观察期内件数）"),
    "series_title": ("WIP, throughput and power over time (replication {rep}, {bin} bins)",
                     "在制品、产出与功率随时间变化（第 {rep} 次重复实验，每 {bin} 一格）"),
    "time_hours": ("time since the start of the window (h)", "观察期开始后的时间（小时）"),
    "gantt_title": ("Station states, replication {rep}, hours {start}–{end} of the window",
                    "工位状态甘特图，第 {rep} 次重复实验，观察期第 {start}–{end} 小时"),
    "gantt_aggregated": (" (each bar: the state that took most of a {slot} slot)",
                         "（每段为 {slot} 内占时最多的状态）"),
    "gantt_window": ("Gantt window (hours of the observation window)", "甘特图时间窗（观察期内小时）"),
    "events_recorded": ("Event log: {path} ({rows} rows, aggregated on the server before plotting).",
                        "事件日志：{path}（{rows} 行，绘图前已在服务器端汇总）。"),
    "recording": ("Loading the event log (the first time, the replication is simulated again with its log)…",
                  "正在读取事件日志（首次查看时会重新仿真该重复实验并记录日志）…"),
    "minutes_short": ("{n:g} min", "{n:g} 分钟"),
    "hours_short": ("{n:g} h", "{n:g} 小时"),
    "days_short": ("{n:g} d", "{n:g} 天"),
    # what-if page
    "whatif_title": ("What-if", "假设分析"),
    "whatif_intro": ("Change one or more parameters of a stored run's level and simulate it with the same seed "
                     "and replications (common random numbers): the difference to the base is paired, "
                     "replication by replication.",
                     "修改已存运行某一等级的参数，用相同随机种子与重复实验编号重新仿真（公共随机数），"
                     "与基准逐次配对比较。"),
    "whatif_base": ("Base run", "基准运行"),
    "whatif_level": ("Base level", "基准等级"),
    "whatif_parameter": ("Parameter", "参数"),
    "whatif_value": ("New value", "新值"),
    "whatif_current": ("current value: {value}", "当前值：{value}"),
    "whatif_more": ("More changes, one PATH=VALUE per line (e.g. stations.oven.servers=2)",
                    "更多修改，每行一个 路径=值（例如 stations.oven.servers=2）"),
    "whatif_reps": ("Replications", "重复实验次数"),
    "whatif_run": ("Run what-if", "运行假设分析"),
    "whatif_nothing": ("Choose a parameter and a value, or write PATH=VALUE changes.",
                       "请选择参数并填写新值，或写入 路径=值 形式的修改。"),
    "whatif_invalid": ("The changes are not valid:", "修改无效："),
    "whatif_started": ("Running what-if {id}: {done} of {planned} replications",
                       "正在运行假设分析 {id}：已完成 {done}/{planned} 次重复实验"),
    "whatif_failed": ("What-if {id} {status} after {done} of {planned} replications.",
                      "假设分析 {id} 在完成 {done}/{planned} 次重复实验后{status}。"),
    "whatif_result": ("What-if {id}: {changes}", "假设分析 {id}：{changes}"),
    "whatif_base_col": ("Base: {level}", "基准：{level}"),
    "whatif_new_col": ("What-if", "假设"),
    "whatif_delta_col": ("Difference (95 % CI)", "差值（95% 置信区间）"),
    "whatif_earlier": ("Earlier what-ifs of this run", "该运行以往的假设分析"),
    "whatif_reps_range": ("replications: a whole number from 1 to {max} (the base level has {max})",
                          "重复实验次数：1 到 {max} 之间的整数（基准等级共 {max} 次）"),
    # runs page
    "runs_title": ("Stored runs", "已存运行记录"),
    "col_id": ("ID", "编号"),
    "col_kind": ("Kind", "类型"),
    "col_scenario": ("Scenario", "场景"),
    "col_levels": ("Levels", "等级"),
    "col_reps": ("Replications", "重复实验"),
    "col_seed": ("Seed", "随机种子"),
    "col_status": ("Status", "状态"),
    "col_started": ("Started (UTC)", "开始时间 (UTC)"),
    "col_open": ("Open", "打开"),
    "open": ("open", "打开"),
    "download_run": ("Run to download", "下载的运行"),
    "download_csv": ("KPIs (CSV)", "指标 (CSV)"),
    "download_png": ("Figures (PNG)", "图表 (PNG)"),
    "png_failed": ("PNG export failed: {error}", "PNG 导出失败：{error}"),
    # economics rows
    "econ_investment": ("Investment", "投资"),
    "econ_running_cost_per_year": ("Running cost per year", "年运行成本"),
    "econ_good_units_per_year": ("Good units per year", "年合格产量"),
    "econ_cost_per_unit": ("Cost per unit (levers + energy)", "单位成本（杠杆 + 能源）"),
    "econ_payback_years": ("Payback against the previous level", "相对上一级的投资回收期"),
    # series
    "series_wip": ("WIP", "在制品"),
    "series_throughput": ("Throughput", "产出"),
    "series_power": ("Power", "功率"),
}

KPI_NAMES: dict[str, tuple[str, str]] = {
    "throughput_per_hour": ("Throughput", "产出（吞吐量）"),
    "exit_rate_per_hour": ("Exit rate (good and scrapped)", "出线率（含报废）"),
    "wip_mean": ("Work in process (WIP)", "在制品（平均）"),
    "lead_time_mean": ("Lead time (mean)", "交付周期（平均）"),
    "lead_time_p95": ("Lead time (95th percentile)", "交付周期（P95）"),
    "flow_time_mean": ("Flow time (release to exit)", "生产周期（投产至出线）"),
    "availability": ("Availability", "可用率"),
    "effectiveness": ("Effectiveness (performance)", "性能效率"),
    "quality_ratio": ("Quality ratio", "质量合格率"),
    "oee": ("OEE", "设备综合效率（OEE）"),
    "first_pass_yield": ("First pass yield", "一次合格率（直通率）"),
    "scrap_ratio": ("Scrap ratio", "报废率"),
    "rework_ratio": ("Rework ratio", "返工率"),
    "defect_escape_rate": ("Defects escaping to customers", "缺陷逃逸率"),
    "energy_kwh": ("Energy", "能耗"),
    "energy_kwh_per_good_unit": ("Energy per good unit", "单位产品能耗"),
    "energy_cost_per_good_unit": ("Energy cost per good unit", "单位产品能源成本"),
    "on_time_rate": ("On-time delivery", "准时交付率"),
    "tardiness_mean": ("Mean tardiness", "平均拖期"),
    "orders_completed": ("Orders completed", "完成订单数"),
    "rejection_rate": ("Rejected arrivals", "到达拒收率"),
    "agv_utilization": ("AGV utilisation", "AGV 利用率"),
    # station KPIs (keys shared with the line mean the same at a station)
    "nee": ("NEE (net equipment effectiveness)", "设备净效率（NEE）"),
    "utilization": ("Utilisation", "设备利用率"),
    "utilisation_efficiency": ("Utilisation efficiency", "利用效率"),
    "allocation_efficiency": ("Allocation efficiency", "分配效率"),
    "technical_efficiency": ("Technical efficiency", "技术效率"),
    "setup_ratio": ("Setup ratio", "换型时间比"),
    "mtbf": ("MTBF", "平均故障间隔时间（MTBF）"),
    "mttr": ("MTTR", "平均修复时间（MTTR）"),
    "failures": ("Failures", "故障次数"),
    "queue_time_mean": ("Queue time (mean)", "平均排队时间"),
    "queue_length_mean": ("Queue length (mean)", "平均队列长度"),
    "energy_cost": ("Energy cost", "能源成本"),
    "active_period_mean": ("Active period (mean)", "平均活动期"),
}
STATION_THROUGHPUT = ("Parts processed", "加工量")
"""A station's ``throughput_per_hour`` counts every part processed there, good or not."""

KPI_UNITS: dict[str, str] = {
    "throughput_per_hour": "per_hour", "exit_rate_per_hour": "per_hour", "wip_mean": "parts",
    "lead_time_mean": "minutes", "lead_time_p95": "minutes", "flow_time_mean": "minutes",
    "availability": "fraction", "effectiveness": "fraction", "quality_ratio": "fraction", "oee": "fraction",
    "first_pass_yield": "fraction", "scrap_ratio": "fraction", "rework_ratio": "fraction",
    "defect_escape_rate": "fraction", "energy_kwh": "kwh", "energy_kwh_per_good_unit": "kwh_per_part",
    "energy_cost_per_good_unit": "cny_per_part", "on_time_rate": "fraction", "tardiness_mean": "minutes",
    "orders_completed": "orders", "rejection_rate": "fraction", "agv_utilization": "fraction",
    "nee": "fraction", "utilization": "fraction", "utilisation_efficiency": "fraction",
    "allocation_efficiency": "fraction", "technical_efficiency": "fraction", "setup_ratio": "fraction",
    "mtbf": "minutes", "mttr": "minutes", "failures": "count", "queue_time_mean": "minutes",
    "queue_length_mean": "parts", "energy_cost": "cny", "active_period_mean": "minutes",
    "investment": "cny", "running_cost_per_year": "cny_per_year", "good_units_per_year": "parts_per_year",
    "cost_per_unit": "cny_per_part", "payback_years": "years",
}

UNITS: dict[str, tuple[str, str]] = {
    "per_hour": ("parts/h", "件/小时"),
    "parts": ("parts", "件"),
    "minutes": ("min", "分钟"),
    "fraction": ("%", "%"),
    "points": ("pp", "个百分点"),
    "kwh": ("kWh", "千瓦时"),
    "kwh_per_part": ("kWh/part", "千瓦时/件"),
    "cny_per_part": ("CNY/part", "元/件"),
    "cny": ("CNY", "元"),
    "cny_per_year": ("CNY/year", "元/年"),
    "parts_per_year": ("parts/year", "件/年"),
    "orders": ("orders", "单"),
    "count": ("events", "次"),
    "years": ("years", "年"),
    "kw": ("kW", "千瓦"),
}

TABLE_KPIS = ("throughput_per_hour", "wip_mean", "lead_time_mean", "lead_time_p95", "oee", "availability",
              "effectiveness", "quality_ratio", "first_pass_yield", "scrap_ratio", "defect_escape_rate",
              "energy_kwh_per_good_unit", "energy_cost_per_good_unit", "on_time_rate", "tardiness_mean",
              "agv_utilization")
"""Line KPIs in the dashboard's KPI tables, in this order (those undefined everywhere are left out)."""

LOWER_IS_BETTER = frozenset({
    "wip_mean", "lead_time_mean", "lead_time_p95", "flow_time_mean", "scrap_ratio", "rework_ratio",
    "defect_escape_rate", "energy_kwh", "energy_kwh_per_good_unit", "energy_cost_per_good_unit",
    "tardiness_mean", "rejection_rate", "queue_time_mean", "queue_length_mean", "mttr", "failures",
    "setup_ratio", "energy_cost", "cost_per_unit", "payback_years", "investment", "running_cost_per_year",
})
"""KPIs where less is better (for the radar and the colour of differences); the others: more is better."""

STATE_NAMES: dict[str, tuple[str, str]] = {
    "busy": ("busy", "加工"),
    "setup": ("setup", "换型"),
    "idle": ("starved (idle)", "待料（空闲）"),
    "standby": ("standby (switched off)", "待机（节能关机）"),
    "blocked": ("blocked", "堵塞"),
    "down": ("down (failure)", "故障"),
    "maintenance": ("maintenance", "维护保养"),
    "planned_down": ("planned downtime", "计划停机"),
    "off_shift": ("off shift", "非工作时间"),
}

LEVER_NAMES: dict[str, tuple[str, str]] = {
    "scheduling": ("scheduling", "排产调度"),
    "information": ("information latency", "信息时效"),
    "maintenance": ("maintenance", "设备维护"),
    "quality": ("quality inspection", "质量检测"),
    "changeover": ("changeover", "快速换型"),
    "energy": ("energy management", "能源管理"),
    "material_flow": ("material flow", "物料配送"),
}

STATUS_NAMES: dict[str, tuple[str, str]] = {
    "running": ("running", "运行中"),
    "finished": ("finished", "已完成"),
    "interrupted": ("interrupted", "已中断"),
    "failed": ("failed", "失败"),
}

KIND_NAMES: dict[str, tuple[str, str]] = {
    "run": ("run", "单次运行"),
    "compare": ("comparison", "成熟度对比"),
    "what-if": ("what-if", "假设分析"),
}

LEVEL_NAMES = MappingProxyType({AS_IS: ("As is", "现状"),
                                **{tier: (load_preset(tier).label.en, load_preset(tier).label.zh) for tier in TIERS}})
"""Names of the built-in levels: as_is and the tier presets' labels (read once: they are installed files)."""


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "zh" else pair[0]


def language(value: Optional[str]) -> str:
    """``value`` if it is a known language, else the default (a stale browser setting must not break a page)."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str, **values: Any) -> str:
    """The text ``key`` in ``lang``, with ``{name}`` fields filled from ``values``."""
    text = _pick(TEXT[key], lang)
    return text.format(**values) if values else text


def kpi_name(key: str, lang: str, station: bool = False) -> str:
    """A KPI's name (a station's ``throughput_per_hour`` is its parts processed); unknown keys as they are."""
    if station and key == "throughput_per_hour":
        return _pick(STATION_THROUGHPUT, lang)
    return _pick(KPI_NAMES[key], lang) if key in KPI_NAMES else key


def unit_name(unit: str, lang: str) -> str:
    return _pick(UNITS[unit], lang)


def kpi_unit(key: str, lang: str) -> str:
    """The unit a KPI is shown in ('' for a KPI without one)."""
    return unit_name(KPI_UNITS[key], lang) if key in KPI_UNITS else ""


def kpi_label(key: str, lang: str, station: bool = False) -> str:
    """``name (unit)``, the way axis titles and table headers name a KPI."""
    unit = kpi_unit(key, lang)
    return f"{kpi_name(key, lang, station)} ({unit})" if unit else kpi_name(key, lang, station)


def state_name(state: str, lang: str) -> str:
    return _pick(STATE_NAMES[state], lang) if state in STATE_NAMES else state


def lever_name(lever: str, lang: str) -> str:
    return _pick(LEVER_NAMES[lever], lang) if lever in LEVER_NAMES else lever


def status_name(status: str, lang: str) -> str:
    return _pick(STATUS_NAMES[status], lang) if status in STATUS_NAMES else status


def kind_name(kind: str, lang: str) -> str:
    return _pick(KIND_NAMES[kind], lang) if kind in KIND_NAMES else kind


def _preset_label(level: str) -> Optional[tuple[str, str]]:
    """A preset file's (en, zh) label, None when ``level`` names no preset."""
    from twin.config import ScenarioError

    try:
        label = load_preset(level).label
    except ScenarioError:
        return None
    return label.en, label.zh


def level_name(level: str, lang: str) -> str:
    """A level's name: a tier preset's label (基础级, ...), 现状 for as_is, a preset file's label, else the
    level as given."""
    if level in LEVEL_NAMES:
        return _pick(LEVEL_NAMES[level], lang)
    label = _preset_label(level)
    return _pick(label, lang) if label else level


def step_name(step: str, lang: str) -> str:
    """``basic->advanced`` as ``基础级 → 先进级``."""
    a, _, b = step.partition("->")
    return f"{level_name(a, lang)} → {level_name(b, lang)}"


def _scale(key: str) -> float:
    return 100.0 if KPI_UNITS.get(key) == "fraction" else 1.0


def scaled(key: str, estimate: dict[str, Any]) -> dict[str, Any]:
    """An estimate dict (mean, ci_low, ci_high) in the unit the KPI is shown in (fractions as %)."""
    f = _scale(key)
    return {k: (None if estimate.get(k) is None else estimate[k] * f) for k in ("mean", "ci_low", "ci_high")}


def fmt_kpi(key: str, estimate: Optional[dict[str, Any]]) -> str:
    """``mean ± 95 % CI half-width`` in the KPI's display unit (``-`` when undefined)."""
    if not estimate:
        return "-"
    return fmt_estimate(scaled(key, estimate))


def fmt_delta(key: str, estimate: Optional[dict[str, Any]]) -> str:
    """A paired difference, signed: ``+1.2 ± 0.4`` (fractions in percentage points)."""
    text = fmt_kpi(key, estimate)
    return f"+{text}" if estimate and estimate.get("mean") is not None and estimate["mean"] > 0 else text


def delta_unit(key: str, lang: str) -> str:
    """The unit of a difference: percentage points for fractions, else the KPI's unit."""
    return unit_name("points", lang) if KPI_UNITS.get(key) == "fraction" else kpi_unit(key, lang)


def fmt_number(value: Optional[float], digits: int = 2) -> str:
    """A plain number with thousands separators (``-`` when undefined)."""
    return "-" if value is None else f"{value:,.{digits}f}"
