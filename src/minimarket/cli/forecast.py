"""`minimarket forecast`: recompute the demand forecast and measure it on the store's own history.

Registered in cli/main.py with ``app.add_typer(forecast_app, name="forecast")``.
"""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from minimarket.accounts.audit import record_audit
from minimarket.cli.terminal import cli_context, load_settings, open_store
from minimarket.errors import DomainError
from minimarket.purchasing import service

forecast_app = typer.Typer(help="Pronóstico de demanda: recalcular y medir su error con la historia de la tienda.",
                           no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
Days = Annotated[int, typer.Option("--days", min=28, max=service.MAX_HISTORY_DAYS, help="Días de historia")]


@forecast_app.command("run")
def run(days: Days = 180) -> None:
    """Recalcula y guarda el pronóstico de cada producto activo (lo mismo que hace la corrida nocturna)."""
    try:
        with open_store(load_settings()) as database, database.write() as session:
            summary = service.run_forecast(session, days=days)
            record_audit(session, cli_context(), action="forecast.run", entity="pronostico",
                         entity_id=summary.computed_on, after={"products": summary.products})
    except DomainError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    chosen = ", ".join(f"{m} {n}" for m, n in summary.methods.items() if n)
    console.print(f"Pronóstico del {summary.computed_on}: {summary.products} productos, {summary.history_days} días "
                  f"de historia, {summary.seconds:.1f} s. Métodos elegidos: {chosen or 'ninguno'}.")


def _clean(value):  # noqa: ANN001, ANN202
    """NaN (no demand to measure against) becomes null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _fmt(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _table(title: str, rows: dict) -> Table:
    table = Table(title=title)
    for col in ("método", "WAPE", "MASE"):
        table.add_column(col, justify="left" if col == "método" else "right")
    for name, r in rows.items():
        table.add_row(name if name != "choice" else "[b]elección por producto[/b]", _fmt(r["wape"]), _fmt(r["mase"]))
    return table


@forecast_app.command("evaluate")
def evaluate(
    days: Days = 180,
    as_json: Annotated[bool, typer.Option("--json", help="Salida JSON")] = False,
) -> None:
    """WAPE y MASE de cada método y de la elección por producto, en total y por categoría: la
    elección se hace con 4 semanas y se mide en las 4 siguientes, que no vio."""
    try:
        with open_store(load_settings()) as database, database.read() as session:
            report = service.evaluate_store(session, days=days)
    except DomainError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(_clean(report), ensure_ascii=False, indent=2))
        return
    console.print(f"{report['products']} productos, historia desde {report['first_day']} ({report['history_days']} días); "
                  f"elección en 4 semanas, medida en las {report['scored_weeks']} siguientes.")
    console.print(_table("Total", report["overall"]))
    for group, rows in report["by_group"].items():
        console.print(_table(group, rows))
    beat = report["overall"]["choice"]["wape"] < report["overall"]["seasonal_naive"]["wape"]
    console.print("La elección por producto " + ("[green]le gana[/green]" if beat else "[red]no le gana[/red]")
                  + " al ingenuo estacional (WAPE).")
