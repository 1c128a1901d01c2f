"""Reading an enterprise profile YAML with the scenario loader's error standards: every problem as
``FILE:LINE: PATH: MESSAGE`` with the bad value and the fix ("did you mean" for unknown names), the line
scenarios checked too, and the answers checked against the item bank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from twin.config.enterprise import EnterpriseProfile
from twin.config.loader import Loc, Problem, ScenarioError, _data_loc, _message, _problem, load_scenario, read_yaml
from twin.config.scenario import suggest
from twin.diagnose.assessment import ItemBank


@dataclass(frozen=True)
class LoadedProfile:
    """A validated profile, its file, and each line's scenario path (absolute)."""

    profile: EnterpriseProfile
    path: Path
    scenario_paths: dict[str, Path]


def _fields_at(loc: Loc) -> list[str]:
    """Field names allowed in the profile mapping at ``loc`` (for "did you mean" on unknown keys)."""
    model: Any = EnterpriseProfile
    for key in loc:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(key)
        inner = field.annotation if field is not None else None
        args = getattr(inner, "__args__", ())
        model = next((a for a in (inner, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def load_profile(path: Union[str, Path], bank: ItemBank) -> LoadedProfile:
    """Read and validate an enterprise profile; raises :class:`ScenarioError` listing every problem,
    including those of the line scenarios it names and answers to requirements the bank lacks."""
    path = Path(path)
    file = str(path)
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file, "", 1, "a profile is a mapping with keys name, industry, employees, "
                                                  "products, lines, ...; see docs/diagnose.md")])
    try:
        profile = EnterpriseProfile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _data_loc(data, tuple(err["loc"]))
            if err["type"] == "extra_forbidden":
                message = f"unknown field '{loc[-1]}'." + (suggest(str(loc[-1]), _fields_at(loc[:-1])) or " Remove it.")
            else:
                message = _message(err, data, loc)
            problems.append(_problem(file, data, lines, loc, message, set()))
        raise ScenarioError(problems) from None
    problems = []
    known = bank.requirement_ids()
    for key in profile.answers:
        if key not in known:
            problems.append(_problem(file, data, lines, ("answers", key),
                                     f"no requirement '{key}' in the item bank." + suggest(key, known), set()))
    scenario_paths = {}
    for index, line in enumerate(profile.lines):
        scenario_path = (path.parent / line.scenario).resolve()
        scenario_paths[line.name] = scenario_path
        if not scenario_path.exists():
            problems.append(_problem(file, data, lines, ("lines", index, "scenario"),
                                     f"scenario file '{line.scenario}' not found (looked for {scenario_path}); "
                                     "give its path relative to the profile", set()))
            continue
        try:
            load_scenario(scenario_path)
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems)
    return LoadedProfile(profile, path, scenario_paths)
