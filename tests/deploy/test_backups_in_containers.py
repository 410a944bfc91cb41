"""Backups inside the containers (issue 7 item 17) and memory limits that the documented command applies
(item 20), statically against deploy/Dockerfile and docker-compose.production.yml; then the runbook's
Docker backup command run as a local process with the container's environment.

Docker does not run here, so "the container" is: the dashboard service's environment (compose
`environment` over .env.production, as Compose merges them), its BACKUP_DIR re-rooted into a temp
folder standing for the `minimarket_backups` volume, a root-owned read-only folder standing for /app
as the working directory, and — when the checkout can be read by it — the image's user 10001.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers import create_pg_database, drop_pg_database, need_postgres
from tests.deploy.helpers import COMPOSE, ENV_PRODUCTION_EXAMPLE, ROOT, VENV_BIN, parse_env_file
from tests.deploy.test_compose import services, without_messages
from tests.deploy.test_dockerfile import env_of_final_stage, final
from tests.e2e.servers import clean_env, migrate_pg
from tests.observability.helpers import load_yaml

RUNBOOK = ROOT / "docs" / "OPERATIONS_RUNBOOK.md"
APP_USER = 10001
VOLUME = "minimarket_backups"
DOCKER_BACKUP = re.compile(r"docker compose -f docker-compose\.production\.yml exec -T (\S+) (minimarket backup[^`\n]*)`")
LONG_RUNNING = ("dashboard", "agente-deposito", "agente-negocio", "postgres", "redis", "nginx")


def megabytes(limit: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([MG])", limit).groups()
    return int(number) * (1024 if unit == "G" else 1)


def backup_dir() -> str:
    return env_of_final_stage()["BACKUP_DIR"]


# --- the image -------------------------------------------------------------------------------------


def test_the_image_has_pg_dump_and_pg_restore_of_the_servers_major_version():
    run = " ".join(final("RUN"))
    clients = re.findall(r"postgresql-client-(\d+)", run)
    server = re.fullmatch(r"postgres:(\d+)(\.\d+)*(-\w+)?", services()["postgres"]["image"])
    assert server, services()["postgres"]["image"]
    assert clients == [server[1]], f"cliente {clients} para el servidor {server[1]}: pg_dump debe ser de la misma versión"
    assert "apt-get install -y --no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run


def test_the_image_keeps_backups_outside_app_in_a_folder_of_its_user():
    folder = backup_dir()
    assert folder.startswith("/") and not folder.startswith("/app"), folder
    run = " ".join(final("RUN"))
    assert re.search(rf"mkdir -p [^&]*{re.escape(folder)}", run)
    assert re.search(rf"chown minimarket:minimarket [^&]*{re.escape(folder)}", run)
    assert "--uid 10001" in run


# --- the compose file ------------------------------------------------------------------------------


def test_backups_live_in_a_named_volume_that_every_app_mounts_at_backup_dir():
    document = load_yaml(COMPOSE)
    assert document["volumes"][VOLUME] == {"name": VOLUME}
    for name in ("dashboard", "agente-deposito", "agente-negocio"):
        service = services()[name]
        assert f"{VOLUME}:{backup_dir()}" in service["volumes"], name
        assert service["environment"]["BACKUP_DIR"] == backup_dir(), name  # what the scheduler and the CLI use
    # .env.production would be overridden by the compose environment: it only mentions it.
    assert "BACKUP_DIR" not in parse_env_file(ENV_PRODUCTION_EXAMPLE)


def test_every_long_running_service_has_a_memory_limit():
    found = services()
    limits = {name: found[name]["deploy"]["resources"]["limits"]["memory"] for name in LONG_RUNNING}
    assert limits["postgres"] and limits["nginx"]
    command = found["redis"]["command"]
    maxmemory = int(command[command.index("--maxmemory") + 1].removesuffix("mb"))
    assert megabytes(limits["redis"]) > maxmemory  # room for Redis itself above its data
    assert megabytes(limits["postgres"]) >= 512


def documented_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in listed if not f.startswith("tests/") and (ROOT / f).is_file()
            and f.endswith((".md", ".yml", ".yaml", ".example", ".py", ".conf", ".service", ".env", "Dockerfile"))]


def test_every_documented_compose_command_applies_the_memory_limits():
    """`docker compose` (v2) applies deploy.resources.limits; the old `docker-compose` only with --compatibility."""
    offending, commands = [], 0
    for path in documented_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in re.finditer(r"docker-compose(?![.\w-])", line):
                if not line[match.end():].startswith(" --compatibility"):
                    offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            commands += len(re.findall(r"docker compose -f ", line))
    assert not offending, "docker-compose sin --compatibility ignora los límites de memoria:\n" + "\n".join(offending)
    assert commands >= 10  # the runbook and the READMEs do document compose commands


def test_the_limit_check_is_not_vacuous(tmp_path):
    line = "docker-compose -f docker-compose.production.yml up -d"
    assert re.search(r"docker-compose(?![.\w-])", line)
    assert not re.search(r"docker-compose(?![.\w-])", "docker-compose.production.yml")


# --- the container's backup command, run as a process ------------------------------------------------


def container_env(database_url: str, volume: Path, home: Path) -> dict[str, str]:
    """dashboard's environment: .env.production (the example, with a real key) under the compose environment."""
    values = parse_env_file(ENV_PRODUCTION_EXAMPLE)
    values["DATABASE_ENCRYPTION_KEY"] = secrets.token_hex(32)
    compose_env = {k: str(v) for k, v in services()["dashboard"]["environment"].items()}
    assert without_messages(compose_env["DATABASE_URL"]).startswith("postgresql://minimarket:${POSTGRES_PASSWORD}@")
    compose_env["DATABASE_URL"] = database_url  # the test's PostgreSQL instead of the `postgres` service
    compose_env["BACKUP_DIR"] = compose_env["BACKUP_DIR"].replace(backup_dir(), str(volume))
    env = clean_env(**{**values, **compose_env})
    env.update(HOME=str(home), PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    return env


def app_user_can_run_this_checkout() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwuid(APP_USER)
    except KeyError:
        pass  # a uid needs no passwd entry to run a process
    try:  # the interpreter may live where only root reads (e.g. /root/.pyenv): then run as this user
        done = subprocess.run([str(VENV_BIN / "minimarket"), "version"], user=APP_USER, group=APP_USER,
                              extra_groups=[], cwd="/", capture_output=True, timeout=60, check=False)
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture
def store_database(tmp_path: Path):  # noqa: ANN201
    need_postgres()
    url = create_pg_database()
    migrate_pg(url, tmp_path)
    yield url
    drop_pg_database(url)


def test_the_runbooks_docker_backup_command_runs_with_the_containers_environment(store_database, tmp_path):
    service, command = DOCKER_BACKUP.search(RUNBOOK.read_text(encoding="utf-8")).groups()
    assert service in services() and "--dest" not in command  # it writes where BACKUP_DIR says
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"contenedor-{secrets.token_hex(4)}"
    app, volume = root / "app", root / "volumen"
    app.mkdir(parents=True)
    volume.mkdir()
    try:
        as_app_user = app_user_can_run_this_checkout()
        if as_app_user:  # the image's user: /app (root's, 0755) is read-only to it; the volume is its own
            os.chmod(root, 0o755)
            os.chown(volume, APP_USER, APP_USER)
            os.chmod(volume, 0o700)
        os.chmod(app, 0o555)
        env = container_env(store_database, volume, app)
        words = shlex.split(command)
        assert words[0] == "minimarket"
        done = subprocess.run([str(VENV_BIN / "minimarket"), *words[1:]], env=env, cwd=app, capture_output=True,
                              text=True, timeout=180, check=False,
                              **({"user": APP_USER, "group": APP_USER, "extra_groups": []} if as_app_user else {}))
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
        (archive,) = volume.glob("minimarket_*.tar.gz")
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        if as_app_user:
            assert archive.stat().st_uid == APP_USER
        assert list(app.iterdir()) == []  # nothing needed /app writable
        with tarfile.open(archive) as tar:
            names = tar.getnames()
        assert "manifest.json" in names and "database.dump" in names, names  # pg_dump ran
    finally:
        os.chmod(app, 0o755)
        subprocess.run(["rm", "-rf", str(root)], check=False)
