"""Runs page: every stored run (comparisons, plain runs, what-ifs), a link to open each, and downloads of a
run's KPIs per replication (CSV, the files of ``twin runs export``, zipped) and of its figures (PNG,
rendered by kaleido with the system's Chromium, zipped)."""

from __future__ import annotations

from typing import Any, Optional

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import data, figures
from dashboards.components import error_box, guarded, query, store_path
from dashboards.i18n import kind_name, language, level_name, status_name, t

PATH = "/runs"
NAV = "nav_runs"


def layout(lang: Optional[str] = None, run: Optional[str] = None, **_query: Any) -> html.Div:
    lang = language(lang)
    return html.Div([html.H1(t("runs_title", lang)), guarded(lang, lambda: _page(lang, run))])


def _open_link(run: dict[str, Any]) -> str:
    if run["kind"] == "compare":
        return "/" + query(run=run["run_id"])
    return "/line" + query(run=run["run_id"])


def _page(lang: str, run: Optional[str]) -> html.Div:
    runs = data.list_runs(store_path())
    if not runs:
        return error_box([t("no_runs", lang, path=store_path())], lang)
    header = [t(k, lang) for k in ("col_id", "col_kind", "col_scenario", "col_levels", "col_reps", "col_seed",
                                   "col_status", "col_started", "col_open")]
    rows = []
    for r in runs:
        rows.append(html.Tr([
            html.Td(str(r["run_id"])), html.Td(kind_name(r["kind"], lang)), html.Td(r["scenario"]),
            html.Td(", ".join(level_name(lv, lang) for lv in r["levels"])),
            html.Td(f"{r['replications_done']}/{r['replications_planned'] * len(r['levels'])}"),
            html.Td(str(r["seed"])), html.Td(status_name(r["status"], lang)),
            html.Td((r["started_at"] or "").replace("T", " ").rstrip("Z")),
            html.Td(dcc.Link(t("open", lang), href=_open_link(r)))], **{"data-key": str(r["run_id"])}))
    chosen = data.parse_int(run)
    chosen = chosen if chosen in [r["run_id"] for r in runs] else runs[0]["run_id"]
    return html.Div([
        dcc.Store(id="runs-lang", data=lang),
        html.Table([html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)], id="runs-table",
                   className="table"),
        html.Div([
            html.Div([html.Label(t("download_run", lang), htmlFor="runs-pick"),
                      dcc.Dropdown(id="runs-pick", options=[{"label": f"#{r['run_id']} {r['scenario']} "
                                                                      f"({kind_name(r['kind'], lang)})",
                                                             "value": r["run_id"]} for r in runs],
                                   value=chosen, clearable=False)], className="control wide"),
            html.Button(t("download_csv", lang), id="runs-csv", n_clicks=0),
            html.Button(t("download_png", lang), id="runs-png", n_clicks=0),
        ], className="controls"),
        dcc.Loading(html.Div(id="runs-message")),
        dcc.Download(id="runs-download-csv"), dcc.Download(id="runs-download-png"),
    ])


def run_figures(run_id: int, lang: str) -> dict[str, go.Figure]:
    """The figures of a run by file stem: per level the flow graph and state breakdown; for a comparison
    also the radar and, per step, the waterfall of the throughput (KPI-based: no simulation needed)."""
    path = store_path()
    summary = data.run_summary(path, run_id)
    out: dict[str, go.Figure] = {}
    names = {level: level_name(level, lang) for level in summary["levels"]}
    if summary["kind"] == "compare":
        result = data.comparison(path, run_id)
        out["radar"] = figures.radar({lv: {k: e["mean"] for k, e in result.line(lv).items()} for lv in result.levels},
                                     names, lang)
        for step, attribution in result.attribution.items():
            if attribution["levers"]:
                out[f"waterfall-{step.replace('->', '-to-')}"] = figures.waterfall(attribution, step,
                                                                                  "throughput_per_hour", lang)
    for level in summary["levels"]:
        s = summary["summary"][level]
        if not s["replications"]:
            continue
        scenario = data.level_scenario(summary, level)
        out[f"flow-{level}"] = figures.flow_graph(data.line_graph(scenario), s["stations"], s["bottleneck"], lang)
        out[f"states-{level}"] = figures.state_breakdown(s["state_fractions"], lang)
    return out


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("runs-download-csv", "data"), Output("runs-message", "children", allow_duplicate=True),
                  Input("runs-csv", "n_clicks"), State("runs-pick", "value"), State("runs-lang", "data"),
                  prevent_initial_call=True)
    def _csv(_clicks: int, run_id: int, lang: str) -> Any:
        content = guarded(lang, lambda: data.kpi_csv_zip(store_path(), run_id))
        if not isinstance(content, bytes):
            return no_update, content
        return dcc.send_bytes(content, f"run-{run_id}-kpis-csv.zip"), []

    @app.callback(Output("runs-download-png", "data"), Output("runs-message", "children"),
                  Input("runs-png", "n_clicks"), State("runs-pick", "value"), State("runs-lang", "data"),
                  prevent_initial_call=True)
    def _png(_clicks: int, run_id: int, lang: str) -> Any:
        named = guarded(lang, lambda: run_figures(run_id, lang))
        if not isinstance(named, dict):
            return no_update, named
        try:
            content = figures.png_zip(named)
        except (RuntimeError, OSError) as exc:  # no Chromium for kaleido, a full disk, ...
            return no_update, error_box([t("png_failed", lang, error=exc)], lang)
        return dcc.send_bytes(content, f"run-{run_id}-figures-png.zip"), []
