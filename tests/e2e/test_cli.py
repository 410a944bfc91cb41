"""The `minimarket` command as an operator runs it: keys, verify, refusing unsafe config, service split.

The key and verify commands run against one store per backend for the module (`shared_server`): each
test writes its own products and keys and checks only those."""

from __future__ import annotations

import json
import secrets
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import create_pg_database, drop_pg_database, need_postgres
from tests.e2e.servers import Server, StartServer, clean_env, free_port, measure, run_cli

pytestmark = pytest.mark.timeout(120)


def test_apikey_create_json_works_and_revoke_locks_it_out(shared_server: Server) -> None:
    server = shared_server
    result = server.cli("apikey", "create", "--name", "caja-1", "--role", "admin", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # the whole stdout is one JSON document
    assert data["name"] == "caja-1" and data["role"] == "admin"
    assert data["key"].startswith("mm_")
    assert data["key"].startswith(f"mm_{data['prefix']}.")

    with server.client(data["key"]) as client:
        r = client.get("/api/inventory")
        assert r.status_code == 200, r.text
        r = client.post("/api/inventory", json={"sku": "CLI-1", "name": "Alta con clave de CLI"})
        assert r.status_code == 201, r.text
        assert r.json()["sku"] == "CLI-1"

    revoked = server.cli("apikey", "revoke", data["prefix"])
    assert revoked.returncode == 0, revoked.stderr
    assert "1 clave(s) revocada(s)" in revoked.stdout
    with server.client(data["key"]) as client:
        r = client.get("/api/inventory")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "no_autenticado"
    assert r.headers.get("www-authenticate") == "ApiKey"

    again = server.cli("apikey", "revoke", data["prefix"])
    assert again.returncode == 1  # nothing active left with that prefix


@pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)
def test_apikey_list_shows_state_never_secrets(shared_server: Server) -> None:
    sqlite_server = shared_server
    active = json.loads(sqlite_server.cli("apikey", "create", "--name", "activa", "--role", "lectura", "--json").stdout)
    gone = json.loads(sqlite_server.cli("apikey", "create", "--name", "vieja", "--role", "admin", "--json").stdout)
    assert sqlite_server.cli("apikey", "revoke", "vieja").returncode == 0
    listed = sqlite_server.cli("apikey", "list")
    assert listed.returncode == 0, listed.stderr[-3000:]
    lines = listed.stdout.splitlines()
    assert any(active["prefix"] in line and "activa" in line for line in lines), listed.stdout
    assert any(gone["prefix"] in line and "revocada" in line for line in lines), listed.stdout
    assert active["key"] not in listed.stdout and gone["key"] not in listed.stdout


def test_apikey_create_refuses_unknown_role(shared_server: Server) -> None:
    result = shared_server.cli("apikey", "create", "--name", "x", "--role", "superusuario", "--json")
    assert result.returncode == 2
    assert result.stdout == ""  # nothing a script could mistake for a key
    assert "superusuario" in result.stderr


