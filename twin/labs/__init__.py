"""Training labs: bilingual (zh-CN, en) exercises that run offline on a laptop CPU, each with starter
files, instructions, a checker, a solution and a notebook; ``twin lab`` drives them (see docs/labs.md).

A lab lives in ``twin/labs/labN/``: ``instructions.en.md``, ``instructions.zh.md``, the starter files and
``labN.ipynb`` (copied to the student by ``twin lab start``), ``solution/`` (the files a finished lab
changes, for trainers) and ``__init__.py`` with ``TITLE``, ``MINUTES`` (measured on 2 CPU cores) and
``check(folder) -> list[Finding]``, which checks a student's folder against independent truth (the
engine, the comparison, the physics) and is never handed the solution.
"""

from __future__ import annotations

import csv
import importlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

import twin

LANGUAGES = ("en", "zh")
"""Languages of every lab message: English and simplified Chinese."""
LAB_NUMBERS = (1, 2, 3, 4, 5, 6)
"""The labs that ship, in teaching order."""
RESULT_MARKER = "yuetwin_lab_result"
"""Key that marks a JSON file as a ``twin lab check --result`` file (its value is the format version)."""
_HERE = Path(__file__).parent
_NOT_STARTER = {"solution", "__init__.py", "__pycache__"}

Text = dict[str, str]
"""A message in every language of :data:`LANGUAGES`: ``{"en": ..., "zh": ...}``."""


def text(en: str, zh: str) -> Text:
    """A message in both languages."""
    return {"en": en, "zh": zh}


def read_answer(folder: Path, file: str = "answer.yaml") -> tuple[dict[str, Any], Optional[str]]:
    """The student's answer file in ``folder`` as a mapping (empty if it cannot be read), and what is wrong
    with the file (None if it reads)."""
    path = folder / file
    if not path.exists():
        return {}, f"{file} missing"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return {}, f"{file} is not valid YAML: {exc}"
    return (data, None) if isinstance(data, dict) else ({}, f"{file} has no 'key: value' lines")


def as_number(value: Any) -> Optional[float]:
    """``value`` as a float if the student wrote a number (not ``true``/``false``, not ``TODO``), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def changed_paths(given: Any, starter: Any, path: str = "") -> list[str]:
    """Where a student's data differs from the starter's (both plain data, e.g. ``model_dump(mode="json")``
    of a scenario or a robot cell): dotted paths such as ``stations.test.buffer`` or
    ``obstacles.pad_magazine.center.0``; list items with a ``name`` are named by it, others numbered."""
    if isinstance(given, dict) and isinstance(starter, dict):
        return [p for key in sorted(set(given) | set(starter), key=str)
                for p in changed_paths(given.get(key), starter.get(key), f"{path}.{key}" if path else str(key))]
    if isinstance(given, list) and isinstance(starter, list) and len(given) == len(starter):
        def label(index: int, item: Any) -> str:
            return item["name"] if isinstance(item, dict) and isinstance(item.get("name"), str) else str(index)
        return [p for i, (a, b) in enumerate(zip(given, starter))
                for p in changed_paths(a, b, f"{path}.{label(i, b)}" if path else label(i, b))]
    return [] if given == starter else [path]


def not_checked(names: tuple[str, ...], why: Text, hint: Text) -> list[Finding]:
    """Failed findings for items that cannot be checked because something they need is wrong."""
    return [Finding(name, False, text(f"not checked: {why['en']}", f"未检查：{why['zh']}"), hint) for name in names]


class LabError(ValueError):
    """Bad user input to a lab command (unknown lab, missing folder, ...); the message says the fix."""


@dataclass(frozen=True)
class Finding:
    """One checked item of a student's work: what was checked, whether it holds, and a hint if not."""

    name: str
    """Short stable identifier of the item (a column of the class table), e.g. ``bottleneck``."""
    ok: bool
    message: Text
    """What is right or what is wrong, with the numbers."""
    hint: Optional[Text] = None
    """How to get it right (shown only when ``ok`` is False)."""


@dataclass(frozen=True)
class Lab:
    """A lab's metadata and checker."""

    number: int
    title: Text
    minutes: int
    """Time a student needs on 2 CPU cores (measured; the instructions state the same)."""
    check: Callable[[Path], list[Finding]]

    @property
    def folder(self) -> Path:
        """The lab's shipped files."""
        return _HERE / f"lab{self.number}"


def get_lab(number: int) -> Lab:
    """The lab with this number. Raises :class:`LabError` naming the labs that exist."""
    if number not in LAB_NUMBERS:
        raise LabError(f"lab {number}: no such lab; the labs are {', '.join(map(str, LAB_NUMBERS))} "
                       "(see `twin lab list`)")
    module = importlib.import_module(f"twin.labs.lab{number}")
    return Lab(number, module.TITLE, module.MINUTES, module.check)


