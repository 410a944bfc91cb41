"""docker-compose.production.yml against the Compose specification and the runbook; .env.production.example.

Docker does not run here, so the compose file is checked statically (the same JSON-schema
validation as tests/observability/test_configs.py, with its copy of the schema) and the commands
it gives the containers (migrate, the apps' health check) are run for real as local processes.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import tomllib

import pytest

from minimarket.config import ConfigError, Settings
from tests.deploy.helpers import (
    APP_SERVICES,
    COMPOSE,
    COMPOSE_SCHEMA,
    ENV_PRODUCTION_EXAMPLE,
    NGINX_CONF,
    ROOT,
    app_env,
    cli_command,
    documented_names,
    free_port,
    parse_env_file,
)
from tests.observability.helpers import load_json, load_yaml, need_module

RUNBOOK_CONTAINERS = {
    "dashboard": "dashboard",
    "agente-deposito": "agente-deposito",
    "agente-negocio": "agente-negocio",
    "postgres": "inventario_retail_db",
    "redis": "redis",
    "nginx": "nginx",
}
LONG_RUNNING = set(RUNBOOK_CONTAINERS)
EXPECTED_DATABASE_URL = "postgresql://minimarket:${POSTGRES_PASSWORD}@postgres:5432/inventario_retail"
REQUIRED_VAR = re.compile(r"\$\{(\w+):\?[^}]*\}")  # ${VAR:?message}: compose refuses to start without VAR
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ENCRYPTION_KEY|API_KEY|DSN", re.IGNORECASE)


def compose() -> dict:
    return load_yaml(COMPOSE)


def services() -> dict[str, dict]:
    return compose()["services"]


def without_messages(value: str) -> str:
    """`${VAR:?message}` -> `${VAR}`, to compare values without the operator message."""
    return REQUIRED_VAR.sub(r"${\1}", value)


def schema_errors(document: dict) -> list[str]:
    jsonschema = need_module("jsonschema")
    schema = load_json(COMPOSE_SCHEMA)
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


# --- Compose specification --------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification():
    errors = schema_errors(compose())
    assert not errors, "\n".join(errors)


def test_compose_schema_check_is_not_vacuous():
    document = compose()
    document["services"]["dashboard"]["deploy"]["resources"]["limits"]["memoria"] = "512M"
    document["services"]["postgres"]["healthcheck"]["intervalo"] = "10s"
    document["services"]["dashboard"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert len(schema_errors(document)) >= 3


# --- the runbook's names --------------------------------------------------------------------------


def test_services_and_container_names_are_the_runbooks():
    found = services()
    assert set(found) == LONG_RUNNING | {"migrate"}
    for name, container in RUNBOOK_CONTAINERS.items():
        # `docker logs dashboard`, `docker stats dashboard`, `docker exec inventario_retail_db ...`
        assert found[name]["container_name"] == container, name


def test_postgres_volume_has_the_runbooks_literal_name():
    document = compose()
    assert document["volumes"]["inventario_retail_postgres_data"] == {"name": "inventario_retail_postgres_data"}
    postgres = document["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    # `docker exec inventario_retail_db du -sh /var/lib/postgresql/data` (runbook P2)
    assert "inventario_retail_postgres_data:/var/lib/postgresql/data" in postgres["volumes"]


def test_the_network_is_the_one_observability_joins():
    observability = load_yaml(ROOT / "observability" / "docker-compose.observability.yml")
    assert compose()["networks"]["default"]["name"] == observability["networks"]["default"]["name"]
    scrape = load_yaml(ROOT / "observability" / "prometheus" / "prometheus.yml")["scrape_configs"]
    targets = {t for job in scrape for config in job["static_configs"] for t in config["targets"]}
    for name, (_, port) in APP_SERVICES.items():
        assert f"{name}:{port}" in targets  # Prometheus scrapes the apps by these names and ports


def test_memory_limits_on_the_apps_as_runbook_pb3_edits_them():
    for name in APP_SERVICES:
        assert services()[name]["deploy"]["resources"]["limits"]["memory"] == "512M", name


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy():
    found = services()
    for name in LONG_RUNNING:
        check = found[name].get("healthcheck") or {}
        assert not check.get("disable"), name
        assert isinstance(check.get("test"), list) and check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert found[name]["restart"] in {"unless-stopped", "always"}, name
    for name in APP_SERVICES:
        assert "/health" in " ".join(found[name]["healthcheck"]["test"]), name
    assert "pg_isready -U postgres" in " ".join(found["postgres"]["healthcheck"]["test"])
    assert found["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/health" in " ".join(found["nginx"]["healthcheck"]["test"])


# --- the apps -------------------------------------------------------------------------------------


def test_apps_run_the_image_of_deploy_dockerfile_as_their_service_and_port():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    found = services()
    for name, (service, port) in APP_SERVICES.items():
        app = found[name]
        assert app["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}, name
        assert app["image"] == f"minimarket:{version}", name  # never a :latest, never pulled from a registry
        assert app["env_file"] == ".env.production", name
        env = app["environment"]
        assert env["MINIMARKET_SERVICE"] == service and env["PORT"] == str(port), name
        assert env["MINIMARKET_ENV"] == "production"
        assert without_messages(env["DATABASE_URL"]) == EXPECTED_DATABASE_URL
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "command" not in app and "entrypoint" not in app  # the image's CMD: serve $MINIMARKET_SERVICE on $PORT
    assert found["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]  # runbook P1: curl http://localhost:8080/health
    assert "ports" not in found["agente-deposito"] and "ports" not in found["agente-negocio"]


def test_peer_urls_name_the_services_and_their_ports():
    found = services()
    expected = {"DASHBOARD_URL": "http://dashboard:8080", "DEPOSITO_URL": "http://agente-deposito:8001",
                "NEGOCIO_URL": "http://agente-negocio:8002"}
    for name in APP_SERVICES:
        env = found[name]["environment"]
        assert {k: env[k] for k in expected} == expected, name
    for url in expected.values():
        host, port = url.removeprefix("http://").split(":")
        assert found[host]["environment"]["PORT"] == port


def test_the_apps_believe_x_forwarded_for_only_from_the_nginx_service():
    found = services()
    assert "nginx" in found
    for name in APP_SERVICES:
        assert found[name]["environment"]["TRUSTED_PROXIES"] == "nginx", name
    assert "TRUSTED_PROXIES" not in parse_env_file(ENV_PRODUCTION_EXAMPLE)  # compose sets it; only mentioned there
    assert "# TRUSTED_PROXIES=nginx" in ENV_PRODUCTION_EXAMPLE.read_text(encoding="utf-8")
    assert example_settings(DATABASE_ENCRYPTION_KEY=secrets.token_hex(32),
                            POSTGRES_PASSWORD=secrets.token_hex(12)).trusted_proxies == "nginx"


def test_migrate_runs_once_before_the_apps():
    found = services()
    migrate = found["migrate"]
    assert migrate["command"] == ["minimarket", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert without_messages(migrate["environment"]["DATABASE_URL"]) == EXPECTED_DATABASE_URL
    assert migrate["build"] == found["dashboard"]["build"] and migrate["image"] == found["dashboard"]["image"]
    for name in APP_SERVICES:
        assert found[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert found[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name


def test_postgres_creates_the_app_role_and_database_of_database_url():
    postgres = services()["postgres"]
    assert "./deploy/postgres/initdb:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    script = ROOT / "deploy" / "postgres" / "initdb" / "10-minimarket.sh"
    assert script.stat().st_mode & 0o111, "la imagen de postgres sólo ejecuta los .sh con permiso de ejecución"
    text = script.read_text(encoding="utf-8")
    assert "CREATE ROLE minimarket LOGIN PASSWORD :'app_password'" in text
    assert "CREATE DATABASE inventario_retail OWNER minimarket" in text
    assert '--set=app_password="$POSTGRES_PASSWORD"' in text  # psql quotes it; never pasted into the SQL
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, check=False).returncode == 0


def test_redis_is_a_bounded_cache():
    command = services()["redis"]["command"]
    assert services()["redis"]["image"] == "redis:7"
    assert command[command.index("--maxmemory") + 1] == "256mb"
    assert command[command.index("--maxmemory-policy") + 1] == "allkeys-lru"


def test_nginx_mounts_what_nginx_conf_reads():
    nginx = services()["nginx"]
    assert nginx["image"] == "nginx:1.25"
    assert sorted(nginx["ports"]) == ["443:443", "80:80"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in nginx["volumes"])  # container -> host
    assert mounts["/etc/nginx/nginx.conf"] == "./deploy/nginx/nginx.conf"
    assert mounts["/etc/nginx/minimarket/upstreams.conf"] == "./deploy/nginx/upstreams.conf"
    assert mounts["/etc/nginx/tls"] == "./deploy/nginx/tls"
    conf = NGINX_CONF.read_text(encoding="utf-8")
    assert "include /etc/nginx/minimarket/upstreams.conf;" in conf
    assert "ssl_certificate /etc/nginx/tls/server.crt;" in conf
    assert "ssl_certificate_key /etc/nginx/tls/server.key;" in conf
    for name in APP_SERVICES:
        assert nginx["depends_on"][name] == {"condition": "service_healthy"}
    for service in services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} no existe"


def test_no_image_floats_on_latest():
    for name, service in services().items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


# --- secrets --------------------------------------------------------------------------------------


def test_no_secret_values_inline():
    text = COMPOSE.read_text(encoding="utf-8")
    found = services()
    url_passwords = 0
    for name, service in found.items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), f"{name}.{key}: {value!r} no viene del entorno"
            # Passwords inside URLs come from the environment, required, never with a default.
            for match in re.finditer(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@/\s]*)@", value):
                assert REQUIRED_VAR.fullmatch(match[1]), f"{name}.{key}: contraseña escrita en el archivo"
                url_passwords += 1
        assert "DATABASE_ENCRYPTION_KEY" not in (service.get("environment") or {}), name  # only in .env.production
    assert url_passwords == len(APP_SERVICES) + 1  # the apps' and migrate's DATABASE_URL
    assert found["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert not re.search(r"\$\{\w*(PASSWORD|SECRET|KEY)\w*:?-", text), "un secreto con valor por defecto"
    assert not re.search(r"[0-9a-fA-F]{32,}", text), "algo que parece una clave quedó en el archivo"


def test_env_production_is_ignored_by_git():
    for name in (".env.production", ".env"):
        result = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT, check=False)
        assert result.returncode == 0, f"{name} no está en .gitignore"
    result = subprocess.run(["git", "check-ignore", "-q", ".env.production.example"], cwd=ROOT, check=False)
    assert result.returncode == 1


# --- .env.production.example ---------------------------------------------------------------------------


def example_settings(**overrides: str) -> Settings:
    """Settings as the containers get them: .env.production.example plus the compose environment."""
    values = {**parse_env_file(ENV_PRODUCTION_EXAMPLE), **overrides}
    environment = dict(services()["dashboard"]["environment"])
    environment["DATABASE_URL"] = without_messages(environment["DATABASE_URL"]).replace(
        "${POSTGRES_PASSWORD}", values["POSTGRES_PASSWORD"])
    values.update(environment)
    values.update(overrides)
    fields = set(Settings.model_fields)
    return Settings(_env_file=None, **{k.lower(): v for k, v in values.items() if k.lower() in fields})


def test_env_production_example_documents_every_setting():
    documented = documented_names(ENV_PRODUCTION_EXAMPLE)
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"faltan en .env.production.example: {sorted(missing)}"
    assert "POSTGRES_PASSWORD" in documented


def test_env_production_example_has_placeholders_not_secrets():
    values = parse_env_file(ENV_PRODUCTION_EXAMPLE)
    assert values["POSTGRES_PASSWORD"].startswith("CAMBIAR_")
    assert values["DATABASE_ENCRYPTION_KEY"].startswith("CAMBIAR_")
    text = ENV_PRODUCTION_EXAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"[0-9a-fA-F]{32,}", text), "algo que parece una clave real quedó en el ejemplo"
    # Compose sets these; a value here would be silently overridden, so they are only mentioned.
    for name in ("DATABASE_URL", "REDIS_URL", "MINIMARKET_ENV", "PORT"):
        assert name not in values, name


def test_the_app_refuses_to_start_with_the_example_as_is():
    with pytest.raises(ConfigError, match="DATABASE_ENCRYPTION_KEY"):
        example_settings().check()


def test_the_example_starts_once_the_encryption_key_is_real():
    # Proves the refusal above is the placeholder's doing, not some other missing setting.
    example_settings(DATABASE_ENCRYPTION_KEY=secrets.token_hex(32),
                     POSTGRES_PASSWORD=secrets.token_hex(12)).check()


def test_the_app_refuses_the_example_postgres_password():
    with pytest.raises(ConfigError):
        example_settings(DATABASE_ENCRYPTION_KEY=secrets.token_hex(32)).check()


# --- the containers' commands, run for real -----------------------------------------------------------


def test_the_migrate_command_migrates(tmp_path):
    command = services()["migrate"]["command"]
    database = tmp_path / "migrate.db"
    assert command[0] == "minimarket"
    result = subprocess.run(cli_command() + command[1:], env=app_env(f"sqlite:///{database}"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    current = subprocess.run(cli_command() + ["db", "current"], env=app_env(f"sqlite:///{database}"), cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)
    actual, expected = re.search(r"actual: (\S+)\s+esperada: (\S+)", current.stdout).groups()
    assert actual == expected


def test_the_app_healthcheck_command_reports_health(processes, tmp_path):
    (kind, *command) = services()["dashboard"]["healthcheck"]["test"]
    assert kind == "CMD" and command[0] == "python"
    command = [sys.executable, *command[1:]]
    port = free_port()
    env = app_env(f"sqlite:///{tmp_path / 'hc.db'}")
    server = processes.spawn(cli_command() + ["serve", "--service", "dashboard", "--host", "127.0.0.1",
                                              "--port", str(port)], env=env, port=port, service="dashboard")
    ok = subprocess.run(command, env={**env, "PORT": str(port)}, capture_output=True, timeout=30, check=False)
    assert ok.returncode == 0, ok.stderr
    server.stop()
    down = subprocess.run(command, env={**env, "PORT": str(port)}, capture_output=True, timeout=30, check=False)
    assert down.returncode != 0
