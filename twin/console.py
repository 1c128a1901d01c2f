"""What every ``twin`` command shares: the consoles, the error exit, atomic JSON output."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

err = Console(stderr=True)


def out() -> Console:
    """Standard output; wide enough for tables when piped or captured."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def fail(lines: list[str]) -> NoReturn:
    """Print each line as ``error: ...`` on stderr and exit with status 2 (bad input), no traceback."""
    for line in lines:
        err.print(Text("error: ", style="bold red") + Text(line), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def warn(line: str) -> None:
    """Print the line as ``warning: ...`` on stderr; the command goes on."""
    err.print(Text("warning: ", style="bold yellow") + Text(line), highlight=False, soft_wrap=True)


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)
    os.replace(tmp, path)


def save_json(path: Optional[Path], data: Any, name: str) -> None:
    """Write ``--json`` results to ``path`` (if given); if it cannot be written, keep them in the temp
    directory as ``NAME-results.json`` and exit 2 saying where they are."""
    if path is None:
        return
    try:
        write_json(path, data)
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / f"{name}-results.json"
        write_json(fallback, data)
        fail([f"--json {path}: cannot write ({exc.strerror}); results saved to {fallback} instead"])
    out().print(f"Results written to {path}", highlight=False)


def progress_bar(transient: bool = True) -> Progress:
    """The progress bar of long commands, on stderr; ``transient``: cleared when done."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=transient)


def fmt_estimate(e: dict[str, Any]) -> str:
    """``mean ± half-width`` of an estimate dict (``mean``, ``ci_low``, ``ci_high``), or ``-``."""
    mean = e["mean"]
    if mean is None:
        return "-"
    digits = 3 if abs(mean) < 10 else 1
    if e["ci_low"] is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(e['ci_high'] - e['ci_low']) / 2:.{digits}f}"
