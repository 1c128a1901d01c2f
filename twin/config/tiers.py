"""Tier presets: named, editable sets of lever values (``twin/tiers/*.yaml``), one per smart-factory tier
(基础级 basic, 先进级 advanced, 卓越级 excellent, 领航级 leading). A scenario may override any lever of any
tier in its ``tiers`` section; a level may also be a path to a preset file of one's own.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twin.config.levers import Levers
from twin.config.loader import Problem, ScenarioError, read_yaml
from twin.config.scenario import Scenario, suggest

PRESET_DIR = Path(__file__).resolve().parents[1] / "tiers"
TIERS = ("basic", "advanced", "excellent", "leading")
AS_IS = "as_is"
"""The level that keeps the scenario's own levers (the factory as it is today)."""


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    en: str
    zh: str


class TierPreset(BaseModel):
    """A tier: what it stands for, the GB/T 39116 level it corresponds to, and its lever values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: Label
    gbt39116_level: int = Field(ge=1, le=5, description="GB/T 39116 capability maturity level (1-5).")
    description: Label
    levers: dict[str, Any] = Field(description="Lever values (see twin.config.levers).")


def load_preset(level: str) -> TierPreset:
    """A named preset (basic, advanced, excellent, leading) or a preset YAML file."""
    path = Path(level) if level.endswith((".yaml", ".yml")) else PRESET_DIR / f"{level}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) + [AS_IS]
        where = str(path) if level.endswith((".yaml", ".yml")) else "--levels"
        raise ScenarioError([Problem(where, "", None, f"no tier '{level}'." + suggest(level, known)
                                     + " Give a tier name or a preset .yaml file.")])
    data, lines = read_yaml(path)
    try:
        preset = TierPreset.model_validate(data)
        Levers.model_validate(preset.levers)
    except ValidationError as exc:
        raise ScenarioError([Problem(str(path), ".".join(str(x) for x in e["loc"]), lines.get(tuple(e["loc"])),
                                     e["msg"]) for e in exc.errors()]) from None
    return preset


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def level_levers(scenario: Scenario, level: str) -> Levers:
    """The levers of ``scenario`` at ``level``: the preset's values with the scenario's overrides for that
    tier; ``as_is`` keeps the scenario's own levers."""
    if level == AS_IS:
        return scenario.levers
    preset = load_preset(level)
    raw = _merge(preset.levers, scenario.tiers.get(preset.name, {}))
    try:
        return Levers.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError([Problem(f"tiers.{preset.name}", ".".join(str(x) for x in e["loc"]), None,
                                     f"{e['msg']} (the preset with this scenario's overrides)")
                             for e in exc.errors()]) from None
