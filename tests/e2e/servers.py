"""Helpers of the end-to-end tests: `minimarket serve` and CLI processes, ports, a TCP proxy for faults.

Plain functions and classes (fixtures live in conftest.py): each server is a subprocess of the
`minimarket` console script with its own environment, its output captured to a file; every wait
is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from minimarket.config import Settings
from tests.helpers import PG_URL

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
LOG_TAIL_LINES = 60


# Timings the tests measure (label -> text), printed in the terminal summary.
MEASUREMENTS: dict[str, str] = {}


def measure(label: str, text: str) -> None:
    MEASUREMENTS[label] = text


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (bound on port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_command() -> list[str]:
    """The `minimarket` console script installed next to this interpreter.

    The console script is what operators run; `python -m minimarket` is the fallback.
    """
    script = Path(sys.executable).parent / "minimarket"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "minimarket"]


def clean_env(**overrides: str | None) -> dict[str, str]:
    """os.environ without any variable Settings would read, plus `overrides` (None removes)."""
    fields = {name.lower() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.lower() not in fields}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """Run `minimarket <args>`; a hang is a failure, never an endless wait."""
    try:
        return subprocess.run(cli_command() + args, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`minimarket {' '.join(args)}` did not finish within {timeout} s:\n"
                    f"stdout: {exc.stdout}\nstderr: {exc.stderr}")


@dataclass
class Server:
    """One running `minimarket serve` process."""

    base_url: str
    port: int
    env: dict[str, str]
    cwd: Path
    log_path: Path
    process: subprocess.Popen
    service: str
    database_url: str
    startup_seconds: float = 0.0
    _log_file: object = field(default=None, repr=False)

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT, **env_overrides: str | None) -> subprocess.CompletedProcess:
        env = dict(self.env)
        for key, value in env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return run_cli(list(args), env, self.cwd, timeout)

    def create_key(self, name: str = "e2e", role: str = "admin") -> str:
        result = self.cli("apikey", "create", "--name", name, "--role", role, "--json")
        assert result.returncode == 0, f"apikey create failed: {result.stdout}\n{result.stderr}"
        return json.loads(result.stdout)["key"]

    def client(self, key: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, trust_env=False)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def stop(self) -> None:
        stop_process(self.process)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def wait_healthy(server: Server, timeout: float = STARTUP_TIMEOUT, path: str = "/health") -> None:
    """Poll `path` until it answers 200 (bounded); fail early if the process exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(f"server exited with {server.process.returncode} before /health answered:\n"
                                     f"{server.log_tail()}")
            try:
                r = client.get(server.base_url + path)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
    raise AssertionError(f"{path} not 200 within {timeout} s (last: {last}):\n{server.log_tail()}")


def migrate_pg(url: str, cwd: Path) -> None:
    """`minimarket db upgrade` against `url` (serve refuses an un-migrated PostgreSQL)."""
    result = run_cli(["db", "upgrade"], clean_env(DATABASE_URL=url), cwd)
    assert result.returncode == 0, f"db upgrade failed:\n{result.stdout}\n{result.stderr}"


StartServer = Callable[..., Server]


def pg_upstream() -> tuple[str, int]:
    url = make_url(PG_URL)
    return url.host or "127.0.0.1", url.port or 5432


class TcpProxy:
    """A byte-for-byte TCP forwarder on 127.0.0.1:<port>, to fake a database outage.

    stop() closes the listener AND every open connection (both ends), so the app sees
    its pooled connections die and new ones refused; start() listens again on the same port.
    """

    def __init__(self, upstream: tuple[str, int], port: int | None = None):
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._running = threading.Event()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.1)
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self._running.set()
        thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name=f"proxy-{self.port}")
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=3)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                if not self._running.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def stop(self) -> None:
        self._running.clear()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
            self._listener = None
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            self._close(s)
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._sockets) // 2


def via_proxy(database_url: str, proxy: TcpProxy) -> str:
    return make_url(database_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
