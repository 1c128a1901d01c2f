"""Enterprise profile (企业画像, 建档立卡): who the enterprise is, its lines (each a scenario file), the
information systems and equipment it has, the KPIs it reports, the consultant's answers to the maturity
item bank and the subsidies it can use. Pure pydantic: never imports the simulation engine.

Units: rates are fractions (0-1), output parts/hour, energy kWh per unit, lead time minutes, money CNY.
"""

from __future__ import annotations

from typing import Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from twin.config.scenario import Name

Industry = Literal["消费电子", "家电", "汽车", "装备", "服装", "食品", "玩具", "家具", "纺织", "建材", "医药", "化工",
                   "五金", "other"]
INDUSTRIES: tuple[str, ...] = get_args(Industry)
"""Sectors of Guangdong's smart-factory plan (and ``other``)."""
System = Literal["ERP", "MES", "APS", "WMS", "QMS", "EMS", "PLM"]
SYSTEMS: tuple[str, ...] = get_args(System)
"""Information systems an enterprise may have in place."""
LeverName = Literal["scheduling", "information", "maintenance", "quality", "changeover", "energy", "material_flow"]
"""The names of :data:`twin.config.levers.LEVER_NAMES`, as a type."""
AsIs = Literal["scenario", "basic", "advanced", "excellent", "leading"]
REQUIREMENT_SCORES = (1.0, 0.8, 0.5, 0.0)
"""Score of one requirement: fully, largely, partly, not met."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportedKpis(_Model):
    """KPIs the enterprise reports for a line (its own figures; the calibration check compares them
    with the simulated current state). Leave out what is not known."""

    output_per_hour: Optional[float] = Field(None, ge=0, description="Good units per hour (parts/hour).")
    oee: Optional[float] = Field(None, ge=0, le=1, description="Overall equipment effectiveness (fraction).")
    defect_rate: Optional[float] = Field(None, ge=0, le=1, description="Units scrapped or reworked / units "
                                                                      "made (fraction): 1 - first-pass yield.")
    energy_kwh_per_unit: Optional[float] = Field(None, ge=0, description="kWh per good unit.")
    lead_time_minutes: Optional[float] = Field(None, ge=0, description="Order arrival to good unit (minutes).")


class LineProfile(_Model):
    """One production line of the enterprise and the scenario file that models it."""

    name: Name
    scenario: str = Field(description="Scenario YAML of the line, relative to the profile file.")
    as_is: AsIs = Field("scenario", description="Levers of today's line: the scenario's own ('scenario') or "
                                                "a tier preset's (basic, advanced, excellent, leading).")
    reported: ReportedKpis = Field(default_factory=ReportedKpis)


class Voucher(_Model):
    """A subsidy (模型券, 算力券, 技改补贴 ...) offsetting the investment of one lever's upgrade (CNY)."""

    name: str = Field(min_length=1, description="e.g. 模型券 (model voucher), 算力券 (compute voucher).")
    lever: LeverName = Field(description="The lever whose upgrade investment it offsets.")
    amount: float = Field(gt=0, description="CNY; at most the upgrade's investment is offset.")


class EnterpriseProfile(_Model):
    """An enterprise as a consultant profiles it (咨询诊断, 建档立卡)."""

    name: str = Field(min_length=1, description="Enterprise name.")
    industry: Industry
    city: str = ""
    employees: int = Field(ge=1, description="Headcount.")
    annual_revenue_million_cny: Optional[float] = Field(None, ge=0, description="Million CNY per year.")
    products: list[str] = Field(min_length=1, description="Main products.")
    lines: list[LineProfile] = Field(min_length=1)
    systems: list[System] = Field(default_factory=list, description="Information systems in place.")
    equipment_digitised_rate: float = Field(ge=0, le=1, description="Share of key equipment with digital "
                                                                    "control and data (fraction).")
    equipment_networked_rate: float = Field(ge=0, le=1, description="Share of key equipment on the network "
                                                                    "(fraction).")
    answers: dict[str, float] = Field(default_factory=dict, description="Item-bank requirement id -> score "
                                                                        "1, 0.8, 0.5 or 0 (consultant's).")
    vouchers: list[Voucher] = Field(default_factory=list)

    @field_validator("answers")
    @classmethod
    def _scores(cls, answers: dict[str, float]) -> dict[str, float]:
        for key, value in answers.items():
            if value not in REQUIREMENT_SCORES:
                raise ValueError(f"answers.{key}: got {value!r}; a requirement is scored 1, 0.8, 0.5 or 0 "
                                 "(fully, largely, partly, not met): change the value")
        return answers

    @field_validator("systems")
    @classmethod
    def _unique_systems(cls, systems: list[str]) -> list[str]:
        twice = sorted({s for s in systems if systems.count(s) > 1})
        if twice:
            raise ValueError(f"systems: {', '.join(twice)} listed twice; list each system once")
        return systems

    @field_validator("lines")
    @classmethod
    def _unique_lines(cls, lines: list[LineProfile]) -> list[LineProfile]:
        names = [line.name for line in lines]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"lines: the name {', '.join(twice)} is used twice; give each line its own name")
        return lines
