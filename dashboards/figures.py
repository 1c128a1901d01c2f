"""Plotly figures of the dashboard, built from data the server has already aggregated (see
:mod:`dashboards.data`), in the language asked for. The pages show them; the runs page exports them as
PNG (kaleido). Every axis names its quantity and unit.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from dashboards.data import FINISHED, ORDERS, SCRAP, Flow, Gantt, LineGraph, TimeSeries
from dashboards.i18n import (LOWER_IS_BETTER, delta_unit, kpi_label, kpi_name, lever_name, scaled, state_name,
                             step_name, t, unit_name)
from lines.station import STATE_NAMES

RADAR_KPIS = ("throughput_per_hour", "oee", "lead_time_mean", "wip_mean", "energy_kwh_per_good_unit",
              "on_time_rate", "first_pass_yield")
"""The KPIs on the maturity radar."""
STATE_COLOURS = {"busy": "#2ca02c", "setup": "#ffbf00", "idle": "#9ecae1", "standby": "#c7e9c0",
                 "blocked": "#ff7f0e", "down": "#d62728", "maintenance": "#9467bd", "planned_down": "#8c8c8c",
                 "off_shift": "#dedede"}
EDGE_STYLES = {"conveyor": ("#1f77b4", "solid", 3), "agv": ("#9467bd", "dash", 2),
               "cart": ("#8c564b", "dot", 2), "direct": ("#7f7f7f", "solid", 1.5),
               "rework": ("#d62728", "dot", 1.5), "scrap": ("#d62728", "dash", 1)}
_TEMPLATE = pio.templates["plotly_white"]  # loaded once, when the module is imported
_FONT = "WenQuanYi Micro Hei, Noto Sans CJK SC, Microsoft YaHei, PingFang SC, Arial, sans-serif"


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01, "xanchor": "left"}, height=height, template=_TEMPLATE,
                      font={"family": _FONT, "size": 13}, margin={"l": 60, "r": 20, "t": 100, "b": 50},
                      legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "xanchor": "left",
                              "traceorder": "normal"})
    return fig


def normalised(values: dict[str, Optional[float]], lower_is_better: bool) -> dict[str, Optional[float]]:
    """Each value as a share of the best one (1 = best): ``v / max`` where more is better, ``min / v``
    where less is better (a value of 0 is then the best: 1, the others 0). Undefined stays None;
    all values zero, or none positive, give None."""
    known = {k: v for k, v in values.items() if v is not None and math.isfinite(v) and v >= 0}
    out: dict[str, Optional[float]] = {k: None for k in values}
    if not known:
        return out
    if lower_is_better:
        best = min(known.values())
        for k, v in known.items():
            out[k] = 1.0 if v == best else (best / v if v > 0 else None)
    else:
        best = max(known.values())
        for k, v in known.items():
            out[k] = v / best if best > 0 else None
    return out


def radar(means: dict[str, dict[str, Optional[float]]], level_names: dict[str, str], lang: str) -> go.Figure:
    """``means[level][kpi]``: one closed line per level over :data:`RADAR_KPIS`, each normalised across
    the levels (:func:`normalised`); KPIs undefined at some level are left out."""
    kpis = [k for k in RADAR_KPIS if all(means[lv].get(k) is not None for lv in means)]
    scores = {k: normalised({lv: means[lv][k] for lv in means}, k in LOWER_IS_BETTER) for k in kpis}
    fig = go.Figure()
    names = [kpi_name(k, lang) for k in kpis]
    for level in means:
        r = [scores[k][level] if scores[k][level] is not None else 0.0 for k in kpis]
        fig.add_trace(go.Scatterpolar(r=r + r[:1], theta=names + names[:1], name=level_names[level],
                                      fill="toself", opacity=0.55, hovertemplate="%{theta}: %{r:.3f}<extra>"
                                      + level_names[level] + "</extra>"))
    fig.update_layout(polar={"radialaxis": {"range": [0, 1.05], "tickformat": ".1f", "tickfont": {"size": 9},
                                            "angle": 90, "tickangle": 90},
                             "angularaxis": {"rotation": 90}})
    return _layout(fig, t("radar_title", lang))


def waterfall(attribution: dict[str, Any], step: str, kpi: str, lang: str) -> go.Figure:
    """The change of ``kpi`` over ``step`` split into the levers' Shapley shares, then the total."""
    entry = attribution["kpis"][kpi]
    levers = attribution["levers"]
    shares = [scaled(kpi, {"mean": entry["shares"][lv]})["mean"] for lv in levers]
    total = scaled(kpi, {"mean": entry["total"]})["mean"]
    method = t("method_exact" if attribution["method"] == "exact" else "method_sampled", lang)
    fig = go.Figure(go.Waterfall(
        x=[lever_name(lv, lang) for lv in levers] + [t("waterfall_total", lang)],
        y=[s or 0.0 for s in shares] + [total or 0.0], measure=["relative"] * len(levers) + ["total"],
        text=["-" if v is None else f"{v:+.3g}" for v in shares + [total]], textposition="outside",
        decreasing={"marker": {"color": "#d62728" if kpi not in LOWER_IS_BETTER else "#2ca02c"}},
        increasing={"marker": {"color": "#2ca02c" if kpi not in LOWER_IS_BETTER else "#d62728"}},
        totals={"marker": {"color": "#1f77b4"}}))
    unit = delta_unit(kpi, lang)
    fig.update_yaxes(title_text=f"Δ {kpi_name(kpi, lang)} ({unit})" if unit else f"Δ {kpi_name(kpi, lang)}")
    note = t("waterfall_note", lang, method=method, reps=attribution["replications"])
    return _layout(fig, f"{step_name(step, lang)}: {kpi_name(kpi, lang)}<br><sup>{note}</sup>")


