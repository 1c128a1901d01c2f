"""The diagnosis report (诊断报告): profile card, maturity radar by sub-domain, level and tier eligibility,
gaps, the simulated roadmap with charts, KPI definitions and assumptions, in Chinese or English.

The content is built once as a list of blocks (headings, paragraphs, tables, PNG charts) and written as a
self-contained HTML file (charts inlined as base64) or a PDF (reportlab; text extractable). Charts are
static plotly images rendered by kaleido. Nothing leaves the machine.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import plotly.graph_objects as go

from twin.config.enterprise import EnterpriseProfile
from twin.config.tiers import load_preset
from twin.diagnose.assessment import Assessment, ItemBank, blocker_text
from twin.diagnose.roadmap import CALIBRATED_KPIS, Roadmap
from twin.kpi import LINE_KPIS, LINE_KPIS_ZH

LANGS = ("zh", "en")
TEXT: dict[str, dict[str, str]] = {
    "title": {"en": "Smart-manufacturing diagnosis", "zh": "智能制造诊断报告"},
    "profile": {"en": "Enterprise profile", "zh": "企业画像"},
    "industry": {"en": "Industry", "zh": "行业"}, "city": {"en": "City", "zh": "城市"},
    "employees": {"en": "Employees", "zh": "员工人数"},
    "revenue": {"en": "Revenue (million CNY/year)", "zh": "年营收（百万元）"},
    "products": {"en": "Products", "zh": "主要产品"}, "lines": {"en": "Lines", "zh": "产线"},
    "systems": {"en": "Information systems", "zh": "信息系统"},
    "digitised": {"en": "Key equipment digitised", "zh": "关键设备数字化率"},
    "networked": {"en": "Equipment networked", "zh": "设备联网率"},
    "maturity": {"en": "Maturity (GB/T 39116)", "zh": "成熟度（GB/T 39116）"},
    "score_line": {"en": "Overall score S = {score:.2f}: maturity level {level} (levels reached in a row: {reached}).",
                   "zh": "综合得分 S = {score:.2f}：成熟度等级 {level}（逐级达到的等级：{reached}）。"},
    "level": {"en": "Level", "zh": "等级"}, "level_score": {"en": "Level score", "zh": "等级得分"},
    "radar": {"en": "Score by sub-domain", "zh": "各能力子域得分"},
    "tier": {"en": "MIIT smart-factory tier", "zh": "智能工厂梯度培育层级"},
    "tier_line": {"en": "May apply for: {tier}.", "zh": "可申报：{tier}。"},
    "none": {"en": "none yet", "zh": "暂不满足"},
    "blocks": {"en": "What blocks {tier}:", "zh": "申报{tier}的差距："},
    "gaps": {"en": "Gaps", "zh": "差距项"}, "requirement": {"en": "Requirement", "zh": "要求"},
    "score": {"en": "Score", "zh": "得分"}, "lever": {"en": "Simulated by", "zh": "仿真杠杆"},
    "roadmap": {"en": "Simulated roadmap", "zh": "升级路线仿真"},
    "roadmap_line": {"en": "Line {line} (scenario {scenario}): {reps} replications, seed {seed}, common random "
                             "numbers; changes against today with 95% confidence intervals.",
                     "zh": "产线 {line}（场景 {scenario}）：{reps} 次重复仿真，随机种子 {seed}，公共随机数；"
                           "相对现状的变化及 95% 置信区间。"},
    "option": {"en": "Upgrade", "zh": "升级项"}, "investment": {"en": "Investment after vouchers (CNY)",
                                                               "zh": "扣除补贴券后投资（元）"},
    "payback": {"en": "Payback (years)", "zh": "回收期（年）"},
    "gain": {"en": "Throughput gain (parts/h)", "zh": "产出增加（件/小时）"},
    "lead": {"en": "Lead-time change (min)", "zh": "交付周期变化（分钟）"},
    "never": {"en": "does not pay back", "zh": "无法回收"},
    "gain_chart": {"en": "Throughput gain against today (parts/h, 95% CI)", "zh": "相对现状的产出增加（件/小时，95% 置信区间）"},
    "not_represented": {"en": "Not represented on this line (no effect in the model): {names}.",
                        "zh": "本产线模型中无法体现（无作用）：{names}。"},
    "calibration": {"en": "Calibration: simulated today against reported", "zh": "校准：现状仿真与企业上报指标对比"},
    "kpi": {"en": "KPI", "zh": "指标"}, "reported": {"en": "Reported", "zh": "上报"},
    "simulated": {"en": "Simulated", "zh": "仿真"}, "mismatch": {"en": "Mismatch", "zh": "偏差"},
    "flag": {"en": "LARGE MISMATCH: check the scenario before trusting the roadmap",
             "zh": "偏差过大：请先校核场景模型再采信路线图"},
    "ok": {"en": "ok", "zh": "正常"},
    "definitions": {"en": "KPI definitions (ISO 22400)", "zh": "指标定义（ISO 22400）"},
    "assumptions": {"en": "Assumptions", "zh": "假设与说明"},
    "assume_costs": {"en": "Investment and running costs are the tier presets' illustrative figures "
                             "(twin/tiers/*.yaml): replace them with quotations.",
                     "zh": "投资与运行成本取自层级预设的示意值（twin/tiers/*.yaml），请以实际报价替换。"},
    "assume_payback": {"en": "Payback = extra investment / (extra margin from good output - extra running and energy "
                               "costs) per year, with the line scenario's economics: where output is bound by demand, "
                               "gains in lead time or WIP do not pay back in this measure.",
                       "zh": "回收期 = 新增投资 /（良品增产带来的年边际贡献 − 新增运行与能源成本），经济参数取自产线场景；"
                             "产出受订单需求限制时，交付周期或在制品的改善不计入回收。"},
    "assume_vouchers": {"en": "Vouchers offset the investment of the lever they name: {items}.",
                        "zh": "补贴券抵扣所指杠杆的投资：{items}。"},
    "assume_local": {"en": "Generated on this machine; no enterprise data was sent anywhere.",
                     "zh": "本报告在本机生成，企业数据未上传。"},
}


def t(key: str, lang: str, **values: object) -> str:
    """The report text ``key`` in ``lang`` (zh or en), formatted with ``values``."""
    return TEXT[key][lang].format(**values)


@dataclass(frozen=True)
class Block:
    """One piece of the report: ``kind`` is h1, h2, p, table (``rows``, the first is the header) or img."""

    kind: str
    text: str = ""
    rows: tuple[tuple[str, ...], ...] = ()
    png: bytes = b""


def radar_figure(bank: ItemBank, subdomain_scores: dict[str, float], lang: str) -> go.Figure:
    """The maturity radar: each sub-domain's mean requirement score (0-1), labelled in ``lang``."""
    labels = [getattr(s, lang) for s in bank.subdomains]
    values = [subdomain_scores[s.id] for s in bank.subdomains]
    radar = go.Figure(go.Scatterpolar(r=values + values[:1], theta=labels + labels[:1], fill="toself"))
    radar.update_layout(title=t("radar", lang), polar=dict(radialaxis=dict(range=[0, 1])), showlegend=False)
    return radar


