"""Every KPI the tool reports has its definition in docs/kpis.md."""

from pathlib import Path

from twin.kpi import LINE_KPIS, STATION_KPIS

DOC = (Path(__file__).parents[1] / "docs" / "kpis.md").read_text(encoding="utf-8")


def test_every_kpi_is_documented():
    missing = [k for k in {*LINE_KPIS, *STATION_KPIS} if f"`{k}`" not in DOC]
    assert not missing, f"add these KPIs to docs/kpis.md: {missing}"


def test_every_line_kpi_is_defined_in_chinese_too():
    from twin.kpi import LINE_KPIS, LINE_KPIS_ZH

    assert set(LINE_KPIS_ZH) == set(LINE_KPIS)