def _ranks(graph: LineGraph) -> dict[str, int]:
    """Column of each node: the longest path from a source over the forward links (rework ignored)."""
    nodes = graph.sources + graph.stations
    rank = {n: 0 for n in nodes}
    forward = [(a, b) for a, b, kind in graph.edges if kind not in ("rework", "scrap") and b in rank]
    for _ in range(len(nodes)):  # relax; bounded in case the routings loop
        changed = False
        for a, b in forward:
            if rank[a] + 1 > rank[b]:
                rank[b] = rank[a] + 1
                changed = True
        if not changed:
            break
    last = max(rank.values()) + 1
    rank[FINISHED] = last
    rank[SCRAP] = last
    return rank


def flow_graph(graph: LineGraph, stations: dict[str, dict[str, Any]], bottleneck: dict[str, Any],
               lang: str) -> go.Figure:
    """The line: stations placed by routing order and coloured by utilisation (mean over replications,
    ``stations[name]["utilization"]``), links styled by transport, the bottleneck starred."""
    rank = _ranks(graph)
    columns: dict[int, list[str]] = {}
    nodes = graph.sources + graph.stations + [FINISHED] + ([SCRAP] if any(b == SCRAP for _, b, _ in graph.edges)
                                                            else [])
    for n in nodes:
        columns.setdefault(rank[n], []).append(n)
    pos = {n: (float(c), (len(col) - 1) / 2 - i) for c, col in columns.items() for i, n in enumerate(col)}
    special = {ORDERS: t("orders_node", lang), FINISHED: t("finished_node", lang), SCRAP: t("scrap_node", lang)}
    fig = go.Figure()
    notes: list[dict[str, Any]] = []  # arrows and labels, added in one go (one by one is slow)
    for kind in EDGE_STYLES:
        links = [(a, b) for a, b, k in graph.edges if k == kind and a in pos and b in pos]
        if not links:
            continue
        colour, dash, width = EDGE_STYLES[kind]
        xs: list[Optional[float]] = []
        ys: list[Optional[float]] = []
        for a, b in links:
            bend = 0.35 if kind == "rework" else 0.0  # rework loops arc above the straight links
            mid = ((pos[a][0] + pos[b][0]) / 2, (pos[a][1] + pos[b][1]) / 2 + bend)
            xs += [pos[a][0], mid[0], pos[b][0], None]
            ys += [pos[a][1], mid[1], pos[b][1], None]
            notes.append({"x": pos[b][0], "y": pos[b][1], "ax": mid[0], "ay": mid[1], "xref": "x", "yref": "y",
                          "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 2, "arrowsize": 1.2,
                          "arrowwidth": width, "arrowcolor": colour, "standoff": 16, "text": ""})
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "dash": dash, "width": width},
                                 name=t(f"edge_{kind}", lang) if kind != "scrap" else t("scrap_node", lang),
                                 hoverinfo="skip"))
    names = [n for n in graph.stations if n in pos]
    util = [stations.get(n, {}).get("utilization", {}).get("mean") for n in names]
    text, hover = [], []
    for n, u in zip(names, util):
        buffer = graph.buffers[n]
        servers = graph.servers[n]
        label = f"{n}" + (f" ×{servers}" if servers > 1 else "")
        text.append(f"{label}<br>{'-' if u is None else f'{u:.0%}'}")
        hover.append(f"{n}: {kpi_name('utilization', lang)} {'-' if u is None else f'{u:.1%}'}, "
                     f"{t('buffer', lang)} {t('unlimited', lang) if buffer is None else buffer}, "
                     f"{servers} {t('servers', lang)}")
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in names], y=[pos[n][1] for n in names], mode="markers+text", text=text,
        textposition="top center", hovertext=hover, hoverinfo="text", showlegend=False,
        marker={"size": 34, "symbol": "square", "color": [u if u is not None else 0.0 for u in util],
                "colorscale": "YlOrRd", "cmin": 0, "cmax": 1, "line": {"color": "#333", "width": 1},
                "colorbar": {"title": {"text": kpi_label("utilization", lang)}, "tickformat": ".0%"}}))
    for n in names:  # buffer capacity under each station
        buffer = graph.buffers[n]
        notes.append({"x": pos[n][0], "y": pos[n][1], "yshift": -28, "showarrow": False, "font": {"size": 11},
                      "text": f"{t('buffer', lang)} {t('unlimited', lang) if buffer is None else buffer}"})
    others = [n for n in pos if n not in graph.stations]
    fig.add_trace(go.Scatter(x=[pos[n][0] for n in others], y=[pos[n][1] for n in others], mode="markers+text",
                             text=[special.get(n, n) for n in others], textposition="top center", showlegend=False,
                             hoverinfo="text", marker={"size": 18, "symbol": "circle", "color": "#f0f0f0",
                                                       "line": {"color": "#555", "width": 1}}))
    station = bottleneck.get("station")
    if station in pos:
        share = bottleneck.get("share")
        fig.add_trace(go.Scatter(
            x=[pos[station][0]], y=[pos[station][1]], mode="markers", showlegend=True,
            name=f"{t('bottleneck', lang)}" + (f" ({t('bottleneck_share', lang, share=f'{share:.0%}')})"
                                               if share is not None else ""),
            marker={"size": 44, "symbol": "square-open", "color": "#000", "line": {"width": 4}}, hoverinfo="skip"))
        notes.append({"x": pos[station][0], "y": pos[station][1], "yshift": -44, "showarrow": False,
                      "text": f"<b>★ {t('bottleneck', lang)}</b>", "font": {"size": 13, "color": "#b42318"}})
    fig.update_layout(annotations=notes)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, range=[min(p[1] for p in pos.values()) - 1, max(p[1] for p in pos.values()) + 1])
    return _layout(fig, t("flow_title", lang), height=460)


