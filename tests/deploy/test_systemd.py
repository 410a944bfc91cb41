"""deploy/systemd: the units parsed, verified by systemd-analyze when present, and their commands run."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from minimarket.config import ConfigError, Settings
from tests.deploy.helpers import (
    SYSTEMD,
    UPSTREAMS_BARE_METAL,
    VENV_BIN,
    app_env,
    documented_names,
    expand_unit_command,
    free_port,
    parse_env_file,
    parse_unit,
)

TEMPLATE = SYSTEMD / "minimarket@.service"
MIGRATE = SYSTEMD / "minimarket-migrate.service"
TARGET = SYSTEMD / "minimarket.target"
ENV_EXAMPLE = SYSTEMD / "minimarket.env.example"
INSTANCES = {"dashboard": 8080, "deposito": 8001, "negocio": 8002}
VENV_SCRIPT = "/opt/minimarket/.venv/bin/minimarket"
HARDENING = {
    "User": "minimarket",
    "Group": "minimarket",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/minimarket",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "MemoryMax": "512M",
    "WorkingDirectory": "/var/lib/minimarket",
}


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key} repetida en [{section}]"
    return values[0]


# --- static ---------------------------------------------------------------------------------------


def test_template_serves_the_instance_on_the_port_of_its_env_file():
    unit = parse_unit(TEMPLATE)
    assert one(unit, "Service", "ExecStart") == f"{VENV_SCRIPT} serve --service %i --port ${{PORT}}"
    assert unit["Service"]["EnvironmentFile"] == ["/etc/minimarket/minimarket.env", "/etc/minimarket/%i.env"]
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "Type") == "exec"
    assert one(unit, "Install", "WantedBy") == "minimarket.target"
    assert one(unit, "Unit", "PartOf") == "minimarket.target"


@pytest.mark.parametrize("path", [TEMPLATE, MIGRATE], ids=["template", "migrate"])
def test_hardening(path):
    unit = parse_unit(path)
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    assert one(unit, "Service", "CapabilityBoundingSet") == ""  # no capabilities at all
    assert set(one(unit, "Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_migrations_run_once_before_every_instance():
    migrate = parse_unit(MIGRATE)
    assert one(migrate, "Service", "Type") == "oneshot"
    assert one(migrate, "Service", "RemainAfterExit") == "yes"
    assert one(migrate, "Service", "ExecStart") == f"{VENV_SCRIPT} db upgrade"
    assert migrate["Service"]["EnvironmentFile"] == ["/etc/minimarket/minimarket.env"]
    template = parse_unit(TEMPLATE)
    assert "minimarket-migrate.service" in one(template, "Unit", "Requires").split()
    assert "minimarket-migrate.service" in one(template, "Unit", "After").split()


def test_the_target_starts_migrations_and_the_three_instances():
    target = parse_unit(TARGET)
    wants = set(one(target, "Unit", "Wants").split())
    assert wants == {"minimarket-migrate.service"} | {f"minimarket@{name}.service" for name in INSTANCES}
    assert one(target, "Install", "WantedBy") == "multi-user.target"


def test_instance_ports_match_nginx_bare_metal_upstreams_and_the_app_defaults():
    upstreams = dict(re.findall(r"upstream (\w+) \{\s*server 127\.0\.0\.1:(\d+)", UPSTREAMS_BARE_METAL.read_text()))
    defaults = Settings(_env_file=None)
    for name, port in INSTANCES.items():
        assert parse_env_file(SYSTEMD / f"{name}.env") == {"PORT": str(port)}
        assert upstreams[name] == str(port), name
        assert defaults.service_port(name) == port, name


def test_common_env_example_documents_every_setting_but_the_port():
    missing = {name.upper() for name in Settings.model_fields} - documented_names(ENV_EXAMPLE)
    # PORT comes from /etc/minimarket/<instance>.env; the *_PORT defaults are the app's.
    assert missing <= {"PORT", "DASHBOARD_PORT", "DEPOSITO_PORT", "NEGOCIO_PORT"}, sorted(missing)
    values = parse_env_file(ENV_EXAMPLE)
    assert "PORT" not in values
    assert values["HOST"] == "127.0.0.1"  # only nginx faces the network
    assert values["MINIMARKET_ENV"] == "production"


def test_the_only_trusted_proxy_is_the_local_nginx():
    # nginx on this PC reaches every instance from 127.0.0.1 (upstreams.bare-metal.conf); nobody else is named.
    assert parse_env_file(ENV_EXAMPLE)["TRUSTED_PROXIES"] == "127.0.0.1"
    assert "nginx" in ENV_EXAMPLE.read_text(encoding="utf-8").split("TRUSTED_PROXIES=")[0].rsplit("\n\n", 1)[-1]
    assert Settings(_env_file=None).trusted_proxies == ""  # without the file: no proxy is believed


def test_common_env_example_is_refused_until_its_placeholders_are_replaced():
    values = {k.lower(): v for k, v in parse_env_file(ENV_EXAMPLE).items()}
    with pytest.raises(ConfigError, match="DATABASE_ENCRYPTION_KEY"):
        Settings(_env_file=None, **values).check()
    values["database_encryption_key"] = secrets.token_hex(32)
    values["database_url"] = values["database_url"].replace("CAMBIAR_clave_postgres", secrets.token_hex(12))
    Settings(_env_file=None, **values).check()


# --- systemd-analyze verify ------------------------------------------------------------------------------


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze no está instalado: sólo se revisan las unidades como texto")
    # verify checks that ExecStart exists: point it at this venv's script; nothing else changes.
    for path in (TEMPLATE, MIGRATE, TARGET):
        text = path.read_text(encoding="utf-8")
        (tmp_path / path.name).write_text(text.replace(VENV_SCRIPT, str(VENV_BIN / "minimarket")), encoding="utf-8")
    units = [str(tmp_path / f"minimarket@{name}.service") for name in INSTANCES]
    units += [str(tmp_path / MIGRATE.name), str(tmp_path / TARGET.name)]
    result = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60,
                            check=False)
    output = (result.stdout + result.stderr).strip()
    # Unknown keys and bad values are only warnings (exit 0): any line about our files fails.
    ours = [line for line in output.splitlines() if "minimarket" in line]
    assert result.returncode == 0 and not ours, output


def test_systemd_analyze_verify_is_not_vacuous(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze no está instalado")
    broken = TEMPLATE.read_text(encoding="utf-8").replace(VENV_SCRIPT, str(VENV_BIN / "minimarket"))
    (tmp_path / "minimarket@.service").write_text(broken.replace("MemoryMax=512M", "MemoriaMax=512M"))
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "minimarket@dashboard.service")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "MemoriaMax" in result.stdout + result.stderr


# --- the units' commands, run as local processes ---------------------------------------------------------


def test_migrate_then_instance_commands_work(processes, tmp_path):
    """ExecStart of minimarket-migrate and of minimarket@deposito, expanded as systemd does, with
    the shipped env files (placeholders replaced, SQLite instead of PostgreSQL, a free port)."""
    common = parse_env_file(ENV_EXAMPLE)
    database = f"sqlite:///{tmp_path / 'systemd.db'}"
    common.update(DATABASE_URL=database, DATABASE_ENCRYPTION_KEY=secrets.token_hex(32), REDIS_URL="",
                  DASHBOARD_URL="", DEPOSITO_URL="", NEGOCIO_URL="", TLS_CERT_FILES="")
    port = free_port()
    instance = {**parse_env_file(SYSTEMD / "deposito.env"), "PORT": str(port)}
    env = {**app_env(database), **common}

    script = str(VENV_BIN / "minimarket")
    migrate = expand_unit_command(one(parse_unit(MIGRATE), "Service", "ExecStart"), instance="", env=env)
    migrate[0] = migrate[0].replace(VENV_SCRIPT, script)
    result = subprocess.run(migrate, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    serve = expand_unit_command(one(parse_unit(TEMPLATE), "Service", "ExecStart"), instance="deposito",
                                env={**env, **instance})
    assert serve[1:] == ["serve", "--service", "deposito", "--port", str(port)]
    serve[0] = serve[0].replace(VENV_SCRIPT, script)
    processes.spawn(serve, env={**env, **instance}, port=port, service="deposito")
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    assert health.status_code == 200 and health.json()["service"] == "deposito"


def test_readme_gives_the_runbooks_bare_metal_equivalents():
    text = (SYSTEMD / "README.md").read_text(encoding="utf-8")
    for command in ("systemctl status", "journalctl -u minimarket@dashboard -n 50", "pg_isready -h 127.0.0.1 -U postgres",
                    "systemctl enable --now minimarket.target", "upstreams.bare-metal.conf", "nginx -t"):
        assert command in text, command
    for path in re.findall(r"deploy/[\w./@-]+\.(?:service|target|conf|env|example)", text):
        assert (Path(SYSTEMD).parents[1] / path).exists(), path
