"""deploy/Dockerfile and .dockerignore, statically (no Docker here); its CMD and HEALTHCHECK run for real."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.deploy.helpers import (
    DOCKERFILE,
    ROOT,
    VENV_BIN,
    app_env,
    docker_excludes,
    dockerignore_rules,
    free_port,
    wait_port_closed,
)


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).partition(" ")
        result.append((instruction.upper(), arguments.strip()))
        pending = ""
    assert not pending, "la última instrucción termina en '\\'"
    return result


def stages() -> list[dict]:
    """Each FROM with its instructions; ARG defaults declared before the first FROM are resolved."""
    args: dict[str, str] = {}
    found: list[dict] = []
    for instruction, arguments in instructions():
        if instruction == "ARG" and not found:
            name, _, default = arguments.partition("=")
            args[name] = default
        elif instruction == "FROM":
            image, _, name = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], arguments).partition(" AS ")
            found.append({"image": image.strip(), "name": name.strip(), "instructions": []})
        else:
            found[-1]["instructions"].append((instruction, arguments))
    return found


def final(instruction: str) -> list[str]:
    return [args for name, args in stages()[-1]["instructions"] if name == instruction]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def env_of_final_stage() -> dict[str, str]:
    env = {}
    for arguments in final("ENV"):
        for pair in shlex.split(arguments):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def healthcheck() -> tuple[str, list[str]]:
    (arguments,) = final("HEALTHCHECK")
    options, _, command = arguments.partition("CMD ")
    return options, exec_form(command)


# --- static ---------------------------------------------------------------------------------------


def test_multi_stage_slim_python_311_with_pinned_tags():
    found = stages()
    assert len(found) >= 2 and found[0]["name"] == "build" and found[-1]["name"] == "runtime"
    for stage in found:
        image = stage["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", image), image
    copies = [args for name, args in found[-1]["instructions"] if name == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]  # nothing but the built venv reaches the runtime image


def test_the_package_is_installed_from_a_built_wheel():
    build = " ".join(args for name, args in stages()[0]["instructions"] if name == "RUN")
    assert "pip wheel --wheel-dir /wheels ." in build
    assert "pip install --no-index --find-links /wheels minimarket" in build
    assert "-e " not in build and "--editable" not in build


def test_runs_as_an_unprivileged_user():
    users = final("USER")
    assert users == ["10001:10001"]
    run = " ".join(final("RUN"))
    assert "--uid 10001" in run and "--gid 10001" in run
    runtime = stages()[-1]["instructions"]
    user_at = runtime.index(("USER", "10001:10001"))
    assert all(name != "RUN" for name, _ in runtime[user_at:]), "RUN después de USER correría como el usuario"


def test_python_env_and_exposed_ports():
    env = env_of_final_stage()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert final("EXPOSE") == ["8080 8001 8002"]


def test_healthcheck_asks_health_with_python_not_curl():
    options, command = healthcheck()
    assert command[:2] == ["python", "-c"]
    assert "/health" in command[2] and "PORT" in command[2]
    assert not re.search(r"\b(curl|wget)\b", command[2])
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in options


def test_cmd_serves_the_chosen_service_on_all_interfaces():
    (arguments,) = final("CMD")
    command = exec_form(arguments)
    assert command[:2] == ["sh", "-c"]
    script = command[2]
    assert script.startswith("exec minimarket serve ")  # exec: minimarket is PID 1 and gets SIGTERM
    assert '--host 0.0.0.0 --service "$MINIMARKET_SERVICE" --port "$PORT"' in script
    assert not final("ENTRYPOINT")  # so compose's `command:` (migrate) replaces the CMD cleanly


# --- .dockerignore --------------------------------------------------------------------------------


def git_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [f for f in listed if (ROOT / f).is_file()]


def test_dockerignore_sends_only_what_the_build_needs():
    rules = dockerignore_rules()
    for secret in (".env", ".env.production", ".env.production.example", ".git/config", ".venv/bin/python",
                   "data/minimarket.db", "deploy/nginx/tls/server.key", "observability/prometheus/tls/ca.key",
                   "tests/conftest.py", "src/minimarket/__pycache__/cli.cpython-311.pyc",
                   "src/minimarket.egg-info/PKG-INFO", "backups/inventario_retail.sql"):
        assert docker_excludes(secret, rules), f"{secret} viajaría al contexto de docker build"
    sent = [f for f in git_files() if not docker_excludes(f, rules)]
    assert "pyproject.toml" in sent and "README.md" in sent  # pyproject's readme = README.md
    package = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "src" / "minimarket").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    assert package and not [f for f in package if docker_excludes(f, rules)]
    assert all(f in {"pyproject.toml", "README.md"} or f.startswith("src/") for f in sent), sent


def test_dockerignore_matcher_is_not_vacuous():
    rules = dockerignore_rules()
    assert not docker_excludes("src/minimarket/migrations/versions/0001_foundation.py", rules)
    assert docker_excludes("src/minimarket/migrations/__pycache__/env.cpython-311.pyc", rules)
    loose = [(r, n) for r, n in rules if r.pattern != "[^/]*"]  # without the leading `*`
    assert not docker_excludes(".env.production", loose)


def test_every_copy_source_is_in_the_build_context():
    rules = dockerignore_rules()
    for name, arguments in stages()[0]["instructions"]:
        if name != "COPY":
            continue
        *sources, _destination = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not docker_excludes(source.rstrip("/"), rules), f"COPY {source}: excluido por .dockerignore"


# --- the image's commands, run as local processes -------------------------------------------------------


def test_cmd_and_healthcheck_work(processes, tmp_path):
    """The CMD (through sh, as the image runs it) starts the chosen service on $PORT; the
    HEALTHCHECK passes against it and fails once it is gone."""
    (arguments,) = final("CMD")
    command = exec_form(arguments)
    port = free_port()
    env = app_env(f"sqlite:///{tmp_path / 'image.db'}", MINIMARKET_SERVICE="deposito", PORT=str(port))
    server = processes.spawn(command, env=env, port=port, service="deposito")
    live = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5).json()
    assert live == {"status": "ok", "service": "deposito"}
    _, check = healthcheck()
    check = [str(VENV_BIN / "python") if check[0] == "python" else check[0], *check[1:]]
    assert subprocess.run(check, env=env, capture_output=True, timeout=30, check=False).returncode == 0
    server.stop()
    wait_port_closed(port)
    assert subprocess.run(check, env=env, capture_output=True, timeout=30, check=False).returncode != 0


@pytest.mark.parametrize("service", ["dashboard", "negocio"])
def test_cmd_honours_minimarket_service(processes, tmp_path, service):
    (arguments,) = final("CMD")
    port = free_port()
    env = app_env(f"sqlite:///{tmp_path / 'image.db'}", MINIMARKET_SERVICE=service, PORT=str(port))
    processes.spawn(exec_form(arguments), env=env, port=port, service=service, ready="/health/live")
    assert httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5).json()["service"] == service
