"""PostgreSQL's connection budget of each deployment: the app services × their workers × what one process opens
(minimarket.config.connections_per_process, with the pool sizes the deployment sets or the defaults), plus what
runs beside them, must fit in the max_connections the deployment gives PostgreSQL (100 unless it says).

Static: read from docker-compose.production.yml, deploy/Dockerfile, .env.production.example, the systemd units
and env files and the systemd README's setup of PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from minimarket import config
from minimarket.config import Settings, connection_budget, connections_per_process
from tests.deploy.helpers import COMPOSE, DOCKERFILE, ENV_PRODUCTION_EXAMPLE, SYSTEMD, parse_env_file
from tests.observability.helpers import load_yaml

POSTGRES_DEFAULT_MAX_CONNECTIONS = 100


def _workers(command: str) -> int:
    """--workers of a `minimarket serve` command line; without it, serve's default (one process)."""
    assert "minimarket serve" in command, command
    found = re.search(r"--workers[ =](\d+)", command)
    return int(found.group(1)) if found else 1


def _pool(values: dict[str, str]) -> tuple[int, int]:
    """DB_POOL_SIZE and DB_MAX_OVERFLOW as the deployment sets them, else the app's defaults."""
    fields = Settings.model_fields
    return (int(values.get("DB_POOL_SIZE", fields["db_pool_size"].default)),
            int(values.get("DB_MAX_OVERFLOW", fields["db_max_overflow"].default)))


def _fits(budget: int, max_connections: int) -> None:
    usable = max_connections - config.SUPERUSER_RESERVED_CONNECTIONS
    assert budget <= usable, (f"presupuesto de conexiones {budget} > max_connections {max_connections} − "
                              f"{config.SUPERUSER_RESERVED_CONNECTIONS} reservadas a superusuarios")


def compose_budget(compose: dict, dockerfile: str, env: dict[str, str]) -> tuple[int, int]:
    """(connections the compose file's app services may open, max_connections it gives PostgreSQL)."""
    processes = 0
    pools = set()
    default_command = re.search(r"^CMD (.+)$", dockerfile, re.MULTILINE).group(1)
    for service in compose["services"].values():
        environment = service.get("environment") or {}
        if "MINIMARKET_SERVICE" not in environment:
            continue  # postgres, redis, nginx; `migrate` runs before the apps (inside OTHER_CONNECTIONS)
        command = service.get("command", default_command)
        processes += _workers(command if isinstance(command, str) else " ".join(command))
        pools.add(_pool({**env, **{k: str(v) for k, v in environment.items()}}))
    assert processes and len(pools) == 1, pools
    (pool_size, overflow), = pools
    postgres = " ".join(compose["services"]["postgres"].get("command", []))
    found = re.search(r"max_connections=(\d+)", postgres)
    return (connection_budget(processes, pool_size, overflow),
            int(found.group(1)) if found else POSTGRES_DEFAULT_MAX_CONNECTIONS)


def systemd_budget(systemd: Path) -> tuple[int, int]:
    """(connections the systemd services may open, max_connections the README's setup gives PostgreSQL)."""
    unit = (systemd / "minimarket@.service").read_text(encoding="utf-8")
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.MULTILINE).group(1)
    services = [p for p in systemd.glob("*.env") if "PORT" in parse_env_file(p)]
    pool_size, overflow = _pool(parse_env_file(systemd / "minimarket.env.example"))
    readme = (systemd / "README.md").read_text(encoding="utf-8")
    found = re.search(r"ALTER SYSTEM SET max_connections\s*=\s*(\d+)", readme)
    return (connection_budget(len(services) * _workers(exec_start), pool_size, overflow),
            int(found.group(1)) if found else POSTGRES_DEFAULT_MAX_CONNECTIONS)


def test_one_process_opens_its_pool_its_overflow_and_at_most_four_reads_and_eight_writes_on_the_event_loop() -> None:
    assert connections_per_process(16, 16) == 44
    assert connections_per_process(2, 0) == 6  # the event loop's reads and writes never outnumber the pool, each
    assert connection_budget(3, 16, 16) == 3 * 44 + config.OTHER_CONNECTIONS


def test_the_production_compose_gives_postgresql_room_for_every_connection_of_its_services() -> None:
    budget, max_connections = compose_budget(load_yaml(COMPOSE), DOCKERFILE.read_text(encoding="utf-8"),
                                             parse_env_file(ENV_PRODUCTION_EXAMPLE))
    assert budget == 3 * 44 + config.OTHER_CONNECTIONS  # three services, one process each, 16 + 16 + 4 + 8
    _fits(budget, max_connections)


def test_the_systemd_setup_gives_postgresql_room_for_every_connection_of_its_services() -> None:
    budget, max_connections = systemd_budget(SYSTEMD)
    assert budget == 3 * 44 + config.OTHER_CONNECTIONS
    _fits(budget, max_connections)


def test_the_check_fails_on_postgresqls_default_or_on_more_workers(tmp_path: Path) -> None:
    """The same reading of the files refuses the compose file without max_connections, or with more workers
    than it gives room for (the healthy case is the deployment as shipped, above)."""
    compose = load_yaml(COMPOSE)
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    env = parse_env_file(ENV_PRODUCTION_EXAMPLE)
    compose["services"]["postgres"]["command"] = ["postgres", "-c", "shared_preload_libraries=pg_stat_statements"]
    with pytest.raises(AssertionError, match="presupuesto de conexiones 144 > max_connections 100"):
        _fits(*compose_budget(compose, dockerfile, env))
    compose = load_yaml(COMPOSE)
    compose["services"]["dashboard"]["command"] = "minimarket serve --service dashboard --workers 2"
    with pytest.raises(AssertionError, match="presupuesto de conexiones 188 > max_connections 150"):
        _fits(*compose_budget(compose, dockerfile, env))
    for name in ("minimarket@.service", "minimarket.env.example", "dashboard.env", "deposito.env", "negocio.env"):
        (tmp_path / name).write_text((SYSTEMD / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "README.md").write_text("sin ajustes de PostgreSQL\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="max_connections 100"):
        _fits(*systemd_budget(tmp_path))
