"""Every KPI the tool reports has its definition in docs/kpis.md."""

from pathlib import Path

from twin.kpi import LINE_KPIS, STATION_KPIS

DOC = (Path(__file__).parents[1] / "docs" / "kpis.md").read_text(encoding="utf-8")


def test_every_kpi_is_documented():
    missing = [k for k in {*LINE_KPIS, *STATION_KPIS} if f"`{k}`" not in DOC]
    assert not missing, f"add these KPIs to docs/kpis.md: {missing}"
