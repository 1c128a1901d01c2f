"""Reading an enterprise profile YAML with the scenario loader's error standards: every problem as
``FILE:LINE: PATH: MESSAGE`` with the bad value and the fix ("did you mean" for unknown names), the line
scenarios checked too, and the answers checked against the item bank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

from pydantic import ValidationError

from twin.config.enterprise import EnterpriseProfile
from twin.config.loader import ScenarioError, load_scenario, located_problem, read_mapping, validation_problems
from twin.config.scenario import suggest
from twin.diagnose.assessment import ItemBank


@dataclass(frozen=True)
class LoadedProfile:
    """A validated profile, its file, and each line's scenario path (absolute)."""

    profile: EnterpriseProfile
    path: Path
    scenario_paths: dict[str, Path]


def load_profile(path: Union[str, Path], bank: ItemBank) -> LoadedProfile:
    """Read and validate an enterprise profile; raises :class:`ScenarioError` listing every problem,
    including those of the line scenarios it names and answers to requirements the bank lacks."""
    path = Path(path)
    file = str(path)
    data, lines = read_mapping(path, "a profile is a mapping with keys name, industry, employees, products, "
                                     "lines, ...; see docs/diagnose.md")
    try:
        profile = EnterpriseProfile.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc, data, lines, file, root=EnterpriseProfile)) from None
    problems = []
    known = bank.requirement_ids()
    for key in profile.answers:
        if key not in known:
            problems.append(located_problem(file, data, lines, ("answers", key),
                                            f"no requirement '{key}' in the item bank." + suggest(key, known)))
    scenario_paths = {}
    for index, line in enumerate(profile.lines):
        scenario_path = (path.parent / line.scenario).resolve()
        scenario_paths[line.name] = scenario_path
        if not scenario_path.exists():
            problems.append(located_problem(file, data, lines, ("lines", index, "scenario"),
                                            f"scenario file '{line.scenario}' not found (looked for "
                                            f"{scenario_path}); give its path relative to the profile"))
            continue
        try:
            load_scenario(scenario_path)
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems)
    return LoadedProfile(profile, path, scenario_paths)
