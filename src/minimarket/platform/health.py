"""GET /health: each dependency checked for real; 503 names the ones that failed."""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx
from sqlalchemy.engine import Engine

from minimarket import __version__
from minimarket.db import Database
from minimarket.platform.cache import Cache
from minimarket.platform.limiter import Limiter


class SchemaGate(Protocol):
    """Raises unless the database is at the code's revision (`migrations.runner.SchemaCheck`, which
    `apps.py` hands in: the migrations sit above every area's tables, so platform/ never imports them)."""

    def ensure(self, engine: Engine) -> None: ...


def _timed(check) -> dict[str, Any]:  # noqa: ANN001
    start = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return {"status": "fail", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
    result: dict[str, Any] = {"status": "ok", "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    if detail:
        result.update(detail)
    return result


def _database(db: Database, schema: SchemaGate | None) -> dict[str, Any]:
    db.ping()
    if schema is not None:
        schema.ensure(db.engine)
    return {"backend": "sqlite" if db.is_sqlite else "postgresql"}


def _cache(cache: Cache) -> dict[str, Any]:
    cache.ping()
    return {"backend": cache.kind}


def _peer(url: str) -> dict[str, Any]:
    response = httpx.get(url.rstrip("/") + "/health/live", timeout=2.0)
    response.raise_for_status()
    return {"url": url}


# Errors of these kinds say what to do and name no host; any other error text (a driver's
# "connection to server at db-host, port 5432 failed", a peer's URL) is for authenticated eyes only.
_SAFE_ERRORS = ("SchemaMismatch:",)
HIDDEN = ("El detalle de los errores se muestra con una clave de API válida (X-API-Key) "
          "o con el token de métricas (Authorization: Bearer)")


def without_details(body: dict[str, Any]) -> dict[str, Any]:
    """/health for an unauthenticated caller: which checks fail, not the hosts, ports or URLs behind them."""
    checks, hidden = {}, False
    for name, check in body["checks"].items():
        kept = {k: v for k, v in check.items() if k not in ("error", "url")}
        error = check.get("error")
        if error is not None:
            if error.startswith(_SAFE_ERRORS):
                kept["error"] = error
            else:
                hidden = True
        checks[name] = kept
    result = {**body, "checks": checks}
    if hidden:
        result["detail"] = HIDDEN
    return result


def _ratelimit(limiter: Limiter) -> dict[str, Any]:
    # Not a failure: with Redis down the limits still hold, counted in each process's memory.
    if limiter.degraded:
        return {"status": "degraded", "backend": limiter.kind,
                "detail": "Redis no responde: los límites se cuentan en la memoria de cada proceso"}
    return {"status": "ok", "backend": limiter.kind}


def check_health(*, service: str, db: Database, cache: Cache, peers: dict[str, str],
                 schema: SchemaGate | None = None, limiter: Limiter | None = None) -> tuple[int, dict[str, Any]]:
    checks = {"database": _timed(lambda: _database(db, schema)), "cache": _timed(lambda: _cache(cache))}
    if limiter is not None:
        checks["ratelimit"] = _ratelimit(limiter)
    for name, url in peers.items():
        checks[name] = {**_timed(lambda url=url: _peer(url)), "url": url}
    failing = [name for name, c in checks.items() if c["status"] == "fail"]
    degraded = [name for name, c in checks.items() if c["status"] == "degraded"]
    body: dict[str, Any] = {
        "status": "fail" if failing else "degraded" if degraded else "ok",
        "service": service,
        "version": __version__,
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
    if degraded:
        body["degraded"] = degraded
    return (200 if not failing else 503), body