def all_labs() -> list[Lab]:
    """Every lab, in teaching order."""
    return [get_lab(n) for n in LAB_NUMBERS]


def check_language(lang: str) -> str:
    """``lang`` if it is one of :data:`LANGUAGES`; else :class:`LabError` naming the choices."""
    if lang not in LANGUAGES:
        raise LabError(f"--lang {lang!r}: use one of {', '.join(LANGUAGES)} (en: English, zh: 中文)")
    return lang


def starter_files(number: int) -> list[Path]:
    """The files ``twin lab start`` copies: instructions, starter files and the notebook."""
    return sorted(p for p in get_lab(number).folder.iterdir() if p.name not in _NOT_STARTER)


def solution_files(number: int) -> list[Path]:
    """The files a finished lab has changed or added, for trainers."""
    return sorted((get_lab(number).folder / "solution").iterdir())


def _copy(files: list[Path], folder: Path, overwrite: bool) -> list[Path]:
    targets = [folder / f.name for f in files]
    clashes = [str(t) for t in targets if t.exists()]
    if clashes and not overwrite:
        raise LabError(f"{folder}: would overwrite {', '.join(clashes)}; choose another folder or add --force")
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in zip(files, targets):
        shutil.copyfile(source, target)
    return targets


def start_lab(number: int, folder: Path, overwrite: bool = False) -> list[Path]:
    """Copy lab ``number``'s instructions, starter files and notebook into ``folder`` (created if
    missing); refuses to overwrite existing files unless ``overwrite``. Returns the files written."""
    return _copy(starter_files(number), folder, overwrite)


def write_solution(number: int, folder: Path, overwrite: bool = False) -> list[Path]:
    """A finished lab in ``folder``: the starter files with the solution files over them."""
    start_lab(number, folder, overwrite)
    return _copy(solution_files(number), folder, overwrite=True)


@dataclass
class CheckReport:
    """The checked items of one student's lab."""

    lab: int
    student: str
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    """Wall-clock time of the check."""

    @property
    def passed(self) -> bool:
        """Every item holds."""
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def score(self) -> float:
        """Fraction of the items that hold (0 to 1)."""
        return sum(f.ok for f in self.findings) / len(self.findings) if self.findings else 0.0

    def to_json(self, lang: str) -> dict[str, Any]:
        """The result file of ``twin lab check --result``."""
        return {
            RESULT_MARKER: 1,
            "lab": self.lab,
            "student": self.student,
            "passed": self.passed,
            "score": round(self.score, 4),
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "version": twin.__version__,
            "items": [{"name": f.name, "ok": f.ok, "message": f.message[lang]} for f in self.findings],
        }


def check_lab(number: int, folder: Path, student: Optional[str] = None) -> CheckReport:
    """Check a student's work on lab ``number`` in ``folder``; ``student`` defaults to the folder's name.
    Raises :class:`LabError` if the folder does not exist."""
    lab = get_lab(number)
    if not folder.is_dir():
        raise LabError(f"{folder}: no such folder; start the lab with `twin lab start {number} {folder}`")
    started = time.perf_counter()
    findings = lab.check(folder)
    return CheckReport(number, student or folder.resolve().name, findings, time.perf_counter() - started)


GATHER_COLUMNS = ("student", "lab", "passed", "score", "failed_items", "checked_at", "file")
"""Columns of the class table and CSV of ``twin lab gather``."""


def gather_results(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The class's result files under ``folder`` (searched recursively), one row per student and lab
    (the latest check wins), sorted by student then lab; and the problems with files that look like
    result files but cannot be read. Raises :class:`LabError` if ``folder`` does not exist."""
    if not folder.is_dir():
        raise LabError(f"{folder}: no such folder; give the folder where the students' result files are")
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    problems = []
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path}: not readable as JSON ({exc}); skipped")
            continue
        if not isinstance(data, dict) or RESULT_MARKER not in data:
            continue
        try:
            row = {"student": str(data["student"]), "lab": int(data["lab"]), "passed": bool(data["passed"]),
                   "score": float(data["score"]),
                   "failed_items": " ".join(i["name"] for i in data["items"] if not i["ok"]),
                   "checked_at": str(data["checked_at"]), "file": str(path)}
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{path}: result file without a valid {exc} field; check the lab again with --result")
            continue
        key = (row["student"], row["lab"])
        if key not in rows or row["checked_at"] >= rows[key]["checked_at"]:
            rows[key] = row
    return [rows[k] for k in sorted(rows)], problems


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """The class table as CSV (UTF-8 with BOM, so Excel shows Chinese names), columns :data:`GATHER_COLUMNS`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=GATHER_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