def _png(fig: go.Figure) -> bytes:
    fig.update_layout(width=760, height=420, margin=dict(l=40, r=40, t=50, b=40), font=dict(size=12),
                      template="plotly_white")
    return fig.to_image(format="png", scale=1.5)


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _ci(estimate: dict) -> str:
    if estimate["mean"] is None:
        return "-"
    if estimate["ci_low"] is None:
        return f"{estimate['mean']:.2f}"
    return f"{estimate['mean']:.2f} [{estimate['ci_low']:.2f}, {estimate['ci_high']:.2f}]"


HIDEABLE = ("city", "employees", "revenue", "products", "systems", "rates", "gaps", "calibration", "vouchers")
"""Parts of the report the consultant may leave out (``--hide``): nothing else about the enterprise is in it."""


def build_blocks(profile: EnterpriseProfile, assessment: Assessment, bank: ItemBank, roadmap: Optional[Roadmap],
                 lang: str, hide: frozenset[str] = frozenset()) -> list[Block]:
    """The report's content in ``lang``, without the parts named in ``hide`` (see :data:`HIDEABLE`)."""
    p = profile
    card = (("industry", t("industry", lang), p.industry), ("city", t("city", lang), p.city or "-"),
            ("employees", t("employees", lang), str(p.employees)),
            ("revenue", t("revenue", lang),
             "-" if p.annual_revenue_million_cny is None else f"{p.annual_revenue_million_cny:g}"),
            ("products", t("products", lang), ", ".join(p.products)),
            ("lines", t("lines", lang), ", ".join(line.name for line in p.lines)),
            ("systems", t("systems", lang), ", ".join(p.systems) or "-"),
            ("rates", t("digitised", lang), f"{p.equipment_digitised_rate:.0%}"),
            ("rates", t("networked", lang), f"{p.equipment_networked_rate:.0%}"))
    blocks = [Block("h1", f"{t('title', lang)}: {p.name}"), Block("h2", t("profile", lang)),
              Block("table", rows=tuple((label, value) for key, label, value in card if key not in hide))]
    blocks += [Block("h2", t("maturity", lang)),
               Block("p", t("score_line", lang, score=assessment.score, level=assessment.level,
                            reached=assessment.levels_reached)),
               Block("table", rows=((t("level", lang), *map(str, assessment.level_scores)),
                                    (t("level_score", lang), *(f"{v:.3f}" for v in assessment.level_scores.values()))))]
    blocks.append(Block("img", t("radar", lang), png=_png(radar_figure(bank, assessment.subdomain_scores, lang))))
    tier = getattr(load_preset(assessment.tier).label, lang) if assessment.tier else t("none", lang)
    blocks += [Block("h2", t("tier", lang)), Block("p", t("tier_line", lang, tier=tier))]
    if assessment.next_tier:
        blocks.append(Block("p", t("blocks", lang, tier=getattr(load_preset(assessment.next_tier).label, lang))
                            + " " + "; ".join(blocker_text(b, lang) for b in assessment.blockers)))
    if "gaps" not in hide:
        header = ("ID", t("level", lang), t("requirement", lang), t("score", lang), t("lever", lang))
        rows = tuple((g.requirement.id, str(g.requirement.level), getattr(g.requirement, lang), f"{g.score:g}",
                      f"{g.requirement.lever}@{g.requirement.tier}" if g.requirement.lever else "-")
                     for g in assessment.gaps)
        blocks += [Block("h2", t("gaps", lang)), Block("table", rows=(header, *rows))]
    if roadmap is not None:
        blocks += _roadmap_blocks(roadmap, lang, "calibration" in hide)
    used = ["throughput_per_hour", "lead_time_mean", "oee"] + [kpi for _, kpi in CALIBRATED_KPIS]
    blocks += [Block("h2", t("definitions", lang)),
               Block("table", rows=tuple((k, (LINE_KPIS_ZH if lang == "zh" else LINE_KPIS)[k])
                                         for k in dict.fromkeys(used)))]
    blocks += [Block("h2", t("assumptions", lang)), Block("p", bank.to_check), Block("p", t("assume_costs", lang)),
               Block("p", t("assume_payback", lang))]
    if "vouchers" not in hide:
        vouchers = ", ".join(f"{v.name} ({v.lever}, {_money(v.amount)} CNY)" for v in profile.vouchers) or "-"
        blocks.append(Block("p", t("assume_vouchers", lang, items=vouchers)))
    blocks.append(Block("p", t("assume_local", lang)))
    return blocks


