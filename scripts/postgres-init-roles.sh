#!/usr/bin/env bash
# Create regassist's two database roles (least privilege; docs/RUNBOOK.md "Database roles").
#
#   REGASSIST_OWNER_USER    owns the database and its schema; runs the migrations (`regassist
#                           migrate`); the only role besides a superuser that can drop or disable
#                           the audit trail's append-only triggers. The backend never uses it.
#   REGASSIST_SERVICE_USER  what the backend replicas log in as: a member of the NOLOGIN group
#                           `regassist_service`, to which migration 0006 grants SELECT/INSERT/
#                           UPDATE/DELETE on the business tables but only SELECT and INSERT on
#                           audit_events and audit_checkpoints (no UPDATE, DELETE, TRUNCATE,
#                           TRIGGER; not the owner).
#
# Runs as a superuser: by the postgres image on its first start (mounted into
# /docker-entrypoint-initdb.d by docker-compose.prod.yml), or by hand / by scripts/ops-test.sh with
# the usual PG* variables. Idempotent: a second run updates the passwords and changes nothing else.
#
# Environment: POSTGRES_DB, REGASSIST_OWNER_USER, REGASSIST_OWNER_PASSWORD,
#   REGASSIST_SERVICE_USER, REGASSIST_SERVICE_PASSWORD (passwords may be empty for trust auth);
#   POSTGRES_USER [postgres] is the superuser to connect as.
set -euo pipefail

: "${POSTGRES_DB:?POSTGRES_DB must be set}"
: "${REGASSIST_OWNER_USER:?REGASSIST_OWNER_USER must be set}"
: "${REGASSIST_SERVICE_USER:?REGASSIST_SERVICE_USER must be set}"
[[ "$REGASSIST_OWNER_USER" != "$REGASSIST_SERVICE_USER" ]] \
    || { echo "the owner and the service must be different roles" >&2; exit 1; }

# Identifiers and passwords go in as psql variables, quoted by psql (:"name", :'literal').
run() {
    psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
        -v owner="$REGASSIST_OWNER_USER" -v owner_pw="${REGASSIST_OWNER_PASSWORD:-}" \
        -v svc="$REGASSIST_SERVICE_USER" -v svc_pw="${REGASSIST_SERVICE_PASSWORD:-}" \
        -v db="$POSTGRES_DB" "$@"
}

run --dbname postgres <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner')
\gexec
SELECT format('CREATE ROLE %I LOGIN', :'svc')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'svc')
\gexec
SELECT 'CREATE ROLE regassist_service NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regassist_service')
\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'owner', :'owner_pw') WHERE :'owner_pw' <> ''
\gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'svc', :'svc_pw') WHERE :'svc_pw' <> ''
\gexec
-- Neither role may create roles or databases, nor bypass row security.
ALTER ROLE :"owner" NOSUPERUSER NOCREATEDB NOCREATEROLE;
ALTER ROLE :"svc" NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT regassist_service TO :"svc";
ALTER DATABASE :"db" OWNER TO :"owner";
SQL

run --dbname "$POSTGRES_DB" <<'SQL'
-- The owner creates the schema's objects; nobody else creates anything in it.
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO regassist_service;
SQL
echo "roles ready: owner $REGASSIST_OWNER_USER, service $REGASSIST_SERVICE_USER (member of regassist_service)"
