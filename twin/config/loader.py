"""Reading scenario files: YAML with line numbers, ``--set`` overrides, and errors people can act on.

Every problem is reported as ``FILE:LINE: PATH: MESSAGE`` where PATH names list items by their ``name``
(``stations[reflow].buffer``), the message states the bad value and how to fix it, with "did you mean"
for unknown names.
"""

from __future__ import annotations

import csv
import hashlib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ValidationError

from twin.config.scenario import Scenario, ScenarioReferenceError, ScheduledOrder, suggest

Loc = tuple[Union[str, int], ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    path: str
    line: Optional[int]
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(Exception):
    """A scenario (or a file it refers to) is invalid. ``problems`` lists every issue found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from."""

    scenario: Scenario
    path: Path
    sha256: str
    """Hash of the validated scenario (after overrides), so results name exactly what was run."""


# ------------------------------------------------------------------------------------------ YAML
class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so keys such as ``off`` and ``on`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _line_index(node: yaml.Node, prefix: Loc, out: dict[Loc, int]) -> None:
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[prefix + (k,)] = key.start_mark.line + 1
            _line_index(value, prefix + (k,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, prefix + (i,), out)


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from data path to line number (1-based)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(name, "", None, "file not found; check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, "", None, f"cannot read the file ({exc})")]) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(name, "", line, f"YAML syntax error: {problem}; fix the syntax")]) from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_index(node, (), lines)
    return data, lines


# ------------------------------------------------------------------------------------------ paths
def _pretty(data: Any, loc: Loc) -> str:
    """Format a data path, naming list items by their ``name`` key: ``stations[oven].batch.size``."""
    out = ""
    cur = data
    for key in loc:
        if isinstance(key, int):
            name = cur[key].get("name") if isinstance(cur, list) and key < len(cur) and isinstance(cur[key], dict) else None
            out += f"[{name}]" if name else f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            cur = None
    return out


def _data_loc(data: Any, loc: Loc) -> Loc:
    """Drop the entries pydantic adds to a location (union tags, validator names) that are not data keys."""
    out: list[Union[str, int]] = []
    cur = data
    for i, key in enumerate(loc):
        if isinstance(cur, dict) and key in cur:
            out.append(key)
            cur = cur[key]
        elif isinstance(cur, list) and isinstance(key, int) and key < len(cur):
            out.append(key)
            cur = cur[key]
        elif i == len(loc) - 1 and isinstance(cur, dict) and isinstance(key, str) and not key.startswith(("function", "literal")):
            out.append(key)  # a missing or unknown field
    return tuple(out)


def _lookup(data: Any, loc: Loc) -> Any:
    cur = data
    for key in loc:
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _model_fields_at(data: Any, loc: Loc, root: type[BaseModel] = Scenario) -> list[str]:
    """Names of the fields allowed in the mapping at ``loc`` of a ``root`` document (for "did you mean" on
    unknown keys)."""
    model: Any = root
    cur = data
    for key in loc:
        if isinstance(key, int):
            cur = cur[key] if isinstance(cur, list) and key < len(cur) else None
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)
        if field is None:
            return []
        cur = cur.get(key) if isinstance(cur, dict) else None
        model = _pick_model(field.annotation, cur)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items()]
    return []


def _pick_model(annotation: Any, value: Any) -> Any:
    """The pydantic model inside ``annotation`` that ``value`` is meant to be (by its dist/type tag)."""
    candidates: list[type] = []

    def walk(t: Any) -> None:
        if isinstance(t, type) and issubclass(t, BaseModel):
            candidates.append(t)
        for arg in typing.get_args(t):
            walk(arg)

    walk(annotation)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if isinstance(value, dict):
        for model in candidates:
            for tag in ("dist", "type"):
                field = model.model_fields.get(tag)
                if field is not None and value.get(tag) in typing.get_args(field.annotation):
                    return model
    return None


# ------------------------------------------------------------------------------------------ messages
def _message(err: dict, data: Any, loc: Loc, root: type[BaseModel] = Scenario) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        field = loc[-1] if loc else "?"
        known = _model_fields_at(data, loc[:-1], root)
        return f"unknown field '{field}'." + (suggest(str(field), known) or " Remove it.")
    if kind == "missing":
        return f"required field '{loc[-1]}' is missing; add it"
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']+)'", str(ctx.get("expected_tags", "")))
        return f"'{ctx.get('tag')}' is not a known {ctx.get('discriminator', 'kind').strip(chr(39))}." + suggest(
            str(ctx.get("tag")), tags)
    if kind == "union_tag_not_found":
        return f"needs a '{str(ctx.get('discriminator', '')).strip(chr(39))}' key naming its kind"
    if kind == "literal_error":
        choices = re.findall(r"'([^']+)'", str(ctx.get("expected", "")))
        return f"got {value!r}." + (suggest(str(value), choices) if isinstance(value, str) else "") + (
            f" Allowed: {', '.join(choices)}." if choices else "")
    msg = err["msg"].removeprefix("Value error, ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short",
                "too_long", "string_pattern_mismatch", "int_parsing", "float_parsing", "int_from_float",
                "bool_parsing", "string_type", "dict_type", "list_type", "model_type", "int_type",
                "float_type"):
        return f"got {value!r}: {msg.lower()}; change the value"
    return msg


def validation_problems(exc: ValidationError, data: Any, lines: dict[Loc, int], file: str,
                        overridden: frozenset[Loc] = frozenset(), root: type[BaseModel] = Scenario) -> list[Problem]:
    """The problems of a pydantic validation of the ``root`` document ``data`` read from ``file``, each
    located at its line, with the bad value and the fix."""
    out = []
    for err in exc.errors():
        loc = _data_loc(data, tuple(err["loc"]))
        out.append(located_problem(file, data, lines, loc, _message(err, data, loc, root), overridden))
    return out


def located_problem(file: str, data: Any, lines: dict[Loc, int], loc: Loc, message: str,
                    overridden: Union[set[Loc], frozenset[Loc]] = frozenset()) -> Problem:
    """A problem at data location ``loc`` of ``file``, with its line number (or marked as coming from a
    ``--set`` override)."""
    if any(loc[: len(o)] == o for o in overridden):
        return Problem(f"{file} (--set)", _pretty(data, loc), None, message)
    line = None
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            line = lines[loc[:cut]]
            break
    return Problem(file, _pretty(data, loc), line, message)


# ------------------------------------------------------------------------------------------ --set
def apply_override(data: Any, assignment: str, file: str) -> Loc:
    """Apply ``path=value`` to raw scenario data in place; list items are addressed by name or index.

    Returns the data path that was set. Values are parsed as YAML (``5``, ``true``, ``{dist: ...}``).
    """
    if "=" not in assignment:
        raise ScenarioError([Problem(f"{file} (--set)", assignment, None,
                                     "expected PATH=VALUE, e.g. stations.oven.servers=2")])
    path_text, value_text = assignment.split("=", 1)
    try:
        value = yaml.load(value_text, Loader=_Loader)
    except yaml.YAMLError:
        value = value_text
    keys = [k for k in path_text.strip().split(".") if k]
    if not keys:
        raise ScenarioError([Problem(f"{file} (--set)", assignment, None, "empty path before '='")])
    cur = data
    loc: list[Union[str, int]] = []
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(cur, list):
            names = [item.get("name") for item in cur if isinstance(item, dict)]
            if key in names:
                index = names.index(key)
            elif key.isdigit() and int(key) < len(cur):
                index = int(key)
            else:
                raise ScenarioError([Problem(f"{file} (--set)", ".".join(keys[: depth + 1]), None,
                                             f"no item '{key}' here." + suggest(key, [n for n in names if n]))])
            loc.append(index)
            if last:
                cur[index] = value
            else:
                cur = cur[index]
        elif isinstance(cur, dict):
            loc.append(key)
            if last:
                cur[key] = value
            elif key in cur and isinstance(cur[key], (dict, list)):
                cur = cur[key]
            elif key not in cur:
                known = _model_fields_at(data, tuple(loc[:-1])) or list(cur)
                if key not in known:
                    raise ScenarioError([Problem(f"{file} (--set)", ".".join(keys[: depth + 1]), None,
                                                 f"unknown field '{key}'." + suggest(key, known))])
                cur[key] = {}
                cur = cur[key]
            else:
                cur[key] = {}
                cur = cur[key]
        else:
            raise ScenarioError([Problem(f"{file} (--set)", ".".join(keys[:depth]), None,
                                         f"{cur!r} has no field '{key}'")])
    return tuple(loc)


# ------------------------------------------------------------------------------------------ orders CSV
def read_orders_csv(path: Path, products: list[str]) -> list[ScheduledOrder]:
    """Read orders from a CSV with columns ``time,product,quantity[,due]`` (minutes)."""
    name = str(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError:
        raise ScenarioError([Problem(name, "", None, "orders CSV not found; check orders.arrivals.file")]) from None
    problems: list[Problem] = []
    orders: list[ScheduledOrder] = []
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for col in ("time", "product"):
            if col not in header:
                raise ScenarioError([Problem(name, "", 1, f"missing column '{col}'." + suggest(col, header)
                                             + " The header must be time,product,quantity[,due]")])
        for row_no, row in enumerate(reader, start=2):
            try:
                order = ScheduledOrder(time=float(row["time"]), product=row["product"].strip(),
                                       quantity=int(row.get("quantity") or 1),
                                       due=float(row["due"]) if row.get("due") else None)
            except (ValueError, ValidationError) as exc:
                problems.append(Problem(name, f"row {row_no}", row_no, f"bad value in {dict(row)}: "
                                        f"{str(exc).splitlines()[-1].strip()}; fix the row"))
                continue
            if order.product not in products:
                problems.append(Problem(name, f"row {row_no}.product", row_no,
                                        f"unknown product '{order.product}'." + suggest(order.product, products)))
            orders.append(order)
    if problems:
        raise ScenarioError(problems)
    return sorted(orders, key=lambda o: o.time)


# ------------------------------------------------------------------------------------------ entry point
def read_mapping(path: Path, what: str) -> tuple[dict, dict[Loc, int]]:
    """A YAML document that must be a mapping, and its line numbers; ScenarioError saying ``what`` it
    should be otherwise."""
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError([Problem(str(path), "", 1, what)])
    return data, lines


def load_scenario(path: Union[str, Path], overrides: Optional[list[str]] = None) -> LoadedScenario:
    """Read, override and validate a scenario file. Raises :class:`ScenarioError` listing every problem."""
    path = Path(path)
    file = str(path)
    data, lines = read_mapping(path, "a scenario is a mapping with keys name, run, products, stations, orders; "
                                     "see `twin schema`")
    overridden = {apply_override(data, a, file) for a in overrides or []}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc, data, lines, file, overridden)) from None
    except ScenarioReferenceError as exc:
        raise ScenarioError([located_problem(file, data, lines, loc, msg, overridden)
                             for loc, _, msg in exc.problems]) from None
    arrivals = scenario.orders.arrivals
    if arrivals.type == "csv":
        csv_path = (path.parent / arrivals.file).resolve()
        read_orders_csv(csv_path, [p.name for p in scenario.products])
        scenario = scenario.model_copy(update={"orders": scenario.orders.model_copy(
            update={"arrivals": arrivals.model_copy(update={"file": str(csv_path)})})})
    stations = []
    for st in scenario.stations:  # a robot's own URDF, given relative to the scenario file
        robot = st.robot
        if robot is not None and robot.model == "urdf" and robot.urdf and not Path(robot.urdf).expanduser().is_absolute():
            st = st.model_copy(update={"robot": robot.model_copy(update={"urdf": str((path.parent / robot.urdf).resolve())})})
        stations.append(st)
    scenario = scenario.model_copy(update={"stations": stations})
    digest = hashlib.sha256(scenario.model_dump_json(by_alias=True).encode()).hexdigest()
    return LoadedScenario(scenario=scenario, path=path, sha256=digest)