def _roadmap_blocks(roadmap: Roadmap, lang: str, hide_calibration: bool) -> list[Block]:
    blocks = [Block("h2", t("roadmap", lang)),
              Block("p", t("roadmap_line", lang, line=roadmap.line, scenario=roadmap.scenario,
                           reps=roadmap.replications, seed=roadmap.seed))]
    options = roadmap.by_payback()
    blocks.append(Block("table", rows=(
        (t("option", lang), t("investment", lang), t("payback", lang), t("gain", lang), t("lead", lang)),
        *((o["variant"], _money(o["investment"]),
           t("never", lang) if o["payback_years"] is None else f"{o['payback_years']:.1f}",
           _ci(o["throughput_gain"]), _ci(o["lead_time_change"])) for o in options))))
    if options:
        ranked = roadmap.by_gain()
        means = [o["throughput_gain"]["mean"] or 0.0 for o in ranked]
        highs = [(o["throughput_gain"]["ci_high"] or m) - m for o, m in zip(ranked, means)]
        lows = [m - (o["throughput_gain"]["ci_low"] or m) for o, m in zip(ranked, means)]
        bar = go.Figure(go.Bar(x=[o["variant"] for o in ranked], y=means,
                               error_y=dict(type="data", array=highs, arrayminus=lows)))
        bar.update_layout(title=t("gain_chart", lang))
        blocks.append(Block("img", t("gain_chart", lang), png=_png(bar)))
    if roadmap.not_represented:
        blocks.append(Block("p", t("not_represented", lang, names=", ".join(roadmap.not_represented))))
    if roadmap.calibration and not hide_calibration:
        blocks += [Block("h2", t("calibration", lang)), Block("table", rows=(
            (t("kpi", lang), t("reported", lang), t("simulated", lang), t("mismatch", lang), ""),
            *((c["kpi"], f"{c['reported']:g}", f"{c['simulated']:.3g}", f"{c['mismatch']:.0%}",
               t("flag", lang) if c["flagged"] else t("ok", lang)) for c in roadmap.calibration)))]
    return blocks