def state_breakdown(fractions: dict[str, dict[str, dict[str, Any]]], lang: str) -> go.Figure:
    """Stacked bars: per station, the mean share of the window in each state (states never seen left out)."""
    stations = list(fractions)
    fig = go.Figure()
    for state in STATE_NAMES:
        values = [(fractions[s].get(state, {}).get("mean") or 0.0) * 100 for s in stations]
        if not any(values):
            continue
        fig.add_trace(go.Bar(y=stations, x=values, orientation="h", name=state_name(state, lang),
                             marker={"color": STATE_COLOURS[state]},
                             hovertemplate="%{y}: %{x:.1f} %<extra>" + state_name(state, lang) + "</extra>"))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text=t("share_of_time", lang), range=[0, 100])
    fig.update_yaxes(autorange="reversed", title_text=t("station", lang))
    return _layout(fig, t("states_title", lang), height=max(320, 60 + 34 * len(stations)))


def sankey(flows: list[Flow], stations: list[str], replication: int, lang: str) -> go.Figure:
    """Material flow between the line's entry, its stations, finished goods and scrap; rework (parts sent
    back, also to the station itself) and scrap in red, drawn as loops."""
    special = {ORDERS: t("orders_node", lang), FINISHED: t("finished_node", lang), SCRAP: t("scrap_node", lang)}
    nodes = [ORDERS, *stations, FINISHED, SCRAP]
    index = {n: i for i, n in enumerate(nodes)}
    links = [f for f in flows if f.source in index and f.target in index]
    fig = go.Figure(go.Sankey(
        arrangement="snap", node={"label": [special.get(n, n) for n in nodes], "pad": 18, "thickness": 16},
        link={"source": [index[f.source] for f in links], "target": [index[f.target] for f in links],
              "value": [f.parts for f in links],
              "label": [t("edge_rework", lang) if f.rework else "" for f in links],
              "color": ["rgba(214,39,40,0.55)" if f.rework or f.target == SCRAP else "rgba(120,120,120,0.35)"
                        for f in links]}))
    return _layout(fig, t("sankey_title", lang, rep=replication), height=440)


