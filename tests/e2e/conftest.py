"""End-to-end fixtures: real `minimarket serve` processes over real HTTP on loopback.

Each server is a subprocess of the `minimarket` console script with its own
environment (DATABASE_URL, REDIS_URL, ...), its stdout/stderr captured to a file whose
tail is attached to the report of a failing test. Databases are fresh: a new
PostgreSQL database copied from the migrated template, or a SQLite file in
tmp_path that `serve` migrates itself. Every wait is bounded.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import create_pg_database, drop_pg_database, need_postgres
from tests.e2e.servers import (
    LOG_TAIL_LINES,
    MEASUREMENTS,
    Server,
    StartServer,
    TcpProxy,
    clean_env,
    cli_command,
    free_port,
    pg_upstream,
    wait_healthy,
)

_SERVERS_KEY = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if MEASUREMENTS:
        terminalreporter.section("e2e measurements")
        for label, text in MEASUREMENTS.items():
            terminalreporter.write_line(f"{label}: {text}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    report = yield
    if report.failed:
        module = item.getparent(pytest.Module)
        for server in [*item.stash.get(_SERVERS_KEY, []), *(module.stash.get(_SERVERS_KEY, []) if module else [])]:
            report.sections.append((f"server log ({server.service} :{server.port}) — last {LOG_TAIL_LINES} lines",
                                    server.log_tail()))
    return report


def _server_factory(request: pytest.FixtureRequest, folder: Path) -> tuple[StartServer, list[Server]]:
    servers: list[Server] = []
    request.node.stash[_SERVERS_KEY] = servers

    def start(database_url: str, service: str = "all", *, ready: str | None = "/health",
              **env: str | None) -> Server:
        port = free_port()
        cwd = folder / f"srv-{port}"
        cwd.mkdir()
        log_path = cwd / "server.log"
        full_env = clean_env(DATABASE_URL=database_url, **env)
        log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in Server.stop
        started = time.monotonic()
        process = subprocess.Popen(
            cli_command() + ["serve", "--service", service, "--host", "127.0.0.1", "--port", str(port)],
            env=full_env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        server = Server(base_url=f"http://127.0.0.1:{port}", port=port, env=full_env, cwd=cwd, log_path=log_path,
                        process=process, service=service, database_url=database_url, _log_file=log_file)
        servers.append(server)
        if ready:
            wait_healthy(server, path=ready)
            server.startup_seconds = time.monotonic() - started
        return server

    return start, servers


@pytest.fixture
def start_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartServer]:
    """Factory: start_server(database_url, service="all", ready="/health", **env) -> Server.

    `ready` is the path polled until 200 before returning (None: do not wait); use
    "/health/live" for a server whose /health is expected to fail.
    """
    start, servers = _server_factory(request, tmp_path)
    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture(scope="module")
def module_start_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """start_server for a module's tests that only read what one store set up (a store costs
    several `minimarket` processes); stopped after the module. Its log is in every failing test's report."""
    start, servers = _server_factory(request, tmp_path_factory.mktemp("module-servers"))
    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend for a module whose tests each write only their own rows (their own SKUs,
    barcodes, names, tickets and idempotency keys) and check only those, or `minimarket verify`, which
    holds for all of them: a process start (and for SQLite the migrations) once per module instead of
    once per test. The rate limit is raised, never off (the tests send hundreds of requests a minute)."""
    folder = tmp_path_factory.mktemp(f"shared-{request.param}")
    if request.param == "postgresql":
        need_postgres()
        database = create_pg_database(request.getfixturevalue("pg_template"))
    else:
        database = f"sqlite:///{folder / 'e2e.db'}"
    start, servers = _server_factory(request, folder)
    try:
        yield start(database, RATE_LIMIT_PER_KEY="1000000")
    finally:
        for server in reversed(servers):
            server.stop()
        if request.param == "postgresql":
            drop_pg_database(database)


@pytest.fixture(scope="module")
def shared_key(shared_server: Server) -> str:
    """An admin key of shared_server (one `minimarket apikey create` per server)."""
    return shared_server.create_key("e2e-compartida")


@pytest.fixture
def pg_database(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database copied from the session's migrated template (what `minimarket db
    upgrade` leaves; the command itself runs in test_runbook, test_user_cli and test_health_faults,
    here it cost a process start and the migrations per test); dropped afterwards."""
    url = create_pg_database(pg_template)
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> str:
    """A path for a new SQLite file; `serve` creates and migrates it."""
    return f"sqlite:///{tmp_path / 'e2e.db'}"


@pytest.fixture(scope="module")
def module_sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """sqlite_database for module_start_server."""
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'e2e.db'}"


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_database" if request.param == "postgresql" else "sqlite_database")


@pytest.fixture
def server(start_server: StartServer, any_database: str) -> Server:
    return start_server(any_database)


@pytest.fixture
def pg_server(start_server: StartServer, pg_database: str) -> Server:
    return start_server(pg_database)


@pytest.fixture
def sqlite_server(start_server: StartServer, sqlite_database: str) -> Server:
    return start_server(sqlite_database)


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    need_postgres()
    proxy = TcpProxy(pg_upstream())
    proxy.start()
    yield proxy
    proxy.stop()
