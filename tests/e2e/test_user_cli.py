"""`minimarket user …` as an operator runs it, and `serve --demo` printing the admin's password."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import StartServer, cli_command, clean_env, free_port, run_cli

pytestmark = pytest.mark.timeout(180)


def user_cli(args: list[str], env: dict[str, str], cwd: Path, password: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command() + ["user", *args], input=None if password is None else password + "\n",
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def log_in(base_url: str, username: str, password: str) -> int:
    """The status of a login through the real form (200: followed to Inicio; 401: refused)."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30, follow_redirects=True) as client:
        page = client.get("/ingresar")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return client.post("/ingresar", data={"username": username, "password": password, "csrf": token}).status_code


def test_user_commands_against_a_live_store(start_server: StartServer, sqlite_database: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=sqlite_database)
    assert run_cli(["db", "upgrade"], env=env, cwd=tmp_path).returncode == 0
    made = user_cli(["create", "--username", "Maria.Gomez", "--role", "encargado", "--name", "María Gómez",
                     "--password-stdin"], env, tmp_path, password="una-clave-segura")
    assert made.returncode == 0 and "maria.gomez" in made.stdout, made.stderr
    again = user_cli(["create", "--username", "maria.gomez", "--role", "encargado", "--password-stdin"], env, tmp_path,
                     password="una-clave-segura")
    assert again.returncode == 2 and "ya existe" in again.stderr
    short = user_cli(["create", "--username", "otro", "--role", "encargado", "--password-stdin"], env, tmp_path,
                     password="corta")
    assert short.returncode == 2 and "al menos 10 caracteres" in short.stderr
    bad_role = user_cli(["create", "--username", "otro", "--role", "jefe", "--password-stdin"], env, tmp_path,
                        password="una-clave-segura")
    assert bad_role.returncode == 2 and "jefe" in bad_role.stderr
    listed = user_cli(["list"], env, tmp_path)
    assert "maria.gomez" in listed.stdout and "encargado" in listed.stdout and "activo" in listed.stdout

    server = start_server(sqlite_database)
    assert log_in(server.base_url, "maria.gomez", "una-clave-segura") == 200
    reset = user_cli(["reset-password", "maria.gomez", "--password-stdin"], env, tmp_path, password="otra-clave-nueva")
    assert reset.returncode == 0, reset.stderr
    assert log_in(server.base_url, "maria.gomez", "una-clave-segura") == 401
    assert log_in(server.base_url, "maria.gomez", "otra-clave-nueva") == 200
    assert user_cli(["disable", "maria.gomez"], env, tmp_path).returncode == 0
    assert log_in(server.base_url, "maria.gomez", "otra-clave-nueva") == 401
    assert "deshabilitado" in user_cli(["list"], env, tmp_path).stdout
    missing = user_cli(["disable", "nadie"], env, tmp_path)
    assert missing.returncode == 1 and "no existe" in missing.stderr


def test_serve_demo_prints_the_admin_user_and_password(sqlite_database: str) -> None:
    """`serve --demo` is started by hand: the start_server fixture's command has no --demo flag."""
    port = free_port()
    cwd = Path(sqlite_database.split("///", 1)[1]).parent
    env = clean_env(DATABASE_URL=sqlite_database)
    log = cwd / "demo.log"
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(cli_command() + ["serve", "--demo", "--port", str(port)], env=env, cwd=cwd,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        password = None
        while time.monotonic() < deadline and password is None:
            found = re.search(r"usuario admin\s+contraseña (\S+)", log.read_text(encoding="utf-8"))
            password = found.group(1) if found else None
            time.sleep(0.5)
        assert password, log.read_text(encoding="utf-8")[-2000:]
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert log_in(f"http://127.0.0.1:{port}", "admin", password) == 200
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
