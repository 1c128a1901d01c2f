"""Enterprise diagnosis page: an enterprise's latest kept assessment (score S, maturity level, MIIT tier and
what blocks the next one, the radar by sub-domain) and its latest simulated roadmap, ranked by payback.
The enterprise shown is the URL's ``?enterprise=NAME`` (default: the first by name)."""

from __future__ import annotations

import json
from typing import Any, Optional

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import data
from dashboards.components import URL, error_box, graph, guarded, query, store_path, table
from dashboards.i18n import fmt_number, language, level_name, t
from twin.diagnose.assessment import blocker_text, load_bank
from twin.diagnose.report import radar_figure

PATH = "/enterprise"
NAV = "nav_enterprise"


def layout(lang: Optional[str] = None, enterprise: Optional[str] = None, **_query: Any) -> html.Div:
    lang = language(lang)
    return html.Div([html.H1(t("enterprise_title", lang)), guarded(lang, lambda: _page(lang, enterprise))])


def _page(lang: str, enterprise: Optional[str]) -> html.Div:
    with data.open_store(store_path()) as db:
        names = [row["enterprise"] for row in db.enterprises()]
        if not names:
            return error_box([t("no_enterprises", lang, path=store_path())], lang)
        name = enterprise if enterprise in names else names[0]
        assessments = db.enterprise_records(name, "assessment")
        roadmaps = db.enterprise_records(name, "roadmap")
    picker = html.Div([html.Label(t("enterprise", lang), htmlFor="enterprise-pick"),
                       dcc.Dropdown(id="enterprise-pick", options=names, value=name, clearable=False)],
                      className="control wide")
    parts: list[Any] = [dcc.Store(id="enterprise-state", data={"enterprise": name}),
                        html.Div(picker, className="controls")]
    if assessments:
        result = json.loads(assessments[-1]["data"])
        tier = level_name(result["tier"], lang) if result["tier"] else t("enterprise_none", lang)
        parts.append(html.P(t("enterprise_score", lang, score=result["score"], level=result["level"], tier=tier),
                            id="enterprise-score", className="meta"))
        if result["next_tier"]:
            parts += [html.H2(t("enterprise_blockers", lang, tier=level_name(result["next_tier"], lang))),
                      html.Ul([html.Li(blocker_text(b, lang)) for b in result["blockers"]], id="enterprise-blockers")]
        parts.append(graph("enterprise-radar", radar_figure(load_bank(), result["subdomain_scores"], lang)))
    parts += _roadmap(roadmaps, lang)
    return html.Div(parts)


def _roadmap(records: list[dict[str, Any]], lang: str) -> list[Any]:
    if not records:
        return [html.P(t("enterprise_no_roadmap", lang), className="note")]
    roadmap = json.loads(records[-1]["data"])
    options = {o["variant"]: o for o in roadmap["options"]}
    rows = []
    for variant in roadmap["by_payback"]:
        option = options[variant]
        payback = option["payback_years"]
        gain = option["throughput_gain"]["mean"]
        rows.append((variant, [variant, fmt_number(option["investment"], 0),
                               t("never_pays_back", lang) if payback is None else fmt_number(payback, 1),
                               fmt_number(gain, 2)]))
    header = [t(k, lang) for k in ("col_upgrade", "col_investment", "col_payback", "col_gain")]
    return [html.H2(t("enterprise_roadmap", lang, line=roadmap["line"], reps=roadmap["replications"])),
            table("enterprise-roadmap", header, rows)]


def register_callbacks(app: Dash) -> None:
    @app.callback(Output(URL, "search", allow_duplicate=True), Input("enterprise-pick", "value"),
                  State("enterprise-state", "data"), prevent_initial_call=True)
    def _choose(name: Optional[str], state: dict[str, Any]) -> Any:
        if name is None or name == state["enterprise"]:
            return no_update
        return query(enterprise=name)
