"""`minimarket serve` (all-in-one or one service, optionally with demo data) and `minimarket demo`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from minimarket.cli.terminal import (
    cli_context,
    describe_failure,
    ensure_schema,
    err,
    fail,
    first_line,
    load_settings,
    open_store,
    progress_bars,
)

if TYPE_CHECKING:  # imported where used: `minimarket` starts faster for the commands that do not serve
    from minimarket.config import Settings
    from minimarket.db import Database

# What `serve --demo` (and `minimarket demo` by default) loads into an empty database: 180 days fill the
# forecast's default history and give Inicio's cost-inflation chart six months (0.8 s more CPU than 120 days).
DEMO_PRODUCTS, DEMO_DAYS, DEMO_SEED = 600, 180, 42


def _schema_ready(settings: Settings) -> bool:
    """Like every command, but a PostgreSQL that does not answer is not fatal for `serve`: False, and
    /health answers 503 naming the database until it appears (then the app checks its revision)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from minimarket.db import Database

    database = Database(settings.database_url)
    try:
        ensure_schema(settings, database)
        return True
    except (OperationalError, InterfaceError) as exc:
        if settings.is_sqlite:
            raise fail(describe_failure(exc), cause=exc) from exc
        err.print(f"[yellow]La base de datos no responde ({first_line(exc.orig or exc)[:200]}).[/yellow] El servicio "
                  "arranca igual: /health responde 503 (database) hasta que la base vuelva, y se recupera solo.",
                  soft_wrap=True)
        return False
    finally:
        database.dispose()


def _run_demo(database: Database, products: int, days: int, seed: int) -> None:
    from minimarket.demo.generator import generate_demo

    with progress_bars() as report:
        summary = generate_demo(database, products=products, days=days, seed=seed, progress=report)
    err.print(f"Datos de demostración: {summary.products} productos, {summary.categories} categorías, "
              f"{summary.suppliers} proveedores, {summary.movements} movimientos "
              f"({summary.sales_lines} líneas de venta) en {summary.days} días — {summary.seconds:.1f} s")


def _demo_admin(session) -> str:  # noqa: ANN001
    """The demo's `admin` user with a fresh random password (created, or re-enabled and reset)."""
    import secrets

    from minimarket.accounts.users import create_user, enable_user, reset_password
    from minimarket.errors import NotFound

    password = secrets.token_urlsafe(12)
    try:
        reset_password(session, cli_context(), username="admin", password=password)
        enable_user(session, cli_context(), username="admin")
    except NotFound:
        create_user(session, cli_context(), username="admin", role="admin", password=password,
                    full_name="Administrador")
    return password


def _demo_store(settings: Settings, host: str, port: int) -> None:
    """Demo data in an empty database, a fresh admin key `demo` and admin password, printed for the first try."""
    from minimarket.accounts.keys import create_api_key, revoke_api_key
    from minimarket.demo.generator import database_is_empty
    from minimarket.errors import NotFound

    with open_store(settings, at_head=False) as database:  # the schema was checked a moment ago
        if database_is_empty(database):
            _run_demo(database, DEMO_PRODUCTS, DEMO_DAYS, DEMO_SEED)
        with database.write() as session:
            try:
                revoke_api_key(session, cli_context(), ref="demo")
            except NotFound:
                pass
            _, demo_key = create_api_key(session, cli_context(), name="demo", role="admin")
            demo_password = _demo_admin(session)
    err.print(f"\n[bold green]Mini Market listo[/bold green] en http://{host}:{port}  (API: http://{host}:{port}/docs)",
              soft_wrap=True)
    err.print(f"Clave de API de demostración (rol admin, se renueva en cada inicio):\n  [bold]{demo_key}[/bold]",
              soft_wrap=True)
    err.print(f"Dashboard: http://{host}:{port}/ingresar  usuario [bold]admin[/bold]  contraseña "
              f"[bold]{demo_password}[/bold] (se renueva en cada inicio)", soft_wrap=True)
    err.print(f"Probá:  curl -H 'X-API-Key: {demo_key}' 'http://{host}:{port}/api/inventory?limit=5'\n",
              soft_wrap=True, markup=False)


def _run_workers(service: str, host: str, port: int, workers: int) -> None:
    """Several processes: each builds its app from minimarket.asgi, and prometheus-client keeps the
    counters in files under PROMETHEUS_MULTIPROC_DIR so /metrics adds them up."""
    import uvicorn

    os.environ["MINIMARKET_SERVICE"] = service
    multiproc_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="minimarket-metrics-"))
    for stale in Path(multiproc_dir).glob("*.db"):
        stale.unlink()  # counters of a previous run must not be added to this one
    uvicorn.run("minimarket.asgi:app", host=host, port=port, workers=workers, log_config=None, access_log=False)


def serve(
    service: Annotated[str, typer.Option(help="all | dashboard | deposito | negocio")] = "all",
    host: Annotated[str | None, typer.Option(help="Interfaz (por defecto HOST o 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Puerto (por defecto PORT=8080; DEPOSITO_PORT=8001; NEGOCIO_PORT=8002)")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Carga datos de demostración si la base está vacía")] = False,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Procesos Uvicorn (métricas agregadas entre ellos)")] = 1,
) -> None:
    """Inicia el sistema (todo en uno) o uno de sus servicios."""
    settings = load_settings()  # before importing the app (~1 s of CPU): a refused setting answers at once
    import uvicorn

    from minimarket.apps import SERVICES, create_app
    from minimarket.platform.heap import settle_heap
    from minimarket.platform.logging import configure_logging

    if service not in SERVICES:
        raise fail(f"Servicio desconocido '{service}'. Usá uno de: {', '.join(SERVICES)}", code=2)
    if demo and settings.is_production:
        raise fail("--demo no se permite con MINIMARKET_ENV=production", code=2)
    reachable = _schema_ready(settings)
    if demo and not reachable:
        raise fail("--demo necesita la base de datos para cargar los datos de demostración. "
                   "Revisá DATABASE_URL o arrancá sin --demo.")
    host = host or settings.host
    port = port or settings.service_port(service)
    if demo:
        _demo_store(settings, host, port)
    configure_logging(settings.log_level, service=service)
    if workers == 1:
        app = create_app(service, settings)
        settle_heap()  # platform/heap.py: start-up's objects out of every later collection (as asgi.py)
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    else:
        _run_workers(service, host, port, workers)


def demo(
    products: Annotated[int, typer.Option(min=10, max=100_000, help="Cantidad de productos")] = DEMO_PRODUCTS,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Días de historia de ventas")] = DEMO_DAYS,
    seed: Annotated[int, typer.Option(help="Semilla (mismos datos con la misma semilla)")] = DEMO_SEED,
) -> None:
    """Carga un minimercado de demostración en una base vacía."""
    from minimarket.errors import Conflict

    with open_store(load_settings()) as database:
        try:
            _run_demo(database, products, days, seed)
        except Conflict as exc:
            raise fail(exc.message, cause=exc) from exc


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(demo)
