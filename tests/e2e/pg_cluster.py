"""A private PostgreSQL cluster for one test module: initdb in a temp dir, its own port, stopped after.

For what the shared server on :5432 must not be changed for (it is never restarted by a test):
here, `shared_preload_libraries = pg_stat_statements`, as docker-compose.production.yml starts
PostgreSQL. Debian's binaries from /usr/lib/postgresql/<version>/bin; as root, the cluster runs as
the `postgres` user (initdb refuses root). Every wait is bounded; the cluster is stopped in `finally`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


from tests.helpers import skip_outside_ci
from tests.e2e.servers import free_port

START_TIMEOUT = 60


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin directory; skip (fail under CI) if there is none."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        skip_outside_ci("initdb no está instalado (apt-get install postgresql)")
    return found[-1].parent


@contextmanager
def private_cluster(settings: dict[str, str]) -> Iterator[str]:
    """Start a throwaway cluster with `settings` (postgresql.conf names); yield its superuser URL."""
    binaries = pg_bin()
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("postgres") if as_root else None
    directory = Path(tempfile.mkdtemp(prefix="minimarket-pg-"))
    data, log = directory / "data", directory / "postgres.log"
    port = free_port()
    user = {"user": owner.pw_uid, "group": owner.pw_gid} if owner else {}
    if owner:
        os.chown(directory, owner.pw_uid, owner.pw_gid)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binaries / args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=START_TIMEOUT, check=False, cwd=directory, **user)

    started = False
    try:
        done = run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        assert done.returncode == 0, done.stdout + done.stderr
        options = " ".join([f"-p {port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={directory}",
                            *(f"-c {name}={value}" for name, value in settings.items())])
        done = run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT), "-o", options, "start")
        started = done.returncode == 0
        assert started, done.stdout + done.stderr + (log.read_text() if log.exists() else "")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
        shutil.rmtree(directory, ignore_errors=True)