def to_html(blocks: list[Block], lang: str) -> str:
    """A self-contained HTML page (inline CSS, charts as base64 PNG)."""
    body = []
    for block in blocks:
        if block.kind in ("h1", "h2", "p"):
            body.append(f"<{block.kind}>{html.escape(block.text)}</{block.kind}>")
        elif block.kind == "table":
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                           for row in block.rows)
            body.append(f"<table>{rows}</table>")
        else:
            data = base64.b64encode(block.png).decode()
            body.append(f'<img alt="{html.escape(block.text)}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
             "table{border-collapse:collapse;margin:.5rem 0}td{border:1px solid #ccc;padding:.25rem .5rem}"
             "tr:first-child td{font-weight:bold}img{max-width:100%}")
    title = html.escape(blocks[0].text if blocks else "")
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def to_pdf(blocks: list[Block]) -> bytes:
    """A PDF of the blocks (A4, reportlab, the CID font STSong-Light for Chinese and Latin text)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    styles = getSampleStyleSheet()
    for name in ("Title", "Heading2", "BodyText"):
        styles[name].fontName = "STSong-Light"
        styles[name].wordWrap = "CJK"
    width = A4[0] - 4 * cm
    story: list = []
    for block in blocks:
        if block.kind in ("h1", "h2", "p"):
            style = {"h1": "Title", "h2": "Heading2", "p": "BodyText"}[block.kind]
            story.append(Paragraph(html.escape(block.text), styles[style]))
        elif block.kind == "table":
            cells = [[Paragraph(html.escape(cell), styles["BodyText"]) for cell in row] for row in block.rows]
            table = Table(cells, colWidths=[width / len(block.rows[0])] * len(block.rows[0]))
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey)]))
            story += [table, Spacer(1, 6)]
        else:
            image = Image(io.BytesIO(block.png))
            image.drawWidth, image.drawHeight = width, width * image.imageHeight / image.imageWidth
            story.append(image)
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm).build(story)
    return buffer.getvalue()


def write_report(path: Union[str, Path], blocks: list[Block], lang: str) -> Path:
    """Write the report as HTML or PDF, by the suffix of ``path`` (.html, .htm or .pdf)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".pdf":
        path.write_bytes(to_pdf(blocks))
    else:
        path.write_text(to_html(blocks, lang), encoding="utf-8")
    return path
