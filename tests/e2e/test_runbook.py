"""The runbook is executable: every block marked `<!-- probar -->` in docs/OPERATIONS_RUNBOOK.md runs
as written (bare-metal variant) against a live system — PostgreSQL, Redis, the app and the CLI —
and every alert in alerts.yml has its section in docs/RESPONDING_TO_ALERTS.md.

The only rewrites are the ones an operator's machine makes for them: the app's port
(`localhost:8080`), the database names (`inventario_retail`, `prueba_restore`) and the
working directory. Prometheus/Alertmanager queries are exercised by test_observability_pipeline.py.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.conftest import drop_pg_database, pg_url_for, redis_available
from tests.e2e.conftest import clean_env, run_cli

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "OPERATIONS_RUNBOOK.md"
RESPONSES = ROOT / "docs" / "RESPONDING_TO_ALERTS.md"
ALERTS = ROOT / "observability" / "prometheus" / "alerts.yml"
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
    for section in ("P1", "P2", "PB1", "PB2", "PB4", "PB5", "Chequeo diario", "Respaldo", "Restauración"):
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


@pytest.fixture
def store(pg_database: str, start_server, tmp_path: Path):  # noqa: ANN001, ANN201
    """A running store as the runbook expects it: demo data, a read-only key, TLS material,
    an encrypted integration key, last night's backup."""
    if not redis_available():
        pytest.fail("Redis no responde") if "CI" in clean_env() else pytest.skip("Redis no disponible")
    key_hex = secrets.token_hex(32)
    workdir = tmp_path / "tienda"
    workdir.mkdir()
    env = clean_env(DATABASE_URL=pg_database, DATABASE_ENCRYPTION_KEY=key_hex)
    for args in (["demo", "--products", "40", "--days", "10"],
                 ["certs", "generate", "--dest", "observability/prometheus/tls"],
                 ["secret", "set", "integration_api_key", "--value", "clave-del-proveedor-123"],
                 ["backup", "--dest", "backups", "--keep", "14"]):
        done = run_cli(args, env, workdir, timeout=BLOCK_TIMEOUT)
        assert done.returncode == 0, f"minimarket {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    server = start_server(pg_database, DATABASE_ENCRYPTION_KEY=key_hex)
    key = server.create_key(name="operador", role="lectura")
    restore_name = f"prueba_restore_{secrets.token_hex(4)}"
    yield {"server": server, "env": env, "workdir": workdir, "key": key, "key_hex": key_hex,
           "restore_name": restore_name}
    drop_pg_database(pg_url_for(restore_name))


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
