"""What-if panel: pick a parameter of a stored run's level (buffer size, server count, dispatching rule, a
lever, ... or any ``PATH=VALUE``), change it and run it, with a progress bar, without leaving the page.
The changed scenario goes through the same validation as a scenario file; it is simulated with the base
run's seed and replication numbers (common random numbers) and kept in the store as a ``what-if`` run.
The new KPIs are shown beside the base's with their paired difference and its 95 % CI.
URL: ``?run=ID&level=NAME`` picks the base, ``&what_if=ID`` shows an earlier what-if."""

from __future__ import annotations

from typing import Any, Optional

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import data
from dashboards.data import DashboardError
from dashboards.components import URL, error_box, guarded, query, run_meta_line, run_picker, store_path, verdict, workers
from dashboards.i18n import (TABLE_KPIS, delta_unit, fmt_delta, fmt_kpi, kpi_name, kpi_unit, language, level_name,
                             status_name, t)
from twin.config import ScenarioError
from twin.store import StoreError

PATH = "/what-if"
NAV = "nav_whatif"
DEFAULT_REPLICATIONS = 5
POLL_MS = 600


def layout(lang: Optional[str] = None, run: Optional[str] = None, level: Optional[str] = None,
           what_if: Optional[str] = None, **_query: Any) -> html.Div:
    lang = language(lang)
    return html.Div([html.H1(t("whatif_title", lang)), html.P(t("whatif_intro", lang), className="note"),
                     guarded(lang, lambda: _page(lang, run, level, what_if))])


def _page(lang: str, run: Optional[str], level: Optional[str], what_if: Optional[str]) -> html.Div:
    path = store_path()
    runs = [r for r in data.list_runs(path) if r["replications_done"]]
    if not runs:
        return error_box([t("no_runs", lang, path=path)], lang)
    run_id = data.pick_run(runs, run, prefer_kind="compare")
    view = data.level_view(path, run_id, level)
    meta, levels, level, available = view.meta, view.levels, view.level, len(view.replications)
    parameters = data.what_if_parameters(data.level_scenario(meta, level))
    shown = data.parse_int(what_if)
    earlier = data.earlier_what_ifs(path, run_id)
    status, result, running = ([], [], False)
    if shown is not None and shown in [w["run_id"] for w in earlier]:
        status, result, running = _view(shown, lang)
    state = {"run": run_id, "level": level, "lang": lang, "available": available}
    return html.Div([
        dcc.Store(id="whatif-state", data=state),
        dcc.Store(id="whatif-run", data=shown),
        dcc.Interval(id="whatif-poll", interval=POLL_MS, disabled=not running),
        html.Div([
            run_picker("whatif-base", runs, run_id, lang, label="whatif_base"),
            html.Div([html.Label(t("whatif_level", lang), htmlFor="whatif-level"),
                      dcc.Dropdown(id="whatif-level", options=[{"label": level_name(lv, lang), "value": lv}
                                                               for lv in levels], value=level, clearable=False)],
                     className="control"),
        ], className="controls"),
        run_meta_line(meta, lang),
        html.Div([
            html.Div([html.Label(t("whatif_parameter", lang), htmlFor="whatif-parameter"),
                      dcc.Dropdown(id="whatif-parameter", options=[{"label": f"{p.path} ({p.current})", "value": p.path}
                                                                   for p in parameters], value=None)],
                     className="control wide"),
            html.Div([html.Label(t("whatif_value", lang), htmlFor="whatif-value"),
                      dcc.Input(id="whatif-value", type="text", value="", debounce=False),
                      html.Div(id="whatif-current", className="note")], className="control"),
            html.Div([html.Label(t("whatif_reps", lang), htmlFor="whatif-reps"),
                      dcc.Input(id="whatif-reps", type="number", min=1, max=available, step=1,
                                value=min(DEFAULT_REPLICATIONS, available))], className="control"),
        ], className="controls"),
        html.Div([html.Label(t("whatif_more", lang), htmlFor="whatif-text"),
                  dcc.Textarea(id="whatif-text", value="", style={"width": "100%", "height": "70px",
                                                                  "fontFamily": "monospace"})],
                 className="control wide"),
        html.Button(t("whatif_run", lang), id="whatif-go", n_clicks=0, className="button"),
        html.Div(status, id="whatif-status"),
        html.Div(result, id="whatif-result"),
        _earlier(earlier, run_id, lang),
    ])


def _earlier(earlier: list[dict[str, Any]], run_id: int, lang: str) -> html.Div:
    if not earlier:
        return html.Div()
    items = [html.Li(dcc.Link(f"#{w['run_id']} {level_name(w['base_level'], lang)}: {'; '.join(w['overrides'])}",
                              href=PATH + query(run=run_id, level=w["base_level"], what_if=w["run_id"])))
             for w in reversed(earlier)]
    return html.Div([html.H2(t("whatif_earlier", lang)), html.Ul(items)], id="whatif-earlier")


def _overrides(parameter: Optional[str], value: Optional[str], text: Optional[str]) -> list[str]:
    """The changes asked for: the chosen parameter's new value, then each non-empty line of the text box."""
    out = []
    if parameter and value is not None and str(value).strip():
        out.append(f"{parameter}={str(value).strip()}")
    out += [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]
    return out


