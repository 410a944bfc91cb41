"""Shared by the deploy tests: paths, env files, .dockerignore and systemd unit parsing, app processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.servers import STARTUP_TIMEOUT, Server, clean_env, cli_command, free_port, wait_healthy
from tests.observability.helpers import ROOT

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.production.yml"
ENV_PRODUCTION_EXAMPLE = ROOT / ".env.production.example"
NGINX_DIR = DEPLOY / "nginx"
NGINX_CONF = NGINX_DIR / "nginx.conf"
UPSTREAMS_DOCKER = NGINX_DIR / "upstreams.conf"
UPSTREAMS_BARE_METAL = NGINX_DIR / "upstreams.bare-metal.conf"
SYSTEMD = DEPLOY / "systemd"
COMPOSE_SCHEMA = ROOT / "tests" / "observability" / "compose_spec.json"  # the one copy of the schema
VENV_BIN = Path(sys.executable).parent

# Runbook service names -> (app service, port).
APP_SERVICES = {"dashboard": ("dashboard", 8080), "agente-deposito": ("deposito", 8001),
                "agente-negocio": ("negocio", 8002)}


# --------------------------------------------------------------------------- env files


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a docker/systemd env file (no quoting, no expansion)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: línea sin '=': {line!r}"
        values[key.strip()] = value.strip()
    return values


def documented_names(path: Path) -> set[str]:
    """Variable names an env example sets or mentions as `# NAME=...`."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(encoding="utf-8"), re.MULTILINE))


# --------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern (Go filepath.Match plus `**`) as a regex over the whole path."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif c == "*":
            out, i = out + "[^/]*", i + 1
        elif c == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(c), i + 1
    return re.compile(out)


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[re.Pattern[str], bool]]:
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((_pattern_regex(pattern), negated))
    return rules


def docker_excludes(relative: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether `docker build` leaves `relative` out of the context: the last matching rule wins,
    and a rule matching a parent directory matches everything under it."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for regex, negated in rules:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


# --------------------------------------------------------------------------- systemd units


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values in order]}}; keys may repeat (EnvironmentFile=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}:{number}: clave fuera de una sección"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: línea sin '=': {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def expand_unit_command(command: str, *, instance: str, env: dict[str, str]) -> list[str]:
    """An Exec line as systemd runs it: %i is the instance, ${NAME} one word from the environment."""
    words = []
    for word in command.replace("%i", instance).split():
        match = re.fullmatch(r"\$\{(\w+)\}", word)
        if match:
            word = env[match[1]]
        assert "$" not in word and "%" not in word, f"expansión no soportada por la prueba: {word}"
        words.append(word)
    return words


# --------------------------------------------------------------------------- app processes


@dataclass
class Processes:
    """Servers started by a test; all stopped (SIGTERM, then SIGKILL; bounded) at teardown."""

    directory: Path
    servers: list[Server]

    def spawn(self, command: list[str], *, env: dict[str, str], port: int, service: str = "app",
              ready: str | None = "/health", database_url: str = "") -> Server:
        cwd = self.directory / f"proc-{port}"
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = cwd / "server.log"
        log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in Server.stop
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        server = Server(base_url=f"http://127.0.0.1:{port}", port=port, env=env, cwd=cwd, log_path=log_path,
                        process=process, service=service, database_url=database_url, _log_file=log_file)
        self.servers.append(server)
        if ready:
            wait_healthy(server, timeout=STARTUP_TIMEOUT, path=ready)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def app_env(database_url: str, **overrides: str | None) -> dict[str, str]:
    """A clean environment for an app process: this venv first on PATH, no inherited settings,
    and the app's own rate limit off (the nginx tests measure nginx's)."""
    env = clean_env(DATABASE_URL=database_url, RATE_LIMIT_ENABLED="false", **overrides)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def wait_port_closed(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=0.5)
        except httpx.HTTPError:
            return
        time.sleep(0.1)
    raise AssertionError(f"el puerto {port} sigue respondiendo")


__all__ = ["cli_command", "free_port"]
