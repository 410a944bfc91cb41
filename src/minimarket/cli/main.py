"""The `minimarket` command: serve, database, demo data, ledger verification, API keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from minimarket import __version__
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.cli.terminal import console, err, load_settings, progress_bars
from minimarket.cli.backup import register as register_backup_commands
from minimarket.cli.store import register as register_store_commands
from minimarket.cli.certs import certs_app
from minimarket.cli.keys import keys_app, secrets_app
from minimarket.cli.users import user_app
from minimarket.cli.alerts import alerts_app

app = typer.Typer(help="Mini Market: inventario, precios y operaciones para minimercados.", no_args_is_help=True)
db_app = typer.Typer(help="Base de datos: migraciones.", no_args_is_help=True)
apikey_app = typer.Typer(help="Claves de API (X-API-Key).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(certs_app, name="certs")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secret")
app.add_typer(user_app, name="user")
app.add_typer(alerts_app, name="alerts")
register_backup_commands(app, db_app)  # backup, restore; db migrate-to
register_store_commands(app)  # sale-discount

CLI_CONTEXT_ACTOR = "cli"


_settings = load_settings


def _ctx():  # noqa: ANN202
    from minimarket.accounts.audit import Context

    return Context(actor=CLI_CONTEXT_ACTOR)


def _ensure_schema(settings: Settings, *, unreachable_ok: bool = False) -> bool:
    """The embedded SQLite upgrades itself; PostgreSQL is upgraded by the operator, once.

    With `unreachable_ok` (serve) a PostgreSQL that does not answer is not fatal: returns False,
    and /health answers 503 naming the database until it appears (then checks its revision).
    """
    from sqlalchemy.exc import OperationalError

    from minimarket.migrations.runner import current_revision, head_revision, upgrade

    if settings.is_sqlite:
        upgrade(settings.database_url)
        return True
    database = Database(settings.database_url)
    try:
        current = current_revision(database.engine)
    except OperationalError as exc:
        if not unreachable_ok:
            raise
        reason = str(exc.orig or exc).strip().splitlines()[0][:200]
        err.print(f"[yellow]La base de datos no responde ({reason}).[/yellow] El servicio arranca igual: /health "
                  "responde 503 (database) hasta que la base vuelva, y se recupera solo.", soft_wrap=True)
        return False
    finally:
        database.dispose()
    if current != head_revision():
        err.print(f"[red]La base está en la revisión {current or 'vacía'} y el código espera {head_revision()}.[/red] "
                  "Ejecutá: minimarket db upgrade")
        raise typer.Exit(1)
    return True


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
        reset_password(session, _ctx(), username="admin", password=password)
        enable_user(session, _ctx(), username="admin")
    except NotFound:
        create_user(session, _ctx(), username="admin", role="admin", password=password, full_name="Administrador")
    return password


@app.command()
def serve(
    service: Annotated[str, typer.Option(help="all | dashboard | deposito | negocio")] = "all",
    host: Annotated[str | None, typer.Option(help="Interfaz (por defecto HOST o 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Puerto (por defecto PORT=8080; DEPOSITO_PORT=8001; NEGOCIO_PORT=8002)")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Carga datos de demostración si la base está vacía")] = False,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Procesos Uvicorn (métricas agregadas entre ellos)")] = 1,
) -> None:
    """Inicia el sistema (todo en uno) o uno de sus servicios."""
    import uvicorn

    from minimarket.apps import SERVICES, create_app
    from minimarket.platform.logging import configure_logging

    if service not in SERVICES:
        err.print(f"[red]Servicio desconocido '{service}'.[/red] Usá uno de: {', '.join(SERVICES)}")
        raise typer.Exit(2)
    settings = _settings()
    if demo and settings.is_production:
        err.print("[red]--demo no se permite con MINIMARKET_ENV=production[/red]")
        raise typer.Exit(2)
    reachable = _ensure_schema(settings, unreachable_ok=True)
    if demo and not reachable:
        err.print("[red]--demo necesita la base de datos para cargar los datos de demostración.[/red] "
                  "Revisá DATABASE_URL o arrancá sin --demo.")
        raise typer.Exit(1)
    host = host or settings.host
    port = port or settings.service_port(service)
    if demo:
        from minimarket.accounts.keys import create_api_key, revoke_api_key
        from minimarket.errors import NotFound
        from minimarket.demo.generator import database_is_empty

        database = Database(settings.database_url)
        try:
            if database_is_empty(database):
                _run_demo(database, 600, 120, 42)
            with database.write() as session:
                try:
                    revoke_api_key(session, _ctx(), ref="demo")
                except NotFound:
                    pass
                _, demo_key = create_api_key(session, _ctx(), name="demo", role="admin")
                demo_password = _demo_admin(session)
        finally:
            database.dispose()
        err.print(f"\n[bold green]Mini Market listo[/bold green] en http://{host}:{port}  (API: http://{host}:{port}/docs)",
                  soft_wrap=True)
        err.print(f"Clave de API de demostración (rol admin, se renueva en cada inicio):\n  [bold]{demo_key}[/bold]",
                  soft_wrap=True)
        err.print(f"Dashboard: http://{host}:{port}/ingresar  usuario [bold]admin[/bold]  contraseña "
                  f"[bold]{demo_password}[/bold] (se renueva en cada inicio)", soft_wrap=True)
        err.print(f"Probá:  curl -H 'X-API-Key: {demo_key}' 'http://{host}:{port}/api/inventory?limit=5'\n",
                  soft_wrap=True, markup=False)
    configure_logging(settings.log_level, service=service)
    if workers == 1:
        uvicorn.run(create_app(service, settings), host=host, port=port, log_config=None, access_log=False)
        return
    # Several processes: each builds its app from minimarket.asgi, and prometheus-client
    # keeps the counters in files under PROMETHEUS_MULTIPROC_DIR so /metrics adds them up.
    import os
    import tempfile

    os.environ["MINIMARKET_SERVICE"] = service
    multiproc_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="minimarket-metrics-"))
    for stale in Path(multiproc_dir).glob("*.db"):
        stale.unlink()  # counters of a previous run must not be added to this one
    uvicorn.run("minimarket.asgi:app", host=host, port=port, workers=workers, log_config=None, access_log=False)


@app.command()
def demo(
    products: Annotated[int, typer.Option(min=10, max=100_000, help="Cantidad de productos")] = 600,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Días de historia de ventas")] = 120,
    seed: Annotated[int, typer.Option(help="Semilla (mismos datos con la misma semilla)")] = 42,
) -> None:
    """Carga un minimercado de demostración en una base vacía."""
    from minimarket.errors import Conflict

    settings = _settings()
    _ensure_schema(settings)
    database = Database(settings.database_url)
    try:
        _run_demo(database, products, days, seed)
    except Conflict as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    finally:
        database.dispose()


@app.command()
def verify() -> None:
    """Recalcula cada existencia desde el libro de movimientos; sale con error si alguna difiere."""
    from minimarket.stock.verify import run_verification

    settings = _settings()
    database = Database(settings.database_url)
    try:
        report = run_verification(database)
    finally:
        database.dispose()
    if report.ok:
        console.print(f"[green]OK[/green]: {report.balances_checked} existencias coinciden con "
                      f"{report.movements_checked} movimientos del libro.")
        return
    table = Table("SKU", "Ubicación", "Existencia", "Suma del libro", "Problema", title="Diferencias")
    for m in report.mismatches:
        table.add_row(m.sku, m.location, str(m.balance), str(m.ledger_sum), m.problem)
    console.print(table)
    console.print(f"[red]{len(report.mismatches)} diferencia(s)[/red] en {report.balances_checked} existencias.")
    raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Revisión destino")] = "head") -> None:
    """Aplica las migraciones pendientes."""
    from minimarket.migrations.runner import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    console.print(f"Base actualizada a {revision}.")


@db_app.command("current")
def db_current() -> None:
    """Muestra la revisión aplicada y la esperada por el código."""
    from minimarket.migrations.runner import current_revision, head_revision

    database = Database(_settings().database_url)
    try:
        console.print(f"actual: {current_revision(database.engine) or '(vacía)'}  esperada: {head_revision()}")
    finally:
        database.dispose()


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Para qué o quién es la clave (ej. caja-1)")],
    role: Annotated[str, typer.Option(help="admin | encargado | deposito | lectura")],
    as_json: Annotated[bool, typer.Option("--json", help='Imprime {"key": …} para scripts')] = False,
) -> None:
    """Crea una clave; se muestra una sola vez."""
    from minimarket.accounts.keys import create_api_key
    from minimarket.errors import DomainError

    settings = _settings()
    _ensure_schema(settings)
    database = Database(settings.database_url)
    try:
        with database.write() as session:
            row, plaintext = create_api_key(session, _ctx(), name=name, role=role)
            prefix, key_role = row.prefix, row.role
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        database.dispose()
    if as_json:
        sys.stdout.write(json.dumps({"key": plaintext, "name": name, "role": key_role, "prefix": prefix}) + "\n")
        return
    console.print(f"Clave '{name}' (rol {key_role}, prefijo {prefix}). Guardala ahora: no se vuelve a mostrar.")
    console.print(plaintext, markup=False, highlight=False)


@apikey_app.command("list")
def apikey_list() -> None:
    """Lista las claves (nunca muestra el secreto)."""
    from minimarket.accounts.keys import list_api_keys

    table = Table("Prefijo", "Nombre", "Rol", "Creada", "Último uso", "Estado")
    database = Database(_settings().database_url)
    try:
        with database.read() as session:
            for r in list_api_keys(session):
                table.add_row(r.prefix, r.name, r.role, f"{r.created_at:%d/%m/%Y %H:%M}",
                              f"{r.last_used_at:%d/%m/%Y %H:%M}" if r.last_used_at else "—",
                              "revocada" if r.revoked_at else "activa")
    finally:
        database.dispose()
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(ref: Annotated[str, typer.Argument(help="Prefijo o nombre de la clave")]) -> None:
    """Revoca una clave por prefijo o nombre."""
    from minimarket.accounts.keys import revoke_api_key
    from minimarket.errors import NotFound

    database = Database(_settings().database_url)
    try:
        with database.write() as session:
            rows = revoke_api_key(session, _ctx(), ref=ref)
            count = len(rows)
    except NotFound as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    console.print(f"{count} clave(s) revocada(s).")


TLS_DIR = "observability/prometheus/tls"


@app.command()
def doctor(
    api_key: Annotated[str | None, typer.Option(envvar="DOCTOR_API_KEY", help="Clave para probar /api (rol lectura)")] = None,
    service_url: Annotated[list[str] | None, typer.Option(
        help="NOMBRE=URL de cada servicio; por defecto DASHBOARD_URL/DEPOSITO_URL/NEGOCIO_URL o el todo-en-uno")] = None,
    prometheus_url: Annotated[str | None, typer.Option(envvar="PROMETHEUS_URL")] = "http://127.0.0.1:9090",
    alertmanager_url: Annotated[str | None, typer.Option(envvar="ALERTMANAGER_URL")] = "https://127.0.0.1:9093",
    tls_dir: Annotated[Path, typer.Option(envvar="TLS_DIR", help="CA y certificado cliente de Prometheus")] = Path(TLS_DIR),
    grafana_url: Annotated[str | None, typer.Option(envvar="GRAFANA_URL")] = None,
    skip: Annotated[list[str] | None, typer.Option(help="prometheus | alertmanager | certificados")] = None,
    disk_path: Annotated[Path, typer.Option(help="Disco a revisar")] = Path("/"),
    as_json: Annotated[bool, typer.Option("--json", help="Salida JSON para scripts")] = False,
) -> None:
    """Chequeo diario del runbook: servicios, base, Redis, API, Prometheus, Alertmanager, disco, certificados,
    respaldo y libro. Sale con 1 si algo falla."""
    from minimarket.ops.doctor import DoctorOptions, run_doctor

    settings = _settings()
    skipped = set(skip or [])
    urls = dict(item.split("=", 1) for item in (service_url or []) if "=" in item)
    if not urls:
        configured = {"dashboard": settings.dashboard_url, "agente-deposito": settings.deposito_url,
                      "agente-negocio": settings.negocio_url}
        urls = {name: url for name, url in configured.items() if url} or {
            "minimarket": f"http://127.0.0.1:{settings.port}"}
    options = DoctorOptions(
        service_urls=urls,
        api_key=api_key,
        prometheus_url=None if "prometheus" in skipped else prometheus_url,
        alertmanager_url=None if "alertmanager" in skipped else alertmanager_url,
        alertmanager_tls=(tls_dir / "ca.crt", tls_dir / "prometheus.crt", tls_dir / "prometheus.key")
        if alertmanager_url and alertmanager_url.startswith("https") else None,
        grafana_url=grafana_url,
        cert_dir=None if "certificados" in skipped else tls_dir,
        disk_path=disk_path,
    )
    checks = run_doctor(settings, options)
    failed = [c for c in checks if not c.ok]
    if as_json:
        sys.stdout.write(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}, ensure_ascii=False)
                         + "\n")
    else:
        table = Table("Chequeo", "Estado", "Detalle", title="Chequeo diario")
        for c in checks:
            table.add_row(c.name, "[green]OK[/green]" if c.ok else "[red]FALLA[/red]", c.detail)
        console.print(table)
        console.print("[green]Todo en orden.[/green]" if not failed else f"[red]{len(failed)} chequeo(s) fallaron.[/red]")
    if failed:
        raise typer.Exit(1)


@app.command("negative-stock")
def negative_stock(
    allow: Annotated[bool | None, typer.Option("--allow/--refuse", help="Permitir o rechazar stock negativo")] = None,
) -> None:
    """Muestra o cambia si la tienda permite vender por debajo de cero (por defecto: rechazar)."""
    from minimarket.accounts.audit import record_audit
    from minimarket import store_settings
    from minimarket.stock.policy import negative_stock_allowed, set_negative_stock_allowed

    settings = _settings()
    database = Database(settings.database_url)
    try:
        if allow is not None:
            with database.write() as session:
                before = negative_stock_allowed(session, default=settings.allow_negative_stock)
                set_negative_stock_allowed(session, allowed=allow)
                record_audit(session, _ctx(), action="settings.negative_stock", entity="ajustes",
                             entity_id=store_settings.NEGATIVE_STOCK, before={"allowed": before}, after={"allowed": allow})
        with database.read() as session:
            current = negative_stock_allowed(session, default=settings.allow_negative_stock)
    finally:
        database.dispose()
    console.print("Stock negativo: " + ("[yellow]permitido[/yellow]" if current else "[green]rechazado[/green]"))


@app.command()
def version() -> None:
    """Muestra la versión."""
    console.print(__version__)


if __name__ == "__main__":
    app()
