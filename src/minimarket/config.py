"""Settings from environment variables and `.env`, in one object."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///./data/minimarket.db"
# Values that ship in examples and must never run a production store.
KNOWN_DEFAULT_SECRETS = {"", "dev", "changeme", "change-me", "secret", "0" * 64}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
# Passwords that ship in examples (.env.production.example uses CAMBIAR_… placeholders).
_EXAMPLE_PASSWORD = re.compile(r"://[^:/@]+:(postgres|password|changeme|dev|cambiar[^@]*)@", re.IGNORECASE)


def weak_key_problem(key_hex: str) -> str | None:
    """Why a 64-hex key is obviously not random (in Spanish), or None.

    A random key fails these tests with a probability far below one in a billion: fewer than 8
    of the 16 hex digits, a block repeated (period up to 32), one step between neighbours
    (0123…, fedc…, ffff…) in more than half of the places or 12 times in a row.
    """
    nibbles = key_hex.lower()
    distinct = len(set(nibbles))
    if distinct < 8:
        return f"usa sólo {distinct} de los 16 dígitos hexadecimales"
    for period in range(1, 33):
        if nibbles[period:] == nibbles[:-period]:
            return f"repite un mismo bloque de {period} caracteres"
    steps = [(int(b, 16) - int(a, 16)) % 16 for a, b in zip(nibbles, nibbles[1:])]
    run = longest = 1
    for before, after in zip(steps, steps[1:]):
        run = run + 1 if after == before else 1
        longest = max(longest, run)
    if Counter(steps).most_common(1)[0][1] > len(nibbles) // 2 or longest >= 12:
        return "es casi una secuencia (como 0123…, fedc… o un mismo dígito repetido)"
    return None


# PostgreSQL connections. A process opens at most its pool, its overflow, the reads and the stock movements on
# the event loop (db_async: min(pool, ASYNC_READ_CONNECTIONS) and min(pool, ASYNC_WRITE_CONNECTIONS), each
# only in the service that gets them). Besides the services, a
# deployment keeps OTHER_CONNECTIONS for what runs beside them (the CLI and `minimarket verify`, the nightly
# backup's pg_dump, the migrations, the metrics exporter, an operator's psql); PostgreSQL keeps
# SUPERUSER_RESERVED_CONNECTIONS (its default) for superusers only. tests/deploy/test_connection_budget.py
# checks the deploy files against this budget.
ASYNC_READ_CONNECTIONS = 4
# Stock movements recorded on the event loop (stock/movement_on_loop.py): a pool of their own, min(pool, this),
# only in the service that gets them. More at once would only queue on the database's cores.
ASYNC_WRITE_CONNECTIONS = 8
OTHER_CONNECTIONS = 12
SUPERUSER_RESERVED_CONNECTIONS = 3


def connections_per_process(pool_size: int, max_overflow: int) -> int:
    """The most PostgreSQL connections one app process opens."""
    return pool_size + max_overflow + min(pool_size, ASYNC_READ_CONNECTIONS) + min(pool_size, ASYNC_WRITE_CONNECTIONS)


def connection_budget(processes: int, pool_size: int, max_overflow: int) -> int:
    """The most connections a deployment of `processes` app processes (services × workers) and its tools
    open; PostgreSQL's max_connections must be at least this plus SUPERUSER_RESERVED_CONNECTIONS."""
    return processes * connections_per_process(pool_size, max_overflow) + OTHER_CONNECTIONS


