"""`minimarket doctor`: the runbook's daily health check as one command that tells the truth."""

from __future__ import annotations

import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import redis

from minimarket import store_settings
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.ops.tls import check_certificates
from minimarket.stock.verify import run_verification

TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DoctorOptions:
    service_urls: dict[str, str]
    api_key: str | None
    prometheus_url: str | None
    alertmanager_url: str | None
    alertmanager_tls: tuple[Path, Path, Path] | None  # ca, client cert, client key
    grafana_url: str | None
    cert_dir: Path | None
    disk_path: Path
    min_free_ratio: float = 0.20
    cert_warn_days: int = 30
    backup_max_age_hours: float = 26


def _run(name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
    try:
        ok, detail = probe()
    except Exception as exc:  # noqa: BLE001 - every failure is a finding, not a crash
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        return Check(name, False, f"{type(exc).__name__}: {first}")
    return Check(name, ok, detail)


def _service(url: str) -> tuple[bool, str]:
    response = httpx.get(url.rstrip("/") + "/health", timeout=TIMEOUT)
    body = response.json()
    if response.status_code == 200:
        return True, f"ok ({body.get('version', '?')})"
    return False, f"{response.status_code}: fallan {', '.join(body.get('failing', [])) or '?'}"


def _api(url: str, key: str | None) -> tuple[bool, str]:
    if not key:
        return False, "sin clave: pasá --api-key o DOCTOR_API_KEY (rol lectura alcanza)"
    response = httpx.get(url.rstrip("/") + "/api/inventory", params={"limit": 1}, headers={"X-API-Key": key},
                         timeout=TIMEOUT)
    return response.status_code == 200, f"GET /api/inventory → {response.status_code}"


def _database(settings: Settings) -> tuple[bool, str]:
    database = Database(settings.database_url)
    try:
        start = time.perf_counter()
        database.ping()
        return True, f"responde en {(time.perf_counter() - start) * 1000:.0f} ms"
    finally:
        database.dispose()


def _redis(settings: Settings) -> tuple[bool, str]:
    if not settings.redis_url:
        return True, "no configurado (caché en memoria del proceso)"
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        return True, "responde"
    finally:
        client.close()


def _prometheus(url: str) -> tuple[bool, str]:
    response = httpx.get(url.rstrip("/") + "/-/healthy", timeout=TIMEOUT)
    return response.status_code == 200, f"/-/healthy → {response.status_code}"


def alertmanager_tls_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Trust our CA and present Prometheus' client certificate: what Alertmanager's web.yml demands."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


def _alertmanager(url: str, tls: tuple[Path, Path, Path] | None) -> tuple[bool, str]:
    # httpx >= 0.28 takes the client certificate only inside an SSL context given as `verify`.
    verify: ssl.SSLContext | bool = alertmanager_tls_context(*tls) if tls is not None else True
    with httpx.Client(verify=verify, timeout=TIMEOUT) as client:
        response = client.get(url.rstrip("/") + "/api/v2/alerts", params={"active": "true"})
    response.raise_for_status()
    alerts = response.json()
    critical = [a["labels"].get("alertname", "?") for a in alerts if a["labels"].get("severity") == "critical"]
    detail = f"{len(alerts)} alerta(s) activa(s)"
    if critical:
        detail += f"; críticas: {', '.join(sorted(set(critical)))}"
    return not critical, detail


def _grafana(url: str) -> tuple[bool, str]:
    response = httpx.get(url.rstrip("/") + "/api/health", timeout=TIMEOUT)
    return response.status_code == 200, f"/api/health → {response.status_code}"


def _disk(path: Path, min_free: float) -> tuple[bool, str]:
    usage = shutil.disk_usage(path)
    free = usage.free / usage.total
    return free >= min_free, f"{free:.0%} libre en {path} (mínimo {min_free:.0%})"


def _certificates(directory: Path, warn_days: int) -> tuple[bool, str]:
    statuses = check_certificates(directory, warn_days=warn_days)
    if not statuses:
        return False, f"no hay certificados en {directory} (minimarket certs generate)"
    worst = min(statuses, key=lambda s: s.days_left if s.days_left is not None else -10**6)
    bad = [s for s in statuses if not s.ok]
    if bad:
        return False, "; ".join(f"{s.file.name}: {s.error or f'{s.days_left} días'}" for s in bad)
    return True, f"{len(statuses)} certificados; el más próximo vence en {worst.days_left} días"


def _backup(settings: Settings, max_age_hours: float) -> tuple[bool, str]:
    database = Database(settings.database_url)
    try:
        raw = store_settings.read_value_from(database, store_settings.LAST_BACKUP)
    finally:
        database.dispose()
    if not raw:
        return False, "nunca se hizo un respaldo (minimarket backup)"
    age = (time.time() - float(raw)) / 3600
    return age <= max_age_hours, f"último respaldo hace {age:.1f} h (máximo {max_age_hours:.0f} h)"


def _ledger(settings: Settings) -> tuple[bool, str]:
    database = Database(settings.database_url)
    try:
        report = run_verification(database)
    finally:
        database.dispose()
    if report.ok:
        return True, f"{report.balances_checked} existencias cuadran con {report.movements_checked} movimientos"
    return False, (f"{len(report.mismatches)} existencia(s) no cuadran con el libro y {len(report.aggregates)} "
                   "agregado(s) no coinciden con su recuento (minimarket verify)")


def run_doctor(settings: Settings, options: DoctorOptions) -> list[Check]:
    """Every check of the daily checklist; none is skipped silently."""
    checks = [_run(f"servicio {name}", lambda url=url: _service(url)) for name, url in options.service_urls.items()]
    first_url = next(iter(options.service_urls.values()))
    checks.append(_run("API /api/inventory", lambda: _api(first_url, options.api_key)))
    checks.append(_run("base de datos", lambda: _database(settings)))
    checks.append(_run("redis", lambda: _redis(settings)))
    if options.prometheus_url:
        checks.append(_run("prometheus", lambda: _prometheus(options.prometheus_url)))
    if options.alertmanager_url:
        checks.append(_run("alertmanager", lambda: _alertmanager(options.alertmanager_url, options.alertmanager_tls)))
    if options.grafana_url:
        checks.append(_run("grafana", lambda: _grafana(options.grafana_url)))
    checks.append(_run("disco", lambda: _disk(options.disk_path, options.min_free_ratio)))
    if options.cert_dir is not None:
        checks.append(_run("certificados TLS", lambda: _certificates(options.cert_dir, options.cert_warn_days)))
    checks.append(_run("respaldo", lambda: _backup(settings, options.backup_max_age_hours)))
    checks.append(_run("libro de stock", lambda: _ledger(settings)))
    return checks
