"""deploy/postgres/initdb/20-postgres-exporter.sh run for real against the local PostgreSQL.

The script makes a cluster-wide role, so the test names a throwaway one (POSTGRES_EXPORTER_USER
= mm_t_exp_<random>) and a throwaway migrated database, and drops both afterwards; no other role
is touched. Debian's prometheus-postgres-exporter then reads the database as that role: pg_up is 1
with it and 0 without it (issue 7 item 18: the user was created nowhere, pg_up stayed 0).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers import admin_engine, create_pg_database, drop_pg_database, need_postgres
from tests.deploy.helpers import COMPOSE, DEPLOY, ENV_PRODUCTION_EXAMPLE, free_port, parse_env_file
from tests.observability.helpers import OBS, load_yaml, need_binary

SCRIPT = DEPLOY / "postgres" / "initdb" / "20-postgres-exporter.sh"


@dataclass
class ExporterRole:
    name: str
    password: str
    database_url: str  # the throwaway database it may connect to

    @property
    def database(self) -> str:
        return make_url(self.database_url).database


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    url = make_url(os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    full = {"PATH": os.environ["PATH"], "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres", **env}
    if url.password:
        full["PGPASSWORD"] = url.password
    return subprocess.run(["sh", str(SCRIPT)], env=full, capture_output=True, text=True, timeout=60, check=False)


def drop_role(name: str) -> None:
    assert name.startswith("mm_t_exp_"), name  # never any other role
    with admin_engine().connect() as conn:
        conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))


@pytest.fixture
def exporter_role(pg_template: str) -> Iterator[ExporterRole]:
    need_postgres()
    role = ExporterRole(f"mm_t_exp_{uuid.uuid4().hex[:10]}", secrets.token_hex(16), create_pg_database(pg_template))
    try:
        yield role
    finally:
        drop_pg_database(role.database_url)  # first: its ACL names the role
        drop_role(role.name)


def created(role: ExporterRole) -> subprocess.CompletedProcess[str]:
    return run_script({"POSTGRES_EXPORTER_USER": role.name, "POSTGRES_EXPORTER_PASSWORD": role.password,
                       "POSTGRES_EXPORTER_DATABASE": role.database})


def role_url(role: ExporterRole) -> str:
    return make_url(role.database_url).set(username=role.name, password=role.password).render_as_string(
        hide_password=False)


def test_the_script_creates_a_least_privilege_monitoring_role(exporter_role):
    result = created(exporter_role)
    assert result.returncode == 0, result.stderr
    with admin_engine().connect() as conn:
        attrs = conn.execute(text(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit, rolcanlogin, "
            "rolconnlimit FROM pg_roles WHERE rolname = :n"), {"n": exporter_role.name}).one()
        member_of = set(conn.scalars(text(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = :n"), {"n": exporter_role.name}))
    assert tuple(attrs) == (False, False, False, False, False, True, True, 3)
    assert member_of == {"pg_monitor"}

    engine = create_engine(role_url(exporter_role))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_has_role(current_user, 'pg_monitor', 'USAGE')")) is True
            assert conn.scalar(text("SELECT count(*) FROM pg_stat_database")) > 0
            assert conn.scalar(text("SELECT pg_database_size(current_database())")) > 0
        with engine.connect() as conn, pytest.raises(Exception, match="permission denied"):
            conn.execute(text("SELECT count(*) FROM public.productos"))  # the store's data stays out of reach
        with engine.connect() as conn, pytest.raises(Exception, match="permission denied"):
            conn.execute(text("CREATE TABLE public.intruso (id int)"))
    finally:
        engine.dispose()


def test_the_script_refuses_to_run_without_a_password(exporter_role):
    result = run_script({"POSTGRES_EXPORTER_USER": exporter_role.name, "POSTGRES_EXPORTER_DATABASE":
                         exporter_role.database})
    assert result.returncode != 0
    assert "POSTGRES_EXPORTER_PASSWORD" in result.stderr
    with admin_engine().connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :n"), {"n": exporter_role.name}) == 0


def scrape_pg_up(exporter: str, role: ExporterRole, tmp_path: Path) -> float:
    """Start Debian's postgres_exporter as the compose file configures it; return pg_up."""
    url = make_url(role.database_url)
    port = free_port()
    env = {"PATH": os.environ["PATH"], "DATA_SOURCE_URI": f"{url.host}:{url.port or 5432}/{url.database}"
           "?sslmode=disable", "DATA_SOURCE_USER": role.name, "DATA_SOURCE_PASS": role.password}
    log = (tmp_path / f"exporter-{port}.log").open("w")
    process = subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{port}"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                (line,) = [ln for ln in body.splitlines() if ln.startswith("pg_up ")]
                return float(line.split()[1])
            except (httpx.TransportError, ValueError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / f"exporter-{port}.log").read_text()) from None
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_postgres_exporter_reads_the_database_only_once_the_role_exists(exporter_role, tmp_path):
    exporter = need_binary("prometheus-postgres-exporter")
    assert scrape_pg_up(exporter, exporter_role, tmp_path) == 0  # the bug: no such user
    assert created(exporter_role).returncode == 0
    assert scrape_pg_up(exporter, exporter_role, tmp_path) == 1


def test_compose_passes_one_password_to_the_script_and_the_exporter():
    postgres = load_yaml(COMPOSE)["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_EXPORTER_PASSWORD"].startswith("${POSTGRES_EXPORTER_PASSWORD:?")
    exporter = load_yaml(OBS / "docker-compose.observability.yml")["services"]["postgres-exporter"]["environment"]
    assert exporter["DATA_SOURCE_USER"] == "postgres_exporter"
    assert exporter["DATA_SOURCE_PASS"].startswith("${POSTGRES_EXPORTER_PASSWORD:?")
    assert exporter["DATA_SOURCE_URI"] == "postgres:5432/inventario_retail?sslmode=disable"
    assert "POSTGRES_EXPORTER_PASSWORD" in parse_env_file(ENV_PRODUCTION_EXAMPLE)
    assert SCRIPT.stat().st_mode & 0o111, "la imagen de postgres sólo ejecuta los .sh con permiso de ejecución"
    assert sorted(p.name for p in SCRIPT.parent.iterdir()) == ["10-minimarket.sh", "20-postgres-exporter.sh",
                                                               "30-pg-stat-statements.sh"]
