"""`minimarket doctor`: the runbook's daily check, as a table or JSON; exit code 1 when something fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from minimarket.cli.terminal import console, load_settings

TLS_DIR = "observability/prometheus/tls"


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

    settings = load_settings()
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


def register(app: typer.Typer) -> None:
    app.command()(doctor)
