"""Operational failures of the `minimarket` command: one Spanish line, exit code ≠ 0, no traceback
unless asked for (`minimarket --debug …` or LOG_LEVEL=DEBUG). Each case runs the real command as
a process, the way an operator sees it."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.e2e.servers import clean_env, free_port

TIMEOUT = 60


def minimarket(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minimarket", *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def assert_one_spanish_line(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit code ≠ 0, no traceback anywhere, and the failure is the last line of stderr, naming `words`."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "╭" not in output, output  # neither Python's nor Rich's
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, output
    assert len(lines) <= 2, output  # at most a "Respaldando …" before the one line that says what failed
    for word in words:
        assert word in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def database_down() -> str:
    """A PostgreSQL URL where nothing listens."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/inventario_retail"


@pytest.mark.parametrize("command", [("verify",), ("apikey", "list"),
                                     ("secret", "set", "smtp_password", "--value", "s3creto")],
                         ids=["verify", "apikey-list", "secret-set"])
def test_database_down_is_one_line(command: tuple[str, ...], database_down: str, tmp_path: Path) -> None:
    result = minimarket(*command, cwd=tmp_path, DATABASE_URL=database_down,
                        DATABASE_ENCRYPTION_KEY=secrets.token_hex(32))
    line = assert_one_spanish_line(result, "base de datos", "DATABASE_URL")
    assert "Revisá" in line


def test_debug_and_log_level_debug_show_the_traceback(database_down: str, tmp_path: Path) -> None:
    flagged = minimarket("--debug", "verify", cwd=tmp_path, DATABASE_URL=database_down)
    by_level = minimarket("verify", cwd=tmp_path, DATABASE_URL=database_down, LOG_LEVEL="DEBUG")
    for result in (flagged, by_level):
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "OperationalError" in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith("No se pudo usar la base de datos")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tienda.db'}"
    upgraded = minimarket("db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    return url


def test_backup_to_a_path_it_cannot_write_is_one_line(sqlite_store: str, tmp_path: Path) -> None:
    blocker = tmp_path / "un-archivo"
    blocker.write_text("no soy una carpeta")
    result = minimarket("backup", "--dest", str(blocker / "respaldos"), "--no-config", cwd=tmp_path,
                        DATABASE_URL=sqlite_store)
    assert_one_spanish_line(result, "No se pudo escribir el respaldo", "--dest")


def test_restore_of_a_manifest_with_a_wrong_type_is_one_line(sqlite_store: str, tmp_path: Path) -> None:
    made = minimarket("backup", "--dest", str(tmp_path / "respaldos"), "--no-config", cwd=tmp_path,
                      DATABASE_URL=sqlite_store)
    assert made.returncode == 0, made.stderr
    (archive,) = (tmp_path / "respaldos").glob("*.tar.gz")
    unpacked = tmp_path / "contenido"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    manifest = json.loads((unpacked / "manifest.json").read_text(encoding="utf-8"))
    manifest["tables"] = list(manifest["tables"])  # a list where the per-table object belongs
    (unpacked / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    edited = tmp_path / "editado.tar.gz"
    with tarfile.open(edited, "w:gz") as tar:
        for member in sorted(unpacked.iterdir()):
            tar.add(member, arcname=member.name)
    result = minimarket("restore", str(edited), "--yes", "--into", f"sqlite:///{tmp_path / 'nueva.db'}",
                        cwd=tmp_path, DATABASE_URL=sqlite_store)
    assert_one_spanish_line(result, "No se restaura", "manifest.json", "tables")
    assert not (tmp_path / "nueva.db").exists()
