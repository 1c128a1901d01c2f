"""Scenario configuration: the pydantic schema and the file loader. Never imports the engine."""

from twin.config.distributions import Distribution
from twin.config.loader import LoadedScenario, Problem, ScenarioError, load_scenario
from twin.config.scenario import Scenario

__all__ = ["Distribution", "LoadedScenario", "Problem", "Scenario", "ScenarioError", "load_scenario"]
