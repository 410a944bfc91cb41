"""The runbook is executable: every block marked `<!-- probar -->` in docs/OPERATIONS_RUNBOOK.md runs
as written (bare-metal variant) against a live system — PostgreSQL, Redis, the app and the CLI —
and every alert in alerts.yml has its section in docs/RESPONDING_TO_ALERTS.md.

The store runs on a private PostgreSQL cluster started the way docker-compose.production.yml
starts it (pg_stat_statements preloaded, deploy/postgres/initdb/*.sh run in order), so the
database really is `inventario_retail` and `psql -h 127.0.0.1 -U postgres` reaches it through
PGPORT. The only rewrites are the ones an operator's machine makes for them: the app's port
(`localhost:8080`) and the working directory. Prometheus/Alertmanager queries are exercised by test_observability_pipeline.py.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.e2e.pg_cluster import private_cluster
from tests.e2e.servers import clean_env, run_cli
from tests.helpers import need_redis

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "OPERATIONS_RUNBOOK.md"
RESPONSES = ROOT / "docs" / "RESPONDING_TO_ALERTS.md"
ALERTS = ROOT / "observability" / "prometheus" / "alerts.yml"
COMPOSE = ROOT / "docker-compose.production.yml"
INITDB = ROOT / "deploy" / "postgres" / "initdb"
MARKER = "<!-- probar -->"
BLOCK_TIMEOUT = 120


def runbook_blocks(text: str) -> list[tuple[str, str]]:
    """(section heading, script) for each fenced bash block that follows the marker."""
    blocks, heading, fenced = [], "", False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{2,3} ", line):  # sections and procedures, not sub-steps
            heading = line.lstrip("# ").strip()
        if line.strip() == MARKER:
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            assert j < len(lines) and lines[j].strip() == "```bash", f"{MARKER} under '{heading}' has no bash block"
            end = lines.index("```", j + 1)
            blocks.append((heading, "\n".join(lines[j + 1:end])))
            i = end
        i += 1
    return blocks


def test_the_runbook_marks_the_commands_it_promises():
    headings = [h for h, _ in runbook_blocks(RUNBOOK.read_text(encoding="utf-8"))]
    for section in ("P1", "P2", "PB1", "PB2", "Mantenimiento de la base", "PB4", "PB5", "Chequeo diario", "Respaldo",
                    "Restauración"):
        assert any(h.startswith(section) for h in headings), f"no hay comandos probados en {section}: {headings}"


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9\- ]", "", heading.lower()).replace(" ", "-")


def test_every_alert_has_its_section_and_its_link_resolves():
    rules = [r for g in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for r in g["rules"] if "alert" in r]
    anchors = {_anchor(m) for m in re.findall(r"^## (.+)$", RESPONSES.read_text(encoding="utf-8"), re.MULTILINE)}
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert name.lower() in anchors, f"docs/RESPONDING_TO_ALERTS.md no tiene sección para {name}"
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/RESPONDING_TO_ALERTS.md#{name.lower()}", url


@pytest.fixture(scope="module")
def postgres_as_deployed() -> Iterator[str]:
    """A private cluster started as docker-compose.production.yml starts PostgreSQL
    (pg_stat_statements preloaded) and initialised by deploy/postgres/initdb/*.sh in order, as the
    image's entrypoint runs them; yields the superuser URL of `inventario_retail`."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["postgres"]
    command = compose["command"]
    settings = dict(arg.split("=", 1) for flag, arg in zip(command, command[1:]) if flag == "-c")
    with private_cluster(settings) as admin_url:
        url = make_url(admin_url)
        env = {"PATH": os.environ["PATH"], "PGHOST": url.host, "PGPORT": str(url.port), "POSTGRES_USER": "postgres",
               "POSTGRES_PASSWORD": secrets.token_hex(12), "POSTGRES_EXPORTER_PASSWORD": secrets.token_hex(12)}
        for script in sorted(INITDB.glob("*.sh")):
            done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60,
                                  check=False)
            assert done.returncode == 0, f"{script.name}:\n{done.stdout}\n{done.stderr}"
        yield url.set(database="inventario_retail").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def store(postgres_as_deployed: str, module_start_server, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001, ANN201
    """A running store as the runbook expects it: demo data, a read-only key, TLS material,
    an encrypted integration key, last night's backup. One for the module (a private cluster and
    seven `minimarket` processes): the runbook changes neither the key nor the secret PB5 reads."""
    need_redis()
    key_hex = secrets.token_hex(32)
    workdir = tmp_path_factory.mktemp("runbook") / "tienda"
    workdir.mkdir()
    url = postgres_as_deployed
    env = clean_env(DATABASE_URL=url, DATABASE_ENCRYPTION_KEY=key_hex, PGPORT=str(make_url(url).port))
    for args in (["db", "upgrade"], ["demo", "--products", "40", "--days", "10"],
                 ["certs", "generate", "--dest", "observability/prometheus/tls"],
                 ["secret", "set", "integration_api_key", "--value", "clave-del-proveedor-123"],
                 ["backup", "--dest", "backups", "--keep", "14"]):
        done = run_cli(args, env, workdir, timeout=BLOCK_TIMEOUT)
        assert done.returncode == 0, f"minimarket {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    server = module_start_server(url, DATABASE_ENCRYPTION_KEY=key_hex)
    key = server.create_key(name="operador", role="lectura")
    yield {"server": server, "env": env, "workdir": workdir, "key": key, "key_hex": key_hex,
           "restore_name": "prueba_restore"}


def _as_on_this_machine(script: str, *, port: int, database: str, restore_name: str) -> str:
    script = script.replace("localhost:8080", f"127.0.0.1:{port}")
    script = re.sub(r"\bprueba_restore\b", restore_name, script)
    return re.sub(r"\binventario_retail\b", database, script)


def test_runbook_commands_run_against_a_live_system(store):  # noqa: ANN001
    server = store["server"]
    database = make_url(server.database_url).database
    venv_bin = str(Path(sys.executable).parent)
    env = {**store["env"], "MINIMARKET_API_KEY": store["key"], "PORT": str(server.port),
           "PATH": f"{venv_bin}:{store['env'].get('PATH', '/usr/bin:/bin')}"}
    blocks = runbook_blocks(RUNBOOK.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    for heading, script in blocks:
        runnable = _as_on_this_machine(script, port=server.port, database=database,
                                       restore_name=store["restore_name"])
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", runnable], env=env, cwd=store["workdir"],
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False)
        assert done.returncode == 0, (f"el bloque de «{heading}» falló (código {done.returncode}):\n{script}\n"
                                      f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}\n"
                                      f"--- servidor\n{server.log_tail()}")
        if heading.startswith("PB5"):
            assert "descifra" in done.stdout and " t" in done.stdout, done.stdout  # the secret decrypts in SQL
        if heading.startswith("Mantenimiento de la base"):
            # The slow-query lists have the store's own statements, and VACUUM ANALYZE ran.
            assert "mean_exec_time" in done.stdout and "movimientos_stock" in done.stdout, done.stdout
            assert re.search(r"\(\d+ rows\)", done.stdout) and "(0 rows)" not in done.stdout, done.stdout
            assert "VACUUM" in done.stdout or "vacuuming" in done.stderr, done.stderr
        if heading.startswith("Restauración"):
            assert re.search(r"^\s+40$", done.stdout, re.MULTILINE), done.stdout  # every product came back


def test_pb5_with_a_wrong_key_fails_clearly(store):  # noqa: ANN001
    block = next(s for h, s in runbook_blocks(RUNBOOK.read_text(encoding="utf-8")) if h.startswith("PB5"))
    database = make_url(store["server"].database_url).database
    psql_part = block[block.index("psql"):]
    runnable = _as_on_this_machine(psql_part, port=store["server"].port, database=database,
                                   restore_name=store["restore_name"])
    env = {**store["env"], "DATABASE_ENCRYPTION_KEY": secrets.token_hex(32)}
    done = subprocess.run(["bash", "-c", runnable], env=env, cwd=store["workdir"], capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT, check=False)
    assert done.returncode != 0
    assert "decrypt_data failed" in done.stderr, done.stderr
