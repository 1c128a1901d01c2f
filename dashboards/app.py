"""The YueTwin dashboard: a multi-page Dash app reading the results store (one module per page in
``dashboards/pages``). Per-request data comes from the store; the app keeps no state of its own beyond
its configuration (the store path, the workers a what-if may use).
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Optional

import dash
import flask
from dash import Dash, Input, Output, dcc, html

from dashboards.components import STORE_KEY, WORKERS_KEY
from dashboards.i18n import DEFAULT_LANGUAGE, language, t
from dashboards.pages import enterprise, line, maturity, runs, whatif

PAGES = (maturity, line, whatif, runs, enterprise)
_CSS = """
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", Arial, sans-serif;
       margin: 0; color: #222; background: #fafafa; }
header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #0b3d61; color: #fff; }
header .brand { font-size: 20px; font-weight: bold; }
header nav a { color: #fff; margin-right: 18px; text-decoration: none; }
header nav a:hover { text-decoration: underline; }
header .lang { margin-left: auto; }
header .lang label { margin-left: 10px; }
main { padding: 12px 24px 40px; }
.controls { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-end; margin: 8px 0 12px; }
.control { min-width: 180px; } .control.wide { min-width: 520px; flex: 1; }
.control label { display: block; font-size: 13px; color: #555; margin-bottom: 2px; }
.table { border-collapse: collapse; background: #fff; margin: 6px 0 18px; font-size: 14px; }
.table th, .table td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
.table th:first-child, .table td:first-child { text-align: left; }
.error { background: #fdecea; border: 1px solid #d62728; color: #8a1c1c; padding: 8px 14px; margin: 10px 0; }
.note { color: #555; font-size: 13px; } .meta { color: #444; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; }
.graph { background: #fff; margin-bottom: 16px; }
.good { color: #1a7f37; } .bad { color: #b42318; }
progress { width: 360px; height: 16px; }
"""


def create_app(store: Path, auth: Optional[tuple[str, str]] = None, workers: int = 1) -> Dash:
    """The dashboard over the results store ``store``. With ``auth`` (user, password) every request needs
    HTTP basic auth. ``workers`` local processes run a what-if's replications."""
    app = Dash(__name__, use_pages=True, pages_folder="", suppress_callback_exceptions=True,
               title="YueTwin", update_title=None, routing_callback_inputs={"lang": Input("lang", "value")})
    app.server.config[STORE_KEY] = str(Path(store).expanduser().absolute())
    app.server.config[WORKERS_KEY] = int(workers)
    if auth is not None:
        _require_basic_auth(app.server, *auth)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    for order, page in enumerate(PAGES):
        dash.register_page(page.__name__, path=page.PATH, name=page.__name__.rsplit(".", 1)[-1], order=order,
                           title="YueTwin 粤孪", layout=page.layout)
        page.register_callbacks(app)
    app.layout = html.Div([
        html.Header([html.Span("YueTwin 粤孪", className="brand"), html.Nav(id="nav"),
                     dcc.RadioItems(id="lang", className="lang", inline=True, value=DEFAULT_LANGUAGE,
                                    persistence=True, persistence_type="local",
                                    options=[{"label": "English", "value": "en"}, {"label": "中文", "value": "zh"}])]),
        html.Main(dash.page_container),
    ])

    @app.callback(Output("nav", "children"), Input("lang", "value"))
    def _nav(lang: Optional[str]) -> list:
        lang = language(lang)
        return [dcc.Link(t(page.NAV, lang), href=page.PATH, id=f"nav-{page.__name__.rsplit('.', 1)[-1]}")
                for page in PAGES]

    return app


def _require_basic_auth(server: flask.Flask, user: str, password: str) -> None:
    """Answer 401 to every request without the right HTTP basic credentials (compared in constant time)."""
    expected = (user.encode(), password.encode())

    @server.before_request
    def _check() -> Optional[flask.Response]:
        given = flask.request.authorization
        if (given is not None and given.type == "basic"
                and hmac.compare_digest((given.username or "").encode(), expected[0])
                and hmac.compare_digest((given.password or "").encode(), expected[1])):
            return None
        return flask.Response("YueTwin dashboard: log in with the user and password given to --auth.\n", 401,
                              {"WWW-Authenticate": 'Basic realm="YueTwin", charset="UTF-8"'})
