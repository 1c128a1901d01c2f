"""Line page: the line as a flow graph coloured by utilisation with the bottleneck marked, the state
breakdown per station (means over replications), and, from the event log of one replication, a Sankey of
the material flow (with rework and scrap), WIP, throughput and power over time and a Gantt chart of the
station states in a chosen time window. The URL's ``?run=ID&level=NAME&rep=N`` picks what is shown.

A comparison keeps no event logs: the replication is simulated again with its seed (the same random
numbers, checked against the stored KPIs) and its log kept beside the store, once.
"""

from __future__ import annotations

from typing import Any, Optional

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import data, figures
from dashboards.components import URL, error_box, graph, guarded, query, run_meta_line, run_picker, store_path
from dashboards.i18n import language, level_name, t

PATH = "/line"
NAV = "nav_line"
GANTT_HOURS = 24
"""Hours of the observation window the Gantt chart shows at first."""


def layout(lang: Optional[str] = None, run: Optional[str] = None, level: Optional[str] = None,
           rep: Optional[str] = None, **_query: Any) -> html.Div:
    lang = language(lang)
    return html.Div([html.H1(t("line_title", lang)), guarded(lang, lambda: _page(lang, run, level, rep))])


def _page(lang: str, run: Optional[str], level: Optional[str], rep: Optional[str]) -> html.Div:
    path = store_path()
    runs = [r for r in data.list_runs(path) if r["replications_done"]]
    if not runs:
        return error_box([t("no_runs", lang, path=path)], lang)
    run_id = data.pick_run(runs, run)
    view = data.level_view(path, run_id, level)
    levels, level, numbers, level_summary = view.levels, view.level, view.replications, view.summary
    replication = data.parse_int(rep)
    replication = replication if replication in numbers else numbers[0]
    scenario = data.level_scenario(view.meta, level)
    state = {"run": run_id, "level": level, "rep": replication, "lang": lang}
    return html.Div([
        dcc.Store(id="line-state", data=state),
        html.Div([
            run_picker("line-run", runs, run_id, lang),
            html.Div([html.Label(t("level", lang), htmlFor="line-level"),
                      dcc.Dropdown(id="line-level", options=[{"label": level_name(lv, lang), "value": lv}
                                                             for lv in levels], value=level, clearable=False)],
                     className="control"),
            html.Div([html.Label(t("replication", lang), htmlFor="line-rep"),
                      dcc.Dropdown(id="line-rep", options=[{"label": str(n), "value": n} for n in numbers],
                                   value=replication, clearable=False)], className="control"),
        ], className="controls"),
        run_meta_line(view.meta, lang),
        graph("line-flow", figures.flow_graph(data.line_graph(scenario), level_summary["stations"],
                                              level_summary["bottleneck"], lang)),
        graph("line-states", figures.state_breakdown(level_summary["state_fractions"], lang)),
        _robot_cells(path, scenario, lang),
        dcc.Loading(html.Div(id="line-events"), custom_spinner=html.P(t("recording", lang), className="note")),
    ])


def _robot_cells(path: Any, scenario: Any, lang: str) -> html.Div:
    """The picture and cycle time of each robot cell of the line (none: an empty block)."""
    cells = data.robot_cells(path, scenario)
    if not cells:
        return html.Div(id="line-robot-cells")
    figures_ = []
    for cell in cells:
        caption = (t("robot_cell_caption", lang, station=cell.station, seconds=f"{cell.cycle_time_s:.2f}")
                   if cell.problem is None else t("robot_cell_problem", lang, station=cell.station, problem=cell.problem))
        figures_.append(html.Figure([html.Img(src=cell.image, alt=cell.station, className="robot-cell"),
                                     html.Figcaption(caption)]))
    return html.Div([html.H2(t("robot_cells", lang)), *figures_], id="line-robot-cells")


def _marks(hours: float, lang: str) -> dict[int, str]:
    """A mark per day (per week beyond four weeks) on the Gantt window slider."""
    step = 24 if hours <= 24 * 28 else 24 * 7
    return {int(h): t("days_short", lang, n=h / 24) for h in range(0, int(hours) + 1, step)}


def _events(state: dict[str, Any]) -> html.Div:
    path = store_path()
    meta = data.run_meta(path, state["run"])
    scenario = data.level_scenario(meta, state["level"])
    events = data.run_events(path, state["run"], state["level"], state["rep"], meta)
    lang, rep = state["lang"], state["rep"]
    flows = data.material_flow(events, rep, scenario)
    series = data.time_series(events, rep, scenario)
    hours = scenario.run.length / 60
    window = [0, min(GANTT_HOURS, hours)]
    return html.Div([
        html.P(t("events_recorded", lang, path=events.name, rows=f"{data.event_rows(events):,}"), className="note",
               id="line-events-note"),
        graph("line-sankey", figures.sankey(flows, [st.name for st in scenario.stations], rep, lang)),
        graph("line-series", figures.time_series(series, rep, lang)),
        html.Div([html.Label(t("gantt_window", lang), htmlFor="line-window"),
                  dcc.RangeSlider(id="line-window", min=0, max=hours, step=1, value=window, marks=_marks(hours, lang),
                                  allowCross=False)], className="control wide"),
        html.Div(_gantt(state, window, events, scenario), id="line-gantt"),
    ])


def _gantt(state: dict[str, Any], window: list[float], events: Any, scenario: Any) -> Any:
    start = scenario.run.warmup
    a, b = sorted(window)
    if b <= a:
        b = a + 1
    chart = data.gantt(events, state["rep"], scenario, start + a * 60, start + b * 60)
    return graph("line-gantt-graph", figures.gantt(chart, start, state["rep"], a, b, state["lang"]))


def register_callbacks(app: Dash) -> None:
    @app.callback(Output(URL, "search", allow_duplicate=True), Input("line-run", "value"),
                  Input("line-level", "value"), Input("line-rep", "value"), State("line-state", "data"),
                  prevent_initial_call=True)
    def _choose(run_id: Optional[int], level: Optional[str], rep: Optional[int], state: dict[str, Any]) -> Any:
        if run_id != state["run"]:
            return query(run=run_id)
        if level != state["level"]:
            return query(run=run_id, level=level)
        if rep != state["rep"]:
            return query(run=run_id, level=level, rep=rep)
        return no_update

    @app.callback(Output("line-events", "children"), Input("line-state", "data"))
    def _load_events(state: dict[str, Any]) -> Any:
        return guarded(state["lang"], lambda: _events(state))

    @app.callback(Output("line-gantt", "children"), Input("line-window", "value"), State("line-state", "data"),
                  prevent_initial_call=True)
    def _window(window: list[float], state: dict[str, Any]) -> Any:
        def build() -> Any:
            path = store_path()
            meta = data.run_meta(path, state["run"])
            scenario = data.level_scenario(meta, state["level"])
            return _gantt(state, window, data.run_events(path, state["run"], state["level"], state["rep"], meta),
                          scenario)

        return guarded(state["lang"], build)