def _duration(minutes: float, lang: str) -> str:
    if minutes >= 1440 and minutes % 1440 == 0:
        return t("days_short", lang, n=minutes / 1440)
    if minutes >= 60:
        return t("hours_short", lang, n=round(minutes / 60, 2))
    return t("minutes_short", lang, n=round(minutes, 2))


def time_series(series: TimeSeries, replication: int, lang: str) -> go.Figure:
    """WIP, throughput and power over the observation window, one panel each, sharing the time axis."""
    rows = [(series.wip, t("series_wip", lang), unit_name("parts", lang), "#1f77b4"),
            (series.throughput, t("series_throughput", lang), unit_name("per_hour", lang), "#2ca02c"),
            (series.power, t("series_power", lang), unit_name("kw", lang), "#ff7f0e")]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for i, (y, name, unit, colour) in enumerate(rows, start=1):
        fig.add_trace(go.Scatter(x=series.hours, y=y, mode="lines", name=f"{name} ({unit})",
                                 line={"color": colour, "width": 1.5, "shape": "hv"}), row=i, col=1)
        fig.update_yaxes(title_text=f"{name} ({unit})", row=i, col=1)
    fig.update_xaxes(title_text=t("time_hours", lang), row=3, col=1)
    title = t("series_title", lang, rep=replication, bin=_duration(series.bin_minutes, lang))
    return _layout(fig, title, height=620)


def gantt(chart: Gantt, window_start: float, replication: int, start_hour: float, end_hour: float,
          lang: str) -> go.Figure:
    """Horizontal bars per server (``station #k``) coloured by state, hours from the window's start."""
    rows = list(dict.fromkeys(f"{s} #{k + 1}" for s, k, *_ in chart.bars))
    fig = go.Figure()
    for state in STATE_NAMES:
        bars = [b for b in chart.bars if b[4] == state]
        if not bars:
            continue
        fig.add_trace(go.Bar(
            y=[f"{s} #{k + 1}" for s, k, *_ in bars], x=[(b - a) / 60 for _, _, a, b, _ in bars],
            base=[(a - window_start) / 60 for _, _, a, _, _ in bars], orientation="h", name=state_name(state, lang),
            marker={"color": STATE_COLOURS[state], "line": {"width": 0}},
            hovertemplate="%{y}: %{base:.2f} h + %{x:.2f} h<extra>" + state_name(state, lang) + "</extra>"))
    fig.update_layout(barmode="overlay", bargap=0.15)
    fig.update_xaxes(title_text=t("time_hours", lang), range=[start_hour, end_hour])
    fig.update_yaxes(categoryorder="array", categoryarray=rows, autorange="reversed")
    title = t("gantt_title", lang, rep=replication, start=f"{start_hour:g}", end=f"{end_hour:g}")
    if chart.slot_minutes is not None:
        title += t("gantt_aggregated", lang, slot=_duration(chart.slot_minutes, lang))
    return _layout(fig, title, height=max(320, 80 + 26 * len(rows)))


def png_zip(named: dict[str, go.Figure], width: int = 1200, scale: float = 1.0) -> bytes:
    """The figures as PNG files ``<name>.png`` in one zip archive, rendered by kaleido in one browser
    session (kaleido finds the system's Chromium; ``BROWSER_PATH`` points it at another)."""
    import io
    import tempfile
    import zipfile
    from pathlib import Path

    import plotly.io as pio

    with tempfile.TemporaryDirectory(prefix="yuetwin-png-") as folder:
        files = [Path(folder) / f"{name}.png" for name in named]
        pio.write_images(list(named.values()), files, width=width,
                         height=[int(fig.layout.height or 500) for fig in named.values()], scale=scale)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, file.name)
    return buffer.getvalue()