def test_verify_detects_tampered_balance(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    with server.client(key) as client:
        r = client.post("/api/inventory", json={"sku": "VER-1", "name": "Fideos", "initial_stock": 12})
        assert r.status_code == 201, r.text
        r = client.post("/api/inventory/VER-1/movements", json={"type": "venta", "quantity": 5})
        assert r.status_code == 201, r.text
    ok = server.cli("verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout

    def tamper(by: int) -> None:  # VER-1's one balance only: the module's other tests share the store
        engine = create_engine(server.database_url)
        try:
            with engine.begin() as conn:
                changed = conn.execute(text(
                    "UPDATE existencias SET cantidad = cantidad + :by "
                    "WHERE producto_id = (SELECT id FROM productos WHERE sku = 'VER-1')"), {"by": by}).rowcount
        finally:
            engine.dispose()
        assert changed == 1

    tamper(+1)
    bad = server.cli("verify")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "VER-1" in bad.stdout and "DEP" in bad.stdout
    assert "8" in bad.stdout and "7" in bad.stdout  # balance 8 against a ledger sum of 7
    assert "1 diferencia(s)" in bad.stdout
    tamper(-1)  # put back: verify agrees again
    assert server.cli("verify").returncode == 0


@pytest.mark.parametrize("key", [None, "", "0" * 64, "changeme"])
def test_production_refuses_to_serve_without_a_real_encryption_key(tmp_path: Path, key: str | None) -> None:
    env = clean_env(MINIMARKET_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}",
                    DATABASE_ENCRYPTION_KEY=key)
    result = run_cli(["serve", "--host", "127.0.0.1", "--port", str(free_port())], env, tmp_path, timeout=30)
    assert result.returncode != 0
    assert "DATABASE_ENCRYPTION_KEY" in result.stderr
    if key != "changeme":  # "changeme" is already refused as not being 64 hex characters
        assert "En producción DATABASE_ENCRYPTION_KEY es obligatoria" in result.stderr
    assert not (tmp_path / "prod.db").exists()  # refused before touching the database


@pytest.mark.parametrize("key", ["abc123", "g" * 64, "0" * 63])
def test_malformed_encryption_key_is_refused_even_in_development(tmp_path: Path, key: str) -> None:
    env = clean_env(MINIMARKET_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
                    DATABASE_ENCRYPTION_KEY=key)
    result = run_cli(["serve", "--host", "127.0.0.1", "--port", str(free_port())], env, tmp_path, timeout=30)
    assert result.returncode != 0
    assert "DATABASE_ENCRYPTION_KEY" in result.stderr and "64 caracteres hexadecimales" in result.stderr


def test_production_with_a_valid_key_serves(start_server: StartServer, sqlite_database: str) -> None:
    server = start_server(sqlite_database, MINIMARKET_ENV="production", DATABASE_ENCRYPTION_KEY=secrets.token_hex(32),
                          ALLOWED_HOSTS="127.0.0.1")
    with httpx.Client(trust_env=False, timeout=5) as client:
        assert client.get(server.base_url + "/health").status_code == 200


def test_service_split_negocio_has_no_writes_deposito_has_them(start_server: StartServer, tmp_path: Path) -> None:
    negocio = start_server(f"sqlite:///{tmp_path / 'negocio.db'}", "negocio")
    deposito = start_server(f"sqlite:///{tmp_path / 'deposito.db'}", "deposito")
    with httpx.Client(trust_env=False, timeout=10) as client:
        for server, name in ((negocio, "negocio"), (deposito, "deposito")):
            health = client.get(server.base_url + "/health")
            assert health.status_code == 200, health.text
            assert health.json()["service"] == name
        negocio_paths = client.get(negocio.base_url + "/openapi.json").json()["paths"]
        deposito_paths = client.get(deposito.base_url + "/openapi.json").json()["paths"]

    assert "get" in negocio_paths["/api/inventory"]
    assert "post" not in negocio_paths["/api/inventory"]
    assert "/api/movements" not in negocio_paths and "/api/sales" not in negocio_paths
    assert "post" in deposito_paths["/api/inventory"]
    assert "post" in deposito_paths["/api/sales"] and "post" in deposito_paths["/api/inventory/{sku}/movements"]

    key = negocio.create_key("negocio")
    with negocio.client(key) as client:
        r = client.post("/api/inventory", json={"sku": "NEG-1", "name": "No se puede"})
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "metodo_no_permitido"


def test_serve_stops_cleanly_on_sigterm(sqlite_server: Server) -> None:
    start = time.monotonic()
    sqlite_server.stop()
    elapsed = time.monotonic() - start
    measure("SIGTERM to exit", f"{elapsed:.2f} s, exit code {sqlite_server.process.returncode}")
    # uvicorn shuts down gracefully, then re-raises the signal it caught: exit status -SIGTERM.
    assert sqlite_server.process.returncode in (0, -signal.SIGTERM)
    assert elapsed < 10
    log = sqlite_server.log_path.read_text(encoding="utf-8")
    assert "Application shutdown complete" in log  # the lifespan ran: the database was disposed
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False, timeout=2) as client:
        client.get(sqlite_server.base_url + "/health/live")


def test_serve_refuses_unmigrated_postgresql(tmp_path: Path) -> None:
    need_postgres()
    url = create_pg_database()
    try:
        env = clean_env(DATABASE_URL=url)
        result = run_cli(["serve", "--host", "127.0.0.1", "--port", str(free_port())], env, tmp_path, timeout=30)
        assert result.returncode == 1
        assert "minimarket db upgrade" in result.stderr
    finally:
        drop_pg_database(url)