def _view(what_if_id: int, lang: str) -> tuple[list, list, bool]:
    """Status line, result table and whether the what-if is still running."""
    view = data.what_if_view(store_path(), what_if_id)
    meta, done, planned = view.meta, view.done, view.meta["replications_planned"]
    running = meta["status"] == "running"
    if running:
        status = [html.P(t("whatif_started", lang, id=what_if_id, done=done, planned=planned)),
                  html.Progress(value=str(done), max=str(planned), id="whatif-progress")]
    elif meta["status"] != "finished":
        status = [error_box([t("whatif_failed", lang, id=what_if_id, status=status_name(meta["status"], lang),
                                done=done, planned=planned)], lang)]
    else:
        status = []
    if view.paired is None:
        return status, [], running
    base, new = view.paired.line(data.BASE), view.paired.line(data.WHAT_IF)
    deltas = view.paired.deltas(data.WHAT_IF)
    base_name = level_name(view.link["base_level"], lang)
    header = [t("kpi", lang), t("unit", lang), t("whatif_base_col", lang, level=base_name),
              t("whatif_new_col", lang), t("whatif_delta_col", lang)]
    body = []
    for key in TABLE_KPIS:
        if base.get(key, {}).get("mean") is None and new.get(key, {}).get("mean") is None:
            continue
        body.append(html.Tr([html.Td(kpi_name(key, lang)), html.Td(kpi_unit(key, lang)),
                             html.Td(fmt_kpi(key, base.get(key))), html.Td(fmt_kpi(key, new.get(key))),
                             html.Td(f"{fmt_delta(key, deltas.get(key))} {delta_unit(key, lang)}".strip(),
                                     className=verdict(key, deltas.get(key)))], **{"data-key": key}))
    result = [html.H2(t("whatif_result", lang, id=what_if_id, changes="; ".join(view.link["overrides"]))),
              html.P(t("mean_ci", lang), className="note"),
              html.Table([html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(body)],
                         id="whatif-table", className="table")]
    return status, result, running


def register_callbacks(app: Dash) -> None:
    @app.callback(Output(URL, "search", allow_duplicate=True), Input("whatif-base", "value"),
                  Input("whatif-level", "value"), State("whatif-state", "data"), prevent_initial_call=True)
    def _choose(run_id: Optional[int], level: Optional[str], state: dict[str, Any]) -> Any:
        if run_id != state["run"]:
            return query(run=run_id)
        if level != state["level"]:
            return query(run=run_id, level=level)
        return no_update

    @app.callback(Output("whatif-value", "value"), Output("whatif-current", "children"),
                  Input("whatif-parameter", "value"), State("whatif-state", "data"), prevent_initial_call=True)
    def _parameter(parameter: Optional[str], state: dict[str, Any]) -> Any:
        if not parameter:
            return "", ""
        meta = data.run_meta(store_path(), state["run"])
        current = next((p.current for p in data.what_if_parameters(data.level_scenario(meta, state["level"]))
                        if p.path == parameter), "")
        return current, t("whatif_current", state["lang"], value=current)

    @app.callback(Output("whatif-run", "data"), Output("whatif-poll", "disabled", allow_duplicate=True),
                  Output("whatif-status", "children", allow_duplicate=True),
                  Output("whatif-result", "children", allow_duplicate=True),
                  Input("whatif-go", "n_clicks"), State("whatif-parameter", "value"), State("whatif-value", "value"),
                  State("whatif-text", "value"), State("whatif-reps", "value"), State("whatif-state", "data"),
                  prevent_initial_call=True)
    def _run(_clicks: int, parameter: Optional[str], value: Optional[str], text: Optional[str], reps: Any,
             state: dict[str, Any]) -> Any:
        lang = state["lang"]
        overrides = _overrides(parameter, value, text)
        if not overrides:
            return no_update, True, error_box([t("whatif_nothing", lang)], lang), []
        replications = data.parse_int(reps)
        if replications is None or not 1 <= replications <= state["available"]:
            return no_update, True, error_box([t("whatif_reps_range", lang, max=state["available"])], lang), []
        try:
            what_if_id = data.start_what_if(store_path(), state["run"], state["level"], overrides, replications,
                                            workers())
            status, result, running = _view(what_if_id, lang)
        except ScenarioError as exc:
            return no_update, True, error_box(data.problem_lines(exc), lang, t("whatif_invalid", lang)), []
        except (DashboardError, StoreError) as exc:
            return no_update, True, error_box([str(exc)], lang), []
        return what_if_id, not running, status, result

    @app.callback(Output("whatif-status", "children"), Output("whatif-result", "children"),
                  Output("whatif-poll", "disabled"), Input("whatif-poll", "n_intervals"),
                  State("whatif-run", "data"), State("whatif-state", "data"), prevent_initial_call=True)
    def _poll(_n: int, what_if_id: Optional[int], state: dict[str, Any]) -> Any:
        if what_if_id is None:
            return no_update, no_update, True
        lang = state["lang"]
        view = guarded(lang, lambda: _view(what_if_id, lang))
        if not isinstance(view, tuple):  # an error box
            return view, [], True
        status, result, running = view
        return status, result, not running
