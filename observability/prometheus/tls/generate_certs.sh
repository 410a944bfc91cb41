#!/usr/bin/env bash
# Certificados de Prometheus -> Alertmanager (TLS mutuo) en esta carpeta; runbook PB4:
#   cd observability/prometheus/tls && ./generate_certs.sh
# Crea ca.crt/.key, prometheus.crt/.key (cliente) y alertmanager.crt/.key (servidor). Si ya hay
# certificados, los copia a backup_AAAAMMDD_HHMMSS/ y los renueva conservando la CA, así
# Prometheus y Alertmanager se siguen reconociendo. Como root, las claves quedan del uid 65534
# (el usuario de las imágenes de Prometheus y Alertmanager).
# Otras opciones (--days, --renew-ca, --host ...) pasan tal cual: ./generate_certs.sh --help
# The generator itself is `minimarket certs generate` (src/minimarket/ops/tls.py); this only
# picks the folder, --force when renewing, and the key owner.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"

if command -v minimarket >/dev/null 2>&1; then
  minimarket=(minimarket)
elif [[ -x "$repo/.venv/bin/minimarket" ]]; then
  minimarket=("$repo/.venv/bin/minimarket")
else
  minimarket=(python3 -m minimarket)
fi

args=(certs generate --dest "$here")
if compgen -G "$here/*.crt" >/dev/null || compgen -G "$here/*.key" >/dev/null; then
  args+=(--force)
fi
if [[ "$(id -u)" == "0" ]]; then
  args+=(--key-owner 65534)
fi
exec "${minimarket[@]}" "${args[@]}" "$@"
