"""deploy/nginx's files read as text and checked by `nginx -t`: what each nginx owns, the body limit,
the upstreams of compose and bare metal, and the compose healthcheck against the live nginx
(tests/deploy/nginx_stack.py renders the config and runs the stack)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from minimarket.config import Settings
from tests.deploy.helpers import (
    COMPOSE,
    ENV_PRODUCTION_EXAMPLE,
    NGINX_CONF,
    UPSTREAMS_BARE_METAL,
    UPSTREAMS_DOCKER,
    free_port,
    parse_env_file,
)
from tests.deploy.nginx_stack import MIB, SERVICES, directives, nginx_test, render, replace_all, self_signed_certificate
from tests.observability.helpers import load_yaml


def test_config_leaves_user_pid_and_daemon_to_each_nginx():
    lines = directives(NGINX_CONF.read_text(encoding="utf-8"))
    # Debian's nginx.service passes pid and daemon with -g; a second one would be a duplicate.
    assert not [line for line in lines if re.match(r"(user|pid|daemon)\s", line)]
    assert "include /etc/nginx/mime.types;" in lines
    assert "error_log /var/log/nginx/error.log warn;" in lines


def test_body_limit_is_the_apps_max_body_bytes():
    text = NGINX_CONF.read_text(encoding="utf-8")
    size, unit = re.search(r"client_max_body_size (\d+)([km]?);", text).groups()
    nginx_bytes = int(size) * {"": 1, "k": 1024, "m": MIB}[unit]
    assert nginx_bytes == Settings(_env_file=None).max_body_bytes == MIB
    assert int(parse_env_file(ENV_PRODUCTION_EXAMPLE)["MAX_BODY_BYTES"]) == nginx_bytes
    assert f"supera el máximo de {nginx_bytes} bytes" in text  # nginx's 413 says what the app's says
    buffer, unit = re.search(r"client_body_buffer_size (\d+)([km]?);", text).groups()
    assert int(buffer) * {"": 1, "k": 1024, "m": MIB}[unit] == nginx_bytes  # bodies never spill to disk


def upstream_blocks(path: Path) -> dict[str, tuple[str, list[str]]]:
    """upstream name -> (server address, every other directive of the block, server parameters first)."""
    blocks = {}
    for name, body in re.findall(r"upstream (\w+) \{(.*?)\}", path.read_text(encoding="utf-8"), re.DOTALL):
        (server,) = re.findall(r"^\s*server (\S+) ([^;]*);", body, re.MULTILINE)
        others = [line for line in directives(body) if not line.startswith("server ")]
        blocks[name] = (server[0], [server[1], *others])
    return blocks


def test_docker_and_bare_metal_upstreams_differ_only_in_the_address():
    docker, bare = upstream_blocks(UPSTREAMS_DOCKER), upstream_blocks(UPSTREAMS_BARE_METAL)
    assert set(docker) == set(bare) == set(SERVICES)
    compose = load_yaml(COMPOSE)["services"]
    for service in SERVICES:
        host, port = docker[service][0].split(":")
        assert compose[host]["environment"]["PORT"] == port  # the compose service listening there
        assert bare[service][0] == f"127.0.0.1:{port}"
        assert docker[service][1] == bare[service][1]
        parameters = docker[service][1]
        assert "max_fails=3 fail_timeout=10s" in parameters[0]
        assert any(line.startswith("keepalive ") for line in parameters[1:])


def test_the_bare_metal_config_passes_nginx_t(tmp_path):
    conf = render(tmp_path, upstreams=UPSTREAMS_BARE_METAL.read_text(encoding="utf-8"))
    self_signed_certificate(tmp_path / "tls")
    result = nginx_test(conf)
    assert result.returncode == 0, result.stderr


def test_nginx_t_catches_a_broken_config(tmp_path):
    broken = UPSTREAMS_BARE_METAL.read_text(encoding="utf-8").replace("upstream negocio", "upstream otro")
    conf = render(tmp_path, upstreams=broken)
    self_signed_certificate(tmp_path / "tls")
    result = nginx_test(conf)
    assert result.returncode != 0 and "negocio" in result.stderr


def test_rendered_config_passes_nginx_t(stack):
    result = nginx_test(stack.conf)
    assert result.returncode == 0, result.stderr


def test_the_compose_nginx_healthcheck_command(stack):
    (kind, *command) = load_yaml(COMPOSE)["services"]["nginx"]["healthcheck"]["test"]
    assert kind == "CMD" and command[0] == "bash"
    here = [command[0], command[1], replace_all(command[2], "/dev/tcp/127.0.0.1/80 ",
                                                f"/dev/tcp/127.0.0.1/{stack.http_port} ", count=1)]
    assert subprocess.run(here, capture_output=True, timeout=30, check=False).returncode == 0
    closed = [command[0], command[1], command[2].replace("/dev/tcp/127.0.0.1/80 ", f"/dev/tcp/127.0.0.1/{free_port()} ")]
    assert subprocess.run(closed, capture_output=True, timeout=30, check=False).returncode != 0
