"""Store rules the owner sets from the command line: how far below the shelf price any till may sell."""

from __future__ import annotations

from typing import Annotated

import typer

from minimarket.cli.terminal import console, err, load_settings
from minimarket.db import Database


def sale_discount(
    maximum: Annotated[str | None, typer.Option("--max", help="Porcentaje bajo el precio de góndola (0 a 100)")] = None,
) -> None:
    """Muestra o cambia cuánto por debajo del precio de góndola puede vender cualquier rol (por defecto 0 %)."""
    from minimarket import store_settings
    from minimarket.accounts.audit import Context, record_audit
    from minimarket.errors import InvalidInput
    from minimarket.stock.sale_prices import max_discount, parse_percent, set_max_discount

    try:
        wanted = None if maximum is None else parse_percent(maximum)
    except InvalidInput as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    database = Database(load_settings().database_url)
    try:
        with database.write() as session:
            current = max_discount(session)
            if wanted is not None:
                set_max_discount(session, wanted)
                record_audit(session, Context(actor="cli"), action="settings.sale_discount", entity="ajustes",
                             entity_id=store_settings.SALE_MAX_DISCOUNT, before={"percent": current}, after={"percent": wanted})
                current = wanted
    finally:
        database.dispose()
    console.print(f"Descuento máximo sin encargado: {format(current.normalize(), 'f')} % "
                  "(más abajo sólo venden encargado y admin)")


def register(app: typer.Typer) -> None:
    app.command("sale-discount")(sale_discount)
