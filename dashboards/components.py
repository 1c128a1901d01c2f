"""Page parts every page uses: the store path of this app, error boxes, run pickers, tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import flask
from dash import dcc, html

from dashboards.data import DashboardError, NoStoreError, problem_lines
from dashboards.i18n import LOWER_IS_BETTER, kind_name, level_name, status_name, t
from twin.config import ScenarioError
from twin.store import StoreError

STORE_KEY = "YUETWIN_STORE"
WORKERS_KEY = "YUETWIN_WORKERS"
URL = "_pages_location"
"""The id of Dash pages' own location component: pages change their query string through it."""


def store_path() -> Path:
    """The results store this app serves (set by :func:`dashboards.app.create_app`)."""
    return Path(flask.current_app.config[STORE_KEY])


def workers() -> int:
    """Local processes a what-if may use."""
    return int(flask.current_app.config[WORKERS_KEY])


def error_box(lines: list[str], lang: str, title: Optional[str] = None) -> html.Div:
    """An error shown in the page: a title and one line per problem (never a traceback)."""
    return html.Div([html.Strong(title or t("error", lang)), html.Ul([html.Li(line) for line in lines])],
                    className="error", role="alert")


def guarded(lang: str, build: Callable[[], Any]) -> Any:
    """``build()``, or an error box when the store, the run or the input cannot give what it needs."""
    try:
        return build()
    except ScenarioError as exc:
        return error_box(problem_lines(exc), lang)
    except NoStoreError:
        return error_box([t("no_store", lang, path=store_path())], lang)
    except DashboardError as exc:
        return error_box([str(exc)], lang)
    except StoreError as exc:
        return error_box([str(exc)], lang)


def run_label(run: dict[str, Any], lang: str) -> str:
    """One line naming a stored run: id, scenario, kind, levels, replications, status."""
    levels = ", ".join(level_name(lv, lang) for lv in run["levels"])
    return t("run_option", lang, id=run["run_id"], scenario=run["scenario"], kind=kind_name(run["kind"], lang),
             levels=levels, done=run["replications_done"], planned=run["replications_planned"] * len(run["levels"]),
             status=status_name(run["status"], lang))


def run_picker(component_id: str, runs: list[dict[str, Any]], value: int, lang: str, label: str = "run") -> html.Div:
    """A dropdown of runs labelled with text ``label``; choosing one loads the page for it."""
    return html.Div([html.Label(t(label, lang), htmlFor=component_id),
                     dcc.Dropdown(id=component_id, options=[{"label": run_label(r, lang), "value": r["run_id"]}
                                                            for r in runs],
                                  value=value, clearable=False)], className="control wide")


def run_meta_line(meta: dict[str, Any], lang: str) -> html.P:
    return html.P(t("run_meta", lang, scenario=meta["scenario"], id=meta["run_id"],
                    kind=kind_name(meta["kind"], lang), seed=meta["seed"], reps=meta["replications_planned"],
                    status=status_name(meta["status"], lang), version=meta["version"]), className="meta")


def table(component_id: str, header: list[str], rows: list[tuple[str, list[str]]]) -> html.Table:
    """A plain table; each body row carries its key (e.g. the KPI) in ``data-key``."""
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in header])),
                       html.Tbody([html.Tr([html.Td(c) for c in cells], **{"data-key": key}) for key, cells in rows])],
                      id=component_id, className="table")


def graph(component_id: Any, figure: Any) -> dcc.Graph:
    return dcc.Graph(id=component_id, figure=figure, config={"displaylogo": False}, className="graph")


def query(**values: Any) -> str:
    """A URL query string from the values that are set."""
    from urllib.parse import urlencode

    return "?" + urlencode({k: v for k, v in values.items() if v is not None})


def verdict(key: str, estimate: Optional[dict[str, Any]]) -> str:
    """CSS class of a KPI change: ``good`` or ``bad`` when its 95 % CI excludes zero, else ''."""
    if not estimate or estimate.get("ci_low") is None:
        return ""
    up, down = estimate["ci_low"] > 0, estimate["ci_high"] < 0
    if not (up or down):
        return ""
    return "good" if up != (key in LOWER_IS_BETTER) else "bad"