class ConfigError(ValueError):
    """The configuration cannot run the system; the message says what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    minimarket_env: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    redis_url: str | None = None
    # Connections per process: a request holds one at a time, so size it for the threads that run
    # requests; plus min(pool, 4) for the reads and min(pool, 8) for the stock movements on the event loop
    # (db_async): connections_per_process. The deployment's budget (connection_budget) must fit in PostgreSQL's
    # max_connections.
    db_pool_size: int = Field(default=16, ge=1, le=200)
    db_max_overflow: int = Field(default=16, ge=0, le=200)
    # /health runs its dependency checks at most once per this many seconds (probes in between get that answer).
    health_cache_seconds: float = Field(default=1.0, ge=0, le=30)
    database_encryption_key: str | None = None
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8080
    dashboard_port: int = 8080
    deposito_port: int = 8001
    negocio_port: int = 8002
    # Peer service base URLs that /health checks when set (split deployment).
    dashboard_url: str | None = None
    deposito_url: str | None = None
    negocio_url: str | None = None
    allow_negative_stock: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    default_location: str = "DEP"
    # Nightly backup run by the app (one replica takes the lock); None = on in production, off in development.
    backup_enabled: bool | None = None
    backup_schedule_hour: int = Field(default=3, ge=0, le=23)
    backup_dir: str = "backups"
    backup_keep: int = Field(default=14, ge=1)
    backup_include_config: bool = True
    # Certificates whose expiry /metrics reports (comma-separated paths; missing files are skipped).
    tls_cert_files: str = "observability/prometheus/tls/prometheus.crt,observability/prometheus/tls/alertmanager.crt"
    # Hardening: /api rate limits per API key and per client IP (fixed window), proxies whose
    # X-Forwarded-For is believed, browser origins allowed by CORS, host names served in production.
    rate_limit_enabled: bool = True
    rate_limit_per_key: int = Field(default=600, ge=1)
    rate_limit_per_ip: int = Field(default=300, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    trusted_proxies: str = ""  # nobody by default: a proxy is named explicitly (IP, network or host name)
    cors_origins: str = ""
    # Bearer token that /metrics asks for (and that shows /health's error details); empty = /metrics open.
    metrics_token: str | None = None
    allowed_hosts: str = ""
    # E-mail of the alerts Alertmanager delivers to /api/alerts/webhook (off when SMTP_HOST is empty).
    # The password is the `smtp_password` secret; the recipients, the store setting `alertas.emails`.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_from: str | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, v: str) -> str:
        # psycopg 3 is the driver; accept the plain postgres URLs operators paste.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://"):]
        if v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://"):]
        return v

    def service_port(self, service: str) -> int:
        return {"dashboard": self.dashboard_port, "deposito": self.deposito_port,
                "negocio": self.negocio_port}.get(service, self.port)

    def cert_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.tls_cert_files.split(",") if p.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        return self.minimarket_env == "production"

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)

    def check(self) -> None:
        """Refuse settings that are unsafe or malformed; raise ConfigError naming the variable."""
        key = self.database_encryption_key
        if key is not None and key != "" and not _HEX64.fullmatch(key):
            raise ConfigError(
                "DATABASE_ENCRYPTION_KEY debe tener 64 caracteres hexadecimales "
                "(generá una con: minimarket keys generate)"
            )
        if self.is_production:
            if key is None or key.lower() in KNOWN_DEFAULT_SECRETS:
                raise ConfigError(
                    "En producción DATABASE_ENCRYPTION_KEY es obligatoria y no puede ser un valor de ejemplo "
                    "(generá una con: minimarket keys generate)"
                )
            if problem := weak_key_problem(key):
                raise ConfigError(
                    f"En producción DATABASE_ENCRYPTION_KEY no puede ser una clave fácil de adivinar: {problem}. "
                    "Generá una al azar con: minimarket keys generate (y para cambiarla: minimarket keys rotate)"
                )
            if self.is_sqlite is False and _EXAMPLE_PASSWORD.search(self.database_url):
                raise ConfigError("En producción DATABASE_URL no puede usar una contraseña por defecto o de ejemplo "
                                  "(CAMBIAR_…): poné la contraseña real de PostgreSQL")
            hosts = csv_list(self.allowed_hosts)
            if not hosts or any("*" in h.removeprefix("*.") for h in hosts):
                raise ConfigError(
                    "En producción ALLOWED_HOSTS es obligatoria y no puede ser * (sí *.dominio): los nombres o IP "
                    "con que se llega al servicio, separados por coma (ej. minimercado.lan,192.168.1.20,127.0.0.1)"
                )
        token = self.metrics_token
        if token and (len(token) < 16 or token.upper().startswith("CAMBIAR") or not token.isprintable()
                      or " " in token):
            raise ConfigError("METRICS_TOKEN debe tener al menos 16 caracteres, sin espacios, y no ser un valor de "
                              "ejemplo (generá uno con: openssl rand -hex 32), o quedar vacío")
        for proxy in csv_list(self.trusted_proxies):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(proxy) or proxy.replace(".", "").isdigit():
                    raise ConfigError(f"TRUSTED_PROXIES: '{proxy}' no es una IP, una red ni un nombre de host "
                                      "(ej. nginx o 127.0.0.1,10.0.0.0/24)") from None


def csv_list(value: str | None) -> list[str]:
    """A comma-separated setting as a list, blanks dropped."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
