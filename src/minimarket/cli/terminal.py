"""What every `minimarket` command shares on the terminal: consoles, checked settings, progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from minimarket.config import ConfigError, Settings, get_settings

console = Console()
err = Console(stderr=True)

ProgressReport = Callable[[str, int, int], None]


def load_settings() -> Settings:
    """The settings, refused with exit code 2 and the variable to fix when unsafe or malformed."""
    settings = get_settings()
    try:
        settings.check()
    except ConfigError as exc:
        err.print(f"[red]Configuración inválida:[/red] {exc}")
        raise typer.Exit(2) from exc
    return settings


@contextmanager
def progress_bars() -> Iterator[ProgressReport]:
    """A Rich progress display and the `report(stage, done, total)` callback that long work calls."""
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield report
