"""`minimarket doctor` against a live store: it passes when all is well and tells the truth when not."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.conftest import REDIS_URL, need_redis
from tests.e2e.conftest import run_cli

SKIP_OBSERVABILITY = ["--skip", "prometheus", "--skip", "alertmanager"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # released on exit: nothing listens there


def doctor(server, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, dict]:  # noqa: ANN001
    done = server.cli("doctor", "--json", "--service-url", f"minimarket={server.base_url}", *args, **env)
    return done, json.loads(done.stdout)


def checks_by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture
def healthy_store(start_server, sqlite_database, tmp_path):  # noqa: ANN001, ANN201
    need_redis()
    server = start_server(sqlite_database, REDIS_URL=REDIS_URL)
    for args in (["certs", "generate", "--dest", "observability/prometheus/tls"], ["backup", "--dest", "backups"]):
        done = run_cli(args, server.env, server.cwd, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    return server, server.create_key(name="operador", role="lectura")


def test_doctor_passes_on_a_healthy_store(healthy_store):  # noqa: ANN001
    server, key = healthy_store
    done, report = doctor(server, "--api-key", key, *SKIP_OBSERVABILITY)
    assert done.returncode == 0, done.stdout
    assert report["ok"] is True
    names = set(checks_by_name(report))
    assert {"servicio minimarket", "API /api/inventory", "base de datos", "redis", "disco", "certificados TLS",
            "respaldo", "libro de stock"} <= names


def test_doctor_tells_the_truth_when_redis_is_down(healthy_store):  # noqa: ANN001
    server, key = healthy_store
    done, report = doctor(server, "--api-key", key, *SKIP_OBSERVABILITY,
                          REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    assert done.returncode == 1
    checks = checks_by_name(report)
    assert checks["redis"]["ok"] is False and "refused" in checks["redis"]["detail"].lower()
    assert checks["base de datos"]["ok"] is True  # only what is broken is reported broken


def test_doctor_fails_on_a_wrong_key_a_missing_backup_and_an_unreachable_alertmanager(start_server, sqlite_database):  # noqa: ANN001
    server = start_server(sqlite_database)
    done, report = doctor(server, "--api-key", "mm_00000000.clave-falsa", "--skip", "prometheus",
                          "--alertmanager-url", f"https://127.0.0.1:{closed_port()}", "--skip", "certificados")
    assert done.returncode == 1
    checks = checks_by_name(report)
    assert checks["API /api/inventory"]["ok"] is False and "401" in checks["API /api/inventory"]["detail"]
    assert checks["respaldo"]["ok"] is False and "nunca" in checks["respaldo"]["detail"]
    assert checks["alertmanager"]["ok"] is False
    assert checks["servicio minimarket"]["ok"] is True


def test_doctor_reports_a_stopped_service(start_server, sqlite_database):  # noqa: ANN001
    server = start_server(sqlite_database)
    key = server.create_key(name="operador", role="lectura")
    server.stop()
    done, report = doctor(server, "--api-key", key, *SKIP_OBSERVABILITY, "--skip", "certificados")
    assert done.returncode == 1
    assert checks_by_name(report)["servicio minimarket"]["ok"] is False
