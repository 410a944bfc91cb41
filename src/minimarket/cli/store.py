"""The store's own checks and rules from the command line: `minimarket verify` (balances against the ledger),
`negative-stock` (may stock go below zero) and `sale-discount` (how far below the shelf price any till may sell)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from minimarket.cli.terminal import cli_context, console, fail, load_settings, open_store


def verify() -> None:
    """Recalcula cada existencia desde el libro de movimientos, y los KPI de Inicio y los precios atrasados que
    guarda la base desde sus tablas de origen; sale con error si algo difiere."""
    from minimarket.stock.verify import run_verification

    with open_store(load_settings()) as database:
        report = run_verification(database)
    if report.ok:
        console.print(f"[green]OK[/green]: {report.balances_checked} existencias coinciden con "
                      f"{report.movements_checked} movimientos del libro; los KPI de Inicio y los precios "
                      "atrasados guardados coinciden con su recuento.")
        return
    if report.mismatches:
        table = Table("SKU", "Ubicación", "Existencia", "Suma del libro", "Problema", title="Diferencias")
        for m in report.mismatches:
            table.add_row(m.sku, m.location, str(m.balance), str(m.ledger_sum), m.problem)
        console.print(table)
        console.print(f"[red]{len(report.mismatches)} diferencia(s)[/red] en {report.balances_checked} existencias.")
    if report.aggregates:
        table = Table("Qué", "Fila", "Guardado", "Recontado", title="Agregados que no coinciden con su recuento")
        for a in report.aggregates:
            table.add_row(a.what, a.row, a.kept, a.recounted)
        console.print(table)
        console.print(f"[red]{len(report.aggregates)} agregado(s) no coinciden[/red] con el recuento desde sus "
                      "tablas de origen.")
    raise typer.Exit(1)


def negative_stock(
    allow: Annotated[bool | None, typer.Option("--allow/--refuse", help="Permitir o rechazar stock negativo")] = None,
) -> None:
    """Muestra o cambia si la tienda permite vender por debajo de cero (por defecto: rechazar)."""
    from minimarket import store_settings
    from minimarket.accounts.audit import record_audit
    from minimarket.stock.policy import negative_stock_allowed, set_negative_stock_allowed

    settings = load_settings()
    with open_store(settings) as database:
        if allow is not None:
            with database.write() as session:
                before = negative_stock_allowed(session, default=settings.allow_negative_stock)
                set_negative_stock_allowed(session, allowed=allow)
                record_audit(session, cli_context(), action="settings.negative_stock", entity="ajustes",
                             entity_id=store_settings.NEGATIVE_STOCK, before={"allowed": before},
                             after={"allowed": allow})
        with database.read() as session:
            current = negative_stock_allowed(session, default=settings.allow_negative_stock)
    console.print("Stock negativo: " + ("[yellow]permitido[/yellow]" if current else "[green]rechazado[/green]"))


def sale_discount(
    maximum: Annotated[str | None, typer.Option("--max", help="Porcentaje bajo el precio de góndola (0 a 100)")] = None,
) -> None:
    """Muestra o cambia cuánto por debajo del precio de góndola puede vender cualquier rol (por defecto 0 %)."""
    from minimarket import store_settings
    from minimarket.accounts.audit import record_audit
    from minimarket.errors import InvalidInput
    from minimarket.stock.sale_prices import max_discount, parse_percent, set_max_discount

    try:
        wanted = None if maximum is None else parse_percent(maximum)
    except InvalidInput as exc:
        raise fail(exc.message, cause=exc, code=2) from exc
    with open_store(load_settings()) as database, database.write() as session:
        current = max_discount(session)
        if wanted is not None:
            set_max_discount(session, wanted)
            record_audit(session, cli_context(), action="settings.sale_discount", entity="ajustes",
                         entity_id=store_settings.SALE_MAX_DISCOUNT, before={"percent": current},
                         after={"percent": wanted})
            current = wanted
    console.print(f"Descuento máximo sin encargado: {format(current.normalize(), 'f')} % "
                  "(más abajo sólo venden encargado y admin)")


def register(app: typer.Typer) -> None:
    app.command()(verify)
    app.command("negative-stock")(negative_stock)
    app.command("sale-discount")(sale_discount)
