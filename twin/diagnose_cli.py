"""``twin diagnose``: profile an enterprise (``init``), assess its maturity (``assess``) and write the
diagnosis report with the simulated roadmap (``report``). Everything runs and stays on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import typer
import yaml
from rich.table import Table

from twin.config.enterprise import INDUSTRIES, SYSTEMS
from twin.config.loader import ScenarioError
from twin.config.scenario import suggest
from twin.console import err, fail, out, progress_bar, save_json, warn, write_json
from twin.diagnose.assessment import Assessment, ItemBank, blocker_text, load_bank
from twin.diagnose.assessment import assess as assess_profile
from twin.diagnose.profile import LoadedProfile, load_profile
from twin.diagnose.report import HIDEABLE, LANGS, build_blocks, write_report
from twin.diagnose.roadmap import Roadmap, simulate_roadmap
from twin.store import DEFAULT_STORE, ResultStore, StoreError
from twin.store_cli import _STORE_HELP, _open

diagnose_app = typer.Typer(add_completion=False, no_args_is_help=True,
                           help="Consultant diagnostics: enterprise profile, maturity assessment, roadmap report.")

BANK_OPTION = typer.Option(None, "--bank", help="Item bank YAML (default: the bundled twin/diagnose/bank.yaml).")
STORE_OPTION = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP)
KEEP_OPTION = typer.Option(True, "--keep/--no-keep", help="Keep the profile and results in the store.")


def _keep(store: Path, loaded: LoadedProfile, assessment: Assessment, roadmap: Optional[Roadmap] = None,
          report: Optional[dict[str, Any]] = None) -> None:
    """Keep the profile, the assessment and (if given) the roadmap and the report record in ``store``."""
    name = loaded.profile.name
    try:
        db = ResultStore(store)
        db.add_enterprise_record(name, "profile", loaded.path.read_text(encoding="utf-8"))
        db.add_enterprise_record(name, "assessment", json.dumps(assessment.to_json(), ensure_ascii=False))
        if roadmap is not None:
            db.add_enterprise_record(name, "roadmap", json.dumps(roadmap.to_json(), ensure_ascii=False))
        if report is not None:
            db.add_enterprise_record(name, "report", json.dumps(report, ensure_ascii=False))
    except StoreError as exc:
        fail([str(exc)])


def _load(profile: Path, bank_path: Optional[Path]) -> tuple[LoadedProfile, ItemBank, Assessment]:
    try:
        bank = load_bank(bank_path) if bank_path else load_bank()
        loaded = load_profile(profile, bank)
    except ScenarioError as exc:
        fail([str(p) for p in exc.problems])
    return loaded, bank, assess_profile(loaded.profile, bank)


def _print_assessment(name: str, assessment: Assessment) -> None:
    console = out()
    console.print(f"[bold]{name}[/]: S = {assessment.score:.2f}, maturity level {assessment.level} "
                  f"(levels reached in a row: {assessment.levels_reached})", highlight=False)
    table = Table("level", "score (0-1)")
    for level, score in assessment.level_scores.items():
        table.add_row(str(level), f"{score:.3f}")
    console.print(table)
    console.print(f"MIIT tier it may apply for: {assessment.tier or 'none yet'}", highlight=False)
    if assessment.next_tier:
        blockers = "; ".join(blocker_text(b, "en") for b in assessment.blockers)
        console.print(f"blocking {assessment.next_tier}: {blockers}", highlight=False)
    console.print("candidate upgrades to simulate: " + (", ".join(
        f"{c.lever}@{c.tier} ({', '.join(c.requirements)})" for c in assessment.candidates) or "none"), highlight=False)


@diagnose_app.command()
def assess(profile: Path = typer.Argument(..., help="Enterprise profile YAML."),
           json_out: Optional[Path] = typer.Option(None, "--json", help="Write the assessment as JSON."),
           bank: Optional[Path] = BANK_OPTION, store: Path = STORE_OPTION, keep: bool = KEEP_OPTION) -> None:
    """Score the profile against the item bank: level scores, S, maturity level, MIIT tier, gaps."""
    loaded, _, assessment = _load(profile, bank)
    _print_assessment(loaded.profile.name, assessment)
    if keep:
        _keep(store, loaded, assessment)
    save_json(json_out, {"enterprise": loaded.profile.name, "assessment": assessment.to_json()}, "diagnose")


@diagnose_app.command()
def report(profile: Path = typer.Argument(..., help="Enterprise profile YAML."),
           out_path: Path = typer.Option(..., "--out", help="report.html or report.pdf"),
           lang: str = typer.Option("zh", "--lang", help="zh or en."),
           line: Optional[str] = typer.Option(None, "--line", help="Line to simulate (default: the first)."),
           reps: int = typer.Option(3, "--reps", min=1, help="Replications per variant."),
           seed: int = typer.Option(42, "--seed"),
           workers: int = typer.Option(1, "--workers", min=1, help="Local processes."),
           overrides: Optional[list[str]] = typer.Option(None, "--set", help="PATH=VALUE change to the line "
                                                                            "scenario, e.g. run.length=10080."),
           simulate: bool = typer.Option(True, "--simulate/--no-simulate", help="Include the roadmap simulation."),
           hide: Optional[list[str]] = typer.Option(None, "--hide", help=f"Leave a part out of the report "
                                                                           f"(repeatable): {', '.join(HIDEABLE)}."),
           bank: Optional[Path] = BANK_OPTION, store: Path = STORE_OPTION, keep: bool = KEEP_OPTION) -> None:
    """Write the diagnosis report (HTML or PDF by the --out suffix), with the simulated roadmap."""
    if lang not in LANGS:
        fail([f"--lang: got '{lang}'." + suggest(lang, list(LANGS)) + " Use zh or en."])
    if out_path.suffix.lower() not in (".html", ".htm", ".pdf"):
        fail([f"--out {out_path}: the report is written as .html or .pdf; change the suffix"])
    unknown = [f"--hide: no part '{part}'." + suggest(part, list(HIDEABLE)) for part in hide or []
               if part not in HIDEABLE]
    if unknown:
        fail(unknown)
    loaded, item_bank, assessment = _load(profile, bank)
    roadmap = None
    if simulate:
        try:
            with progress_bar() as bar:
                task = bar.add_task("roadmap", total=None)
                roadmap = simulate_roadmap(loaded, assessment, item_bank.calibration_tolerance, line, reps, seed,
                                           workers, overrides, on_result=lambda *_: bar.advance(task),
                                           on_plan=lambda n: bar.update(task, total=n))
        except ScenarioError as exc:
            fail([str(p) for p in exc.problems])
        for check in roadmap.calibration:
            if check["flagged"]:
                warn(f"{check['kpi']} simulated {check['simulated']:.3g} vs reported {check['reported']:g} "
                     f"({check['mismatch']:.0%} off): check the line scenario")
    try:
        write_report(out_path, build_blocks(loaded.profile, assessment, item_bank, roadmap, lang,
                                               frozenset(hide or [])), lang)
    except OSError as exc:
        fail([f"--out {out_path}: cannot write ({exc.strerror})"])
    if keep:
        _keep(store, loaded, assessment, roadmap, {"path": str(out_path.resolve()), "lang": lang,
                                                   "format": out_path.suffix.lower().lstrip("."),
                                                   "hidden": sorted(hide or [])})
    out().print(f"Report written to {out_path}", highlight=False)


@diagnose_app.command("list")
def list_(store: Path = STORE_OPTION) -> None:
    """List the enterprises in the store with their profiles, assessments, roadmaps and reports."""
    with _open(store) as db:
        try:
            rows = db.enterprises()
        except StoreError as exc:
            fail([str(exc)])
    if not rows:
        out().print(f"no enterprises in {store}", highlight=False)
        return
    table = Table("enterprise", "profiles", "assessments", "roadmaps", "reports", "last (UTC)")
    for row in rows:
        table.add_row(row["enterprise"], str(row["profile"]), str(row["assessment"]), str(row["roadmap"]),
                      str(row["report"]), row["last_recorded_at"] or "-")
    out().print(table)


@diagnose_app.command()
def export(enterprise: str = typer.Argument(..., help="Enterprise name as in `twin diagnose list`."),
           out_path: Path = typer.Option(..., "--out", help="JSON file to write."),
           store: Path = STORE_OPTION) -> None:
    """Write every record of one enterprise (profiles, assessments, roadmaps, reports) to a JSON file."""
    with _open(store) as db:
        try:
            records = db.enterprise_records(enterprise)
        except StoreError as exc:
            fail([str(exc)])
    try:
        write_json(out_path, {"enterprise": enterprise, "records": records})
    except OSError as exc:
        fail([f"--out {out_path}: cannot write ({exc.strerror})"])
    out().print(f"{len(records)} records of {enterprise} written to {out_path}", highlight=False)


@diagnose_app.command()
def delete(enterprise: str = typer.Argument(..., help="Enterprise name as in `twin diagnose list`."),
           yes: bool = typer.Option(False, "--yes", help="Delete without asking."),
           store: Path = STORE_OPTION) -> None:
    """Delete every record of one enterprise from the store (report files on disk are not touched)."""
    with _open(store) as db:
        if not yes and not typer.confirm(f"Delete every record of {enterprise} from {store}?"):
            raise typer.Exit(1)
        try:
            count = db.delete_enterprise(enterprise)
        except StoreError as exc:
            fail([str(exc)])
    out().print(f"deleted {count} records of {enterprise}", highlight=False)


def _ask(data: dict[str, Any], key: str, prompt: str, convert: Callable[[str], Any],
         check: Callable[[Any], Optional[str]], save: Callable[[], None]) -> None:
    """Ask for ``key`` unless ``data`` has it (resuming); retry until ``check`` returns no problem; then
    ``save``."""
    while key not in data:
        raw = typer.prompt(prompt)
        try:
            value = convert(raw)
            problem = check(value)
        except ValueError:
            problem = f"'{raw}' is not a valid answer"
        if problem:
            err.print(f"error: {problem}", highlight=False)
            continue
        data[key] = value
        save()


def _rate(value: float) -> Optional[str]:
    return None if 0 <= value <= 1 else f"got {value}: give a fraction from 0 to 1 (0.6 for 60%)"


def _names(raw: str) -> list[str]:
    return [item.strip() for item in raw.replace("，", ",").split(",") if item.strip()]


@diagnose_app.command()
def init(profile: Path = typer.Argument(..., help="Profile YAML to write (resumed if it exists)."),
         bank: Optional[Path] = BANK_OPTION) -> None:
    """Guided questionnaire: asks for the profile and the requirement scores, saving after every answer,
    so an interrupted session resumes where it stopped. Validates the profile at the end."""
    try:
        item_bank = load_bank(bank) if bank else load_bank()
        data: dict[str, Any] = (yaml.safe_load(profile.read_text(encoding="utf-8")) or {}) if profile.exists() else {}
    except (ScenarioError, yaml.YAMLError) as exc:
        fail([f"{profile}: cannot resume ({str(exc).splitlines()[0]}); fix or remove the file"])
    if not isinstance(data, dict):
        fail([f"{profile}: not a profile mapping; give a new file name"])
    profile.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        profile.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

    _ask(data, "name", "Enterprise name 企业名称", str, lambda v: None if v.strip() else "give a name", save)
    _ask(data, "industry", f"Industry 行业 ({', '.join(INDUSTRIES)})", str.strip,
         lambda v: None if v in INDUSTRIES else f"unknown industry '{v}'." + suggest(v, list(INDUSTRIES)), save)
    _ask(data, "city", "City 城市", str.strip, lambda v: None, save)
    _ask(data, "employees", "Employees 员工人数", int, lambda v: None if v >= 1 else "give at least 1", save)
    _ask(data, "products", "Main products, comma-separated 主要产品", _names,
         lambda v: None if v else "give at least one product", save)
    if "lines" not in data:
        line: dict[str, Any] = {}
        _ask(line, "name", "Line name (letters, digits, _ -) 产线名称", str.strip, lambda v: None if v else "give a name",
             lambda: None)
        _ask(line, "scenario", "Line scenario YAML, relative to the profile 产线场景文件", str.strip,
             lambda v: None if (profile.parent / v).exists() else f"'{v}' not found next to {profile}; give its path "
                                                                 "relative to the profile", lambda: None)
        data["lines"] = [line]
        save()
    _ask(data, "systems", f"Systems in place, comma-separated ({', '.join(SYSTEMS)}) 已有信息系统", _names,
         lambda v: next((f"unknown system '{s}'." + suggest(s, list(SYSTEMS)) for s in v if s not in SYSTEMS), None),
         save)
    _ask(data, "equipment_digitised_rate", "Share of key equipment digitised (0-1) 关键设备数字化率", float, _rate, save)
    _ask(data, "equipment_networked_rate", "Share of equipment networked (0-1) 设备联网率", float, _rate, save)
    answers = data.setdefault("answers", {})
    for sub in item_bank.subdomains:
        for req in sub.requirements:
            if req.evidence is None:
                _ask(answers, req.id, f"[{req.id}, level {req.level}] {req.zh} / {req.en}: score 1, 0.8, 0.5 or 0",
                     float, lambda v: None if v in (1, 0.8, 0.5, 0) else f"got {v}: score 1, 0.8, 0.5 or 0", save)
    try:
        load_profile(profile, item_bank)
    except ScenarioError as exc:
        fail([str(p) for p in exc.problems] + [f"edit {profile} and run `twin diagnose assess {profile}`"])
    out().print(f"Profile written to {profile}; next: twin diagnose assess {profile}", highlight=False)
