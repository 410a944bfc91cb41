#!/bin/sh
# Primer arranque de PostgreSQL (después de 10-minimarket.sh): crea la extensión pg_stat_statements
# en inventario_retail, para las consultas lentas del runbook (PB1/PB2: mean_exec_time,
# total_exec_time). La biblioteca la carga el servidor: docker-compose.production.yml arranca
# postgres con `-c shared_preload_libraries=pg_stat_statements`.
# En un volumen que ya existía (este script no corre solo), una vez, después de recrear el contenedor:
#   docker exec -i inventario_retail_db sh /docker-entrypoint-initdb.d/30-pg-stat-statements.sh
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${MINIMARKET_DATABASE:-inventario_retail}" \
     -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
