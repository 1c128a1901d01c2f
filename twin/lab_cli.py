"""``twin lab``: the training labs (list, start, check, solution) and class mode (gather). Register it on
the main app with ``app.add_typer(lab_app, name="lab")``. Every message is in English or Chinese
(``--lang en|zh``); see docs/labs.md."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer
from rich.table import Table
from rich.text import Text

from twin.console import fail, out, warn, write_json
from twin.labs import (GATHER_COLUMNS, LabError, all_labs, check_language, check_lab, get_lab, gather_results,
                       start_lab, text, write_csv, write_solution)

lab_app = typer.Typer(no_args_is_help=True, help="Training labs (实验): list, start, check, solution, gather.")

_LANG = typer.Option("en", "--lang", help="Language of the messages: en (English) or zh (中文).")


def _language(lang: str) -> str:
    try:
        return check_language(lang)
    except LabError as exc:
        fail([str(exc)])


@lab_app.command("list")
def list_labs(lang: str = _LANG) -> None:
    """One lab a line: number, title, time a student needs (minutes)."""
    lang = _language(lang)
    minutes = text("min", "分钟")[lang]
    for lab in all_labs():
        out().print(f"{lab.number}  {lab.title[lang]}  ({lab.minutes} {minutes})", highlight=False, soft_wrap=True)


def _list_written(write: Callable[[], list[Path]]) -> None:
    """Write a lab's files and list them, or exit 2 naming the problem."""
    try:
        files = write()
    except LabError as exc:
        fail([str(exc)])
    for path in files:
        out().print(f"  {path}", highlight=False, soft_wrap=True)


@lab_app.command("start")
def start(number: int = typer.Argument(..., help="Lab number (see `twin lab list`)."),
          folder: Optional[Path] = typer.Argument(None, help="Folder to work in (default: labN)."),
          force: bool = typer.Option(False, "--force", help="Overwrite files already in the folder."),
          lang: str = _LANG) -> None:
    """Copy a lab's instructions (en, zh), starter files and notebook into a folder."""
    lang = _language(lang)
    folder = folder or Path(f"lab{number}")
    _list_written(lambda: start_lab(number, folder, overwrite=force))
    nxt = text(f"Read {folder / 'instructions.en.md'}; when done, run: twin lab check {number} {folder}",
               f"请阅读 {folder / 'instructions.zh.md'}；完成后运行：twin lab check {number} {folder} --lang zh")
    out().print(nxt[lang], highlight=False, soft_wrap=True)


@lab_app.command("check")
def check(number: int = typer.Argument(..., help="Lab number."),
          folder: Path = typer.Argument(Path("."), help="The student's lab folder (default: here)."),
          result: Optional[Path] = typer.Option(None, "--result", help="Also write the result as JSON here "
                                                "(class mode: the trainer collects them with `twin lab gather`)."),
          student: Optional[str] = typer.Option(None, "--student", help="Student name in the result file "
                                                "(default: the folder's name)."),
          lang: str = _LANG) -> None:
    """Check a student's work: what is right, what is not, and a hint. Exit status 0 if every item
    holds, 1 if some do not, 2 on bad input."""
    lang = _language(lang)
    if result is not None and result.suffix.lower() != ".json":
        fail([f"--result {result}: use a file name ending in .json"])
    try:
        report = check_lab(number, folder, student)
    except LabError as exc:
        fail([str(exc)])
    lab = get_lab(number)
    out().print(Text(f"{text('Lab', '实验')[lang]} {number}: {lab.title[lang]}", style="bold"))
    for finding in report.findings:
        mark = Text("✓ ", style="bold green") if finding.ok else Text("✗ ", style="bold red")
        out().print(mark + Text(finding.message[lang]), highlight=False, soft_wrap=True)
        if not finding.ok and finding.hint is not None:
            out().print(Text(f"  {text('hint', '提示')[lang]}: {finding.hint[lang]}", style="yellow"),
                        highlight=False, soft_wrap=True)
    done = sum(f.ok for f in report.findings)
    summary = text(f"{done} of {len(report.findings)} items right", f"{len(report.findings)} 项中 {done} 项正确")
    out().print(Text(summary[lang] + (" — " + text("lab passed", "实验通过")[lang] if report.passed else ""),
                     style="bold green" if report.passed else "bold"), highlight=False, soft_wrap=True)
    if result is not None:
        try:
            write_json(result, report.to_json(lang))
        except OSError as exc:
            fail([f"--result {result}: cannot write ({exc.strerror})"])
        out().print(f"{text('Result written to', '结果已写入')[lang]} {result}", highlight=False, soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


@lab_app.command("solution")
def solution(number: int = typer.Argument(..., help="Lab number."),
             folder: Optional[Path] = typer.Argument(None, help="Folder for the solved lab (default: labN-solution)."),
             force: bool = typer.Option(False, "--force", help="Overwrite files already in the folder."),
             lang: str = _LANG) -> None:
    """For trainers: a solved copy of the lab (starter files with the solution over them)."""
    lang = _language(lang)
    folder = folder or Path(f"lab{number}-solution")
    _list_written(lambda: write_solution(number, folder, overwrite=force))
    out().print(text(f"Solved lab {number} in {folder}; `twin lab check {number} {folder}` passes.",
                     f"实验 {number} 的参考答案在 {folder}；`twin lab check {number} {folder}` 可通过。")[lang],
                highlight=False, soft_wrap=True)


@lab_app.command("gather")
def gather(folder: Path = typer.Argument(..., help="Folder with the class's result files (searched recursively)."),
           csv_out: Optional[Path] = typer.Option(None, "--csv", help="Also write the table as CSV here."),
           lang: str = _LANG) -> None:
    """Class mode: collect the result files of `twin lab check --result` into one table (and CSV)."""
    lang = _language(lang)
    try:
        rows, problems = gather_results(folder)
    except LabError as exc:
        fail([str(exc)])
    for problem in problems:
        warn(problem)
    if not rows:
        fail([f"{folder}: no result files found; students write them with "
              "`twin lab check N DIR --result FILE.json`"])
    headers = text("Student,Lab,Passed,Score,Failed items,Checked at,File",
                   "学生,实验,通过,得分,未通过项,检查时间,文件")[lang].split(",")
    table = Table(title=text(f"Class results: {len(rows)} checks", f"全班结果：共 {len(rows)} 条")[lang],
                  title_justify="left")
    for header in headers:
        table.add_column(header)
    yes_no = text("yes,no", "是,否")[lang].split(",")
    for row in rows:
        table.add_row(row["student"], str(row["lab"]), yes_no[0] if row["passed"] else yes_no[1],
                      f"{row['score']:.0%}", row["failed_items"], row["checked_at"], row["file"])
    out().print(table)
    if csv_out is not None:
        try:
            write_csv(rows, csv_out)
        except OSError as exc:
            fail([f"--csv {csv_out}: cannot write ({exc.strerror})"])
        out().print(f"CSV ({', '.join(GATHER_COLUMNS)}): {csv_out}", highlight=False, soft_wrap=True)
