"""The `minimarket` command: the Typer app and its command groups, one module each.

serve.py (serve, demo), store.py (verify, negative-stock, sale-discount), database.py (db), apikeys.py (apikey),
doctor.py, backup.py (backup, restore, db migrate-to), certs.py, keys.py (keys, secret), users.py (user),
forecast.py (forecast run / evaluate).
An operational failure no command handled ends in one Spanish line and exit code 1 (terminal.py);
`minimarket --debug …` or LOG_LEVEL=DEBUG also prints its traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from minimarket import __version__
from minimarket.cli import backup, doctor, serve, store
from minimarket.cli.alerts import alerts_app
from minimarket.cli.apikeys import apikey_app
from minimarket.cli.certs import certs_app
from minimarket.cli.database import db_app
from minimarket.cli.forecast import forecast_app
from minimarket.cli.keys import keys_app, secrets_app
from minimarket.cli.users import user_app
from minimarket.cli.terminal import OperatorErrors, console, set_debug

app = typer.Typer(cls=OperatorErrors, help="Mini Market: inventario, precios y operaciones para minimercados.",
                  no_args_is_help=True)


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Ante un error, mostrar también el detalle técnico "
                                                              "(traceback)")] = False) -> None:
    set_debug(debug)


app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(certs_app, name="certs")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secret")
app.add_typer(alerts_app, name="alerts")
app.add_typer(user_app, name="user")
app.add_typer(forecast_app, name="forecast")
serve.register(app)  # serve, demo
store.register(app)  # verify, negative-stock, sale-discount
doctor.register(app)
backup.register(app, db_app)  # backup, restore; db migrate-to


@app.command()
def version() -> None:
    """Muestra la versión."""
    console.print(__version__)


if __name__ == "__main__":
    app()
