#!/bin/sh
# Primer arranque de PostgreSQL (docker-compose.production.yml lo monta en /docker-entrypoint-initdb.d):
# crea el usuario de la aplicación `minimarket` (sin superusuario) y la base `inventario_retail`,
# que es suya. `postgres` queda como superusuario para el runbook (psql -U postgres, pg_dump).
# Los dos usuarios usan POSTGRES_PASSWORD. La imagen de postgres corre este script UNA vez, cuando
# el volumen inventario_retail_postgres_data está vacío; con datos existentes no se ejecuta.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     --set=app_password="$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE minimarket LOGIN PASSWORD :'app_password';
CREATE DATABASE inventario_retail OWNER minimarket ENCODING 'UTF8' TEMPLATE template0;
SQL
