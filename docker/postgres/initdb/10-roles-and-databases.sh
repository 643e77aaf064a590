#!/usr/bin/env bash
# Run once by the postgres image's entrypoint, on an empty data volume only: one role and one
# database per service, each database owned by its service's role and closed to everyone else, so
# neither service can see the other's tables and neither connects as the superuser.
# The passwords come from the container's environment (docker-compose.yml passes them from .env).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v userd_role=userd -v userd_db=userd -v userd_password="$USERD_DB_PASSWORD" \
  -v orderd_role=orderd -v orderd_db=orderd -v orderd_password="$ORDERD_DB_PASSWORD" \
  -f /docker-entrypoint-initdb.d/roles-and-databases.psql
