#!/bin/sh
# Primer arranque de PostgreSQL (después de 10-minimarket.sh): crea el usuario de postgres_exporter
# con el mínimo privilegio. Rol `pg_monitor` (lee pg_stat_* y tamaños, no los datos del local), sin
# superusuario, sin crear bases ni roles, con pocas conexiones. La contraseña sale de
# POSTGRES_EXPORTER_PASSWORD (.env.production; el exporter la toma de observability/.env).
# Sin la contraseña el script falla: la imagen de postgres aborta el primer arranque y lo dice.
# A mano, en una base ya creada (runbook, PostgresExporterDown):
#   docker exec -i -e POSTGRES_EXPORTER_PASSWORD=... inventario_retail_db \
#     sh /docker-entrypoint-initdb.d/20-postgres-exporter.sh
set -eu
: "${POSTGRES_EXPORTER_PASSWORD:?definí POSTGRES_EXPORTER_PASSWORD (la contraseña del usuario de postgres_exporter)}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     --set=exporter_user="${POSTGRES_EXPORTER_USER:-postgres_exporter}" \
     --set=exporter_password="$POSTGRES_EXPORTER_PASSWORD" \
     --set=exporter_database="${POSTGRES_EXPORTER_DATABASE:-inventario_retail}" <<'SQL'
CREATE ROLE :"exporter_user" LOGIN PASSWORD :'exporter_password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 3;
GRANT pg_monitor TO :"exporter_user";
GRANT CONNECT ON DATABASE :"exporter_database" TO :"exporter_user";
ALTER ROLE :"exporter_user" SET search_path = pg_catalog;
SQL
