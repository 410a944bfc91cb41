"""`minimarket doctor` against a live store: it passes when all is well and tells the truth when not."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import REDIS_URL, need_redis
from tests.e2e.servers import free_port, run_cli
from tests.e2e.test_alertmanager_tls import STARTUP_TIMEOUT, Proc, _binary, _start, _start_alertmanager, _wait

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


@pytest.fixture(scope="module")
def healthy_store(module_start_server, module_sqlite_database):  # noqa: ANN001, ANN201
    """One store for the module: the doctor only reads it (each check's breakage is the doctor's own
    environment: REDIS_URL, --tls-dir), and a store is four `minimarket` processes."""
    need_redis()
    server = module_start_server(module_sqlite_database, REDIS_URL=REDIS_URL)
    for args in (["certs", "generate", "--dest", "observability/prometheus/tls"], ["backup", "--dest", "backups"]):
        done = run_cli(args, server.env, server.cwd, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    return server, server.create_key(name="operador", role="lectura")


@pytest.fixture(scope="module")
def prometheus_and_alertmanager(healthy_store) -> Iterator[tuple[str, str]]:  # noqa: ANN001
    """Debian's Prometheus (plain HTTP) and Alertmanager demanding a client certificate signed by the
    store's own CA (`certs generate` in the server's folder), as the observability compose runs them."""
    prom_bin = _binary("PROMETHEUS_BIN", "/usr/bin/prometheus", "prometheus")
    am_bin = _binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "alertmanager")
    server, _ = healthy_store
    work: Path = server.cwd / "observabilidad"
    work.mkdir()
    alertmanager, _ = _start_alertmanager(am_bin, work, server.cwd / "observability" / "prometheus" / "tls")
    procs: list[Proc] = [alertmanager]
    try:
        (work / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
        (work / "prom-data").mkdir()
        port = free_port()
        prometheus = _start("prometheus", [prom_bin, f"--config.file={work / 'prometheus.yml'}",
                                           f"--storage.tsdb.path={work / 'prom-data'}",
                                           f"--web.listen-address=127.0.0.1:{port}"], work, f"http://127.0.0.1:{port}")
        procs.append(prometheus)
        with httpx.Client(timeout=5.0, trust_env=False) as plain:
            _wait(prometheus, lambda: plain.get(prometheus.base_url + "/-/ready").status_code == 200,
                  STARTUP_TIMEOUT, "/-/ready")
        yield prometheus.base_url, alertmanager.base_url
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_doctor_is_all_green_with_healthy_prometheus_and_alertmanager_over_mtls(
        healthy_store, prometheus_and_alertmanager):  # noqa: ANN001
    """The whole daily check, nothing skipped: every line OK and exit 0 (httpx >= 0.28 made the
    Alertmanager line raise TypeError for `cert=`, so the doctor was red on every store)."""
    server, key = healthy_store
    prometheus_url, alertmanager_url = prometheus_and_alertmanager
    done, report = doctor(server, "--api-key", key, "--prometheus-url", prometheus_url,
                          "--alertmanager-url", alertmanager_url)
    checks = checks_by_name(report)
    assert {"prometheus", "alertmanager", "certificados TLS"} <= set(checks)
    assert [c for c in report["checks"] if not c["ok"]] == []
    assert done.returncode == 0 and report["ok"] is True
    assert checks["alertmanager"]["detail"] == "0 alerta(s) activa(s)"
    assert checks["prometheus"]["detail"] == "/-/healthy → 200"
    table = server.cli("doctor", "--service-url", f"minimarket={server.base_url}", "--api-key", key,
                       "--prometheus-url", prometheus_url, "--alertmanager-url", alertmanager_url)
    assert table.returncode == 0 and "FALLA" not in table.stdout and "Todo en orden" in table.stdout, table.stdout


def test_doctor_refuses_an_alertmanager_that_does_not_know_our_client_certificate(
        healthy_store, prometheus_and_alertmanager, tmp_path):  # noqa: ANN001
    """Same healthy Alertmanager, but the doctor holds another CA's material: red, with the TLS reason."""
    from minimarket.ops.tls import generate_tls_material

    server, key = healthy_store
    prometheus_url, alertmanager_url = prometheus_and_alertmanager
    other = tmp_path / "otra-ca"
    generate_tls_material(other, days=30)
    done, report = doctor(server, "--api-key", key, "--prometheus-url", prometheus_url,
                          "--alertmanager-url", alertmanager_url, "--tls-dir", str(other))
    assert done.returncode == 1
    checks = checks_by_name(report)
    assert checks["alertmanager"]["ok"] is False and "CERTIFICATE_VERIFY_FAILED" in checks["alertmanager"]["detail"]
    assert checks["prometheus"]["ok"] is True


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
