"""Maturity comparison page: KPIs per tier with 95 % confidence intervals, a radar of normalised KPIs,
the paired differences to the baseline, the lever attribution of a chosen step as a waterfall, and cost
per unit and payback where the tiers carry costs. The run shown is the URL's ``?run=ID`` (default: the
newest comparison)."""

from __future__ import annotations

from typing import Any, Optional

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import data, figures
from dashboards.components import (URL, error_box, graph, guarded, query, run_meta_line, run_picker, store_path, table,
                                   verdict)
from dashboards.i18n import (TABLE_KPIS, delta_unit, fmt_delta, fmt_kpi, fmt_number, kpi_name,
                             kpi_unit, language, level_name, step_name, t)
from twin.compare import ATTRIBUTED_KPIS, ComparisonResult

PATH = "/"
NAV = "nav_maturity"
ECONOMICS = ("investment", "running_cost_per_year", "good_units_per_year", "cost_per_unit", "payback_years")


def layout(lang: Optional[str] = None, run: Optional[str] = None, **_query: Any) -> html.Div:
    lang = language(lang)
    return html.Div([html.H1(t("maturity_title", lang)), guarded(lang, lambda: _page(lang, run))])


def _page(lang: str, run: Optional[str]) -> html.Div:
    path = store_path()
    runs = [r for r in data.list_runs(path) if r["kind"] == "compare"]
    if not runs:
        return error_box([t("no_comparisons", lang)], lang)
    run_id = data.pick_run(runs, run)
    result = data.comparison(path, run_id)
    meta = next(r for r in runs if r["run_id"] == run_id)
    names = {level: level_name(level, lang) for level in result.levels}
    return html.Div([
        dcc.Store(id="maturity-state", data={"run": run_id, "lang": lang}),
        html.Div(run_picker("maturity-run", runs, run_id, lang), className="controls"),
        run_meta_line(meta, lang),
        html.H2(t("kpi_table_title", lang)), html.P(t("mean_ci", lang), className="note"),
        _kpi_table(result, names, lang),
        html.Div([graph("maturity-radar", figures.radar({lv: _means(result, lv) for lv in result.levels}, names, lang)),
                  html.Div([html.H2(t("economics_title", lang)), _economics(result, names, lang)])], className="grid"),
        html.H2(t("deltas_title", lang, base=names[result.levels[0]])),
        _deltas(result, names, lang),
        html.H2(t("waterfall_title", lang)),
        _waterfall_section(result.attribution, lang),
        html.P([dcc.Link(f"{t('open_line', lang)}: {names[lv]}", href="/line" + query(run=run_id, level=lv),
                         style={"marginRight": "18px"}) for lv in result.levels]),
    ])


def _means(result: ComparisonResult, level: str) -> dict[str, Optional[float]]:
    return {k: e["mean"] for k, e in result.line(level).items()}


def _kpi_table(result: ComparisonResult, names: dict[str, str], lang: str) -> html.Table:
    lines = {level: result.line(level) for level in result.levels}
    rows = []
    for key in TABLE_KPIS:
        cells = [lines[lv].get(key) for lv in result.levels]
        if all(c is None or c["mean"] is None for c in cells):
            continue
        rows.append((key, [kpi_name(key, lang), kpi_unit(key, lang)] + [fmt_kpi(key, c) for c in cells]))
    return table("kpi-table", [t("kpi", lang), t("unit", lang)] + [names[lv] for lv in result.levels], rows)


def _deltas(result: ComparisonResult, names: dict[str, str], lang: str) -> html.Table:
    later = result.levels[1:]
    deltas = {level: result.deltas(level) for level in later}
    body = []
    for key in TABLE_KPIS:
        cells = [deltas[lv].get(key) for lv in later]
        if all(c is None or c["mean"] is None for c in cells):
            continue
        body.append(html.Tr([html.Td(kpi_name(key, lang)), html.Td(delta_unit(key, lang))]
                            + [html.Td(fmt_delta(key, c), className=verdict(key, c)) for c in cells],
                            **{"data-key": key}))
    header = html.Thead(html.Tr([html.Th(h) for h in [t("kpi", lang), t("unit", lang)] + [names[lv] for lv in later]]))
    return html.Table([header, html.Tbody(body)], id="delta-table", className="table")


def _economics(result: ComparisonResult, names: dict[str, str], lang: str) -> html.Div:
    econ = {level: result.economics(level) for level in result.levels}
    if not any((e["investment"] or 0) > 0 or (e["running_cost_per_year"] or 0) > 0 for e in econ.values()):
        return html.P(t("no_costs", lang), className="note", id="economics-note")
    rows = []
    for key in ECONOMICS:
        digits = 0 if key in ("investment", "running_cost_per_year", "good_units_per_year") else 2
        rows.append((key, [t(f"econ_{key}", lang), kpi_unit(key, lang)]
                     + [fmt_number(econ[lv][key], digits) for lv in result.levels]))
    return table("economics-table", [t("kpi", lang), t("unit", lang)] + [names[lv] for lv in result.levels], rows)


def _waterfall_section(attribution: dict[str, Any], lang: str) -> html.Div:
    if not attribution:
        return html.P(t("no_attribution", lang), className="note", id="waterfall-note")
    steps = list(attribution)
    kpis = [k for k in ATTRIBUTED_KPIS if any(attribution[s]["kpis"].get(k, {}).get("total") is not None
                                              for s in steps)]
    return html.Div([
        html.Div([
            html.Div([html.Label(t("waterfall_step", lang), htmlFor="maturity-step"),
                      dcc.Dropdown(id="maturity-step", options=[{"label": step_name(s, lang), "value": s} for s in steps],
                                   value=steps[0], clearable=False)], className="control"),
            html.Div([html.Label(t("waterfall_kpi", lang), htmlFor="maturity-kpi"),
                      dcc.Dropdown(id="maturity-kpi", options=[{"label": kpi_name(k, lang), "value": k} for k in kpis],
                                   value=kpis[0], clearable=False)], className="control"),
        ], className="controls"),
        html.Div(_waterfall(attribution, steps[0], kpis[0], lang), id="maturity-waterfall"),
    ])


def _waterfall(attribution: dict[str, Any], step: str, kpi: str, lang: str) -> Any:
    if not attribution[step]["levers"]:
        return html.P(t("no_levers_differ", lang), className="note")
    return graph("maturity-waterfall-graph", figures.waterfall(attribution[step], step, kpi, lang))


def register_callbacks(app: Dash) -> None:
    @app.callback(Output(URL, "search", allow_duplicate=True), Input("maturity-run", "value"),
                  State("maturity-state", "data"), prevent_initial_call=True)
    def _choose_run(run_id: Optional[int], state: dict[str, Any]) -> Any:
        if run_id is None or run_id == state["run"]:
            return no_update
        return query(run=run_id)

    @app.callback(Output("maturity-waterfall", "children"), Input("maturity-step", "value"),
                  Input("maturity-kpi", "value"), State("maturity-state", "data"), prevent_initial_call=True)
    def _step(step: str, kpi: str, state: dict[str, Any]) -> Any:
        lang = state["lang"]

        def build() -> Any:
            attribution = data.attribution(store_path(), state["run"])
            if step not in attribution or kpi not in attribution[step]["kpis"]:
                return no_update
            return _waterfall(attribution, step, kpi, lang)

        return guarded(lang, build)
