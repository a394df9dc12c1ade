#!/usr/bin/env bash
# Restore the regassist PostgreSQL database from a backup made by backup-script.sh.
#
# usage: restore-script.sh [--yes] [--check-only] FILE
#   FILE          backup_YYYYMMDD_HHMMSS.sql.gz (plain SQL, gzip), .sql (plain) or .dump (custom)
#   --check-only  validate FILE and exit; the database is not contacted
#   --yes         confirm the swap. Without a terminal (cron, `docker-compose exec -T`) the script
#                 refuses to run without it; on a terminal it asks instead.
#
# Order of work, so that a bad file or a wrong backup never costs the live database anything:
#   1. Validate FILE completely: readable and non-empty; sha256 matches FILE.sha256 when that
#      sidecar exists; gzip stream intact; plain SQL ends with pg_dump's completion marker; a
#      custom dump reads to its end. Any failure: exit 2 with "REFUSED: ...", nothing touched.
#   2. Load FILE into a scratch database <db>_restoring in ONE transaction with ON_ERROR_STOP
#      (psql --single-transaction / pg_restore --single-transaction --exit-on-error), as the
#      owner role when REGASSIST_OWNER_USER is set, then grant the service role its privileges
#      again (backups carry none). A failure here drops the scratch database; the live database is
#      still untouched.
#   3. Swap: close the live database to new connections, end its sessions, RENAME it to
#      <db>_pre_restore_YYYYMMDD_HHMMSS (UTC) and rename the scratch database in its place. Nothing
#      is dropped: the old database is kept under its dated name until an operator drops it, and
#      going back is two renames (docs/RUNBOOK.md "Going back after a restore").
# Stop the backend replicas first (docs/RUNBOOK.md) so that no write lands between the backup's
# moment and the swap.
#
# Environment: POSTGRES_HOST [localhost] POSTGRES_PORT [5432] POSTGRES_USER [postgres]
#   POSTGRES_PASSWORD [unset] POSTGRES_DB [medical_device_assistant]
#   POSTGRES_MAINTENANCE_DB [postgres]: where CREATE/ALTER DATABASE run from
#   REGASSIST_OWNER_USER [unset]: the role that owns the schema (scripts/postgres-init-roles.sh)
#   RESTORE_REQUIRE_CHECKSUM [0]: 1 refuses a FILE without its .sha256 sidecar
# The connecting role must be allowed to create and rename databases and to terminate the other
# sessions (the postgres image's POSTGRES_USER is a superuser). Works inside the postgres
# container and from a host with the PostgreSQL client tools.
#
# Exit status: 0 restored (or valid with --check-only); 2 file or run refused; 1 any other failure.
set -euo pipefail

POSTGRES_HOST="${POSTGRES_HOST:-localhost}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-medical_device_assistant}"
POSTGRES_MAINTENANCE_DB="${POSTGRES_MAINTENANCE_DB:-postgres}"
RESTORE_REQUIRE_CHECKSUM="${RESTORE_REQUIRE_CHECKSUM:-0}"
REGASSIST_OWNER_USER="${REGASSIST_OWNER_USER:-}"

readonly DUMP_COMPLETE_MARKER='-- PostgreSQL database dump complete'

log() { printf '%s restore: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
refuse() { log "REFUSED: $*; the database was not touched"; exit 2; }
usage() { sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }

assume_yes=0
check_only=0
file=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -y | --yes) assume_yes=1 ;;
        --check-only) check_only=1 ;;
        -h | --help) usage ;;
        --) shift; file="${1:-}"; break ;;
        -*) log "unknown option $1"; usage ;;
        *) [[ -z "$file" ]] || { log "only one FILE may be given"; usage; }; file="$1" ;;
    esac
    shift
done
[[ -n "$file" ]] || usage

for tool in psql pg_restore gzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found in PATH (install the PostgreSQL client tools)"
done

# ---------------------------------------------------------------------------------------------
# 1. Validate the file. Nothing below this block runs unless the file is complete and intact.
# ---------------------------------------------------------------------------------------------
[[ -e "$file" ]] || refuse "$file does not exist"
[[ -f "$file" && -r "$file" ]] || refuse "$file is not a readable regular file"
[[ -s "$file" ]] || refuse "$file is empty"

case "$file" in
    *.sql.gz) kind=plain_gz ;;
    *.sql) kind=plain ;;
    *.dump) kind=custom ;;
    *) refuse "$file: unknown backup type (expected .sql.gz, .sql or .dump)" ;;
esac

sidecar="$file.sha256"
if [[ -f "$sidecar" ]]; then
    expected="$(awk 'NR == 1 { print tolower($1) }' "$sidecar")"
    actual="$(sha256sum "$file" | awk '{ print $1 }')"
    [[ "$expected" =~ ^[0-9a-f]{64}$ ]] || refuse "$sidecar does not hold a sha256 digest"
    [[ "$expected" == "$actual" ]] || refuse "$file does not match its checksum in $sidecar (corrupt or altered)"
    log "checksum matches $(basename "$sidecar")"
elif [[ "$RESTORE_REQUIRE_CHECKSUM" == 1 ]]; then
    refuse "$sidecar is missing and RESTORE_REQUIRE_CHECKSUM=1"
else
    log "warning: no $(basename "$sidecar") beside the file; relying on the format checks only"
fi

# The tail is captured before grep so an early-exiting grep cannot SIGPIPE the pipeline.
case "$kind" in
    plain_gz)
        gzip -t "$file" 2>/dev/null || refuse "$file is not an intact gzip stream (corrupt or truncated)"
        dump_tail="$(gzip -dc "$file" | tail -n 20)" || refuse "$file cannot be decompressed"
        grep -qxF -- "$DUMP_COMPLETE_MARKER" <<<"$dump_tail" \
            || refuse "$file lacks pg_dump's completion marker (the dump is truncated)"
        ;;
    plain)
        dump_tail="$(tail -n 20 "$file")"
        grep -qxF -- "$DUMP_COMPLETE_MARKER" <<<"$dump_tail" \
            || refuse "$file lacks pg_dump's completion marker (the dump is truncated)"
        ;;
    custom)
        pg_restore --list "$file" >/dev/null 2>&1 || refuse "$file is not a readable pg_dump custom-format archive"
        # Converting to SQL reads every data block: a short or damaged archive fails here.
        pg_restore --file=/dev/null "$file" 2>/dev/null || refuse "$file cannot be read to its end (corrupt or truncated)"
        ;;
esac
log "$(basename "$file") is complete and intact"
if [[ "$check_only" == 1 ]]; then
    exit 0
fi
# Nobody can answer a question without a terminal: an unattended run must say --yes itself.
if [[ "$assume_yes" != 1 && ! -t 0 ]]; then
    refuse "no terminal to confirm on; pass --yes to replace '$POSTGRES_DB' (the live database is kept under a dated name)"
fi

# ---------------------------------------------------------------------------------------------
# 2. Load into a scratch database.
# ---------------------------------------------------------------------------------------------
if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then
    export PGPASSWORD="$POSTGRES_PASSWORD"
fi
export PGHOST="$POSTGRES_HOST" PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_USER"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

# Identifiers are passed as psql variables and quoted with :"name", so any database name works.
# (psql only interpolates variables in script input, hence the here-documents.)
admin_sql() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d "$POSTGRES_MAINTENANCE_DB" -v db="$POSTGRES_DB" -v scratch="$scratch" -v aside="$aside" -v owner="$owner" "$@"; }

# The aside name carries the UTC time of the restore; 63 is PostgreSQL's identifier limit.
[[ ${#POSTGRES_DB} -le 43 ]] || die "POSTGRES_DB name too long for the dated name (max 43 characters)"
scratch="${POSTGRES_DB}_restoring"
aside="${POSTGRES_DB}_pre_restore_$(date -u +%Y%m%d_%H%M%S)"
owner="${REGASSIST_OWNER_USER:-$POSTGRES_USER}"

admin_sql -Atc 'select 1' >/dev/null \
    || die "cannot connect to $POSTGRES_HOST:$POSTGRES_PORT/$POSTGRES_MAINTENANCE_DB as $POSTGRES_USER"

if [[ "$assume_yes" != 1 ]]; then
    read -r -p "Replace database '$POSTGRES_DB' on $POSTGRES_HOST:$POSTGRES_PORT with $(basename "$file") (the current one is kept as '$aside')? Type the database name to confirm: " answer
    [[ "$answer" == "$POSTGRES_DB" ]] || die "not confirmed; nothing changed"
fi

drop_scratch() {
    admin_sql <<'SQL' || true
DROP DATABASE IF EXISTS :"scratch";
SQL
}
swapped=0
on_exit() { if [[ "$swapped" != 1 ]]; then drop_scratch; fi; }
trap on_exit EXIT

log "creating scratch database $scratch"
admin_sql <<'SQL' || die "cannot create the scratch database"
DROP DATABASE IF EXISTS :"scratch";
CREATE DATABASE :"scratch" OWNER :"owner" TEMPLATE template0;
SQL

log "loading $(basename "$file") into $scratch (single transaction, as role $owner)"
# The restored objects belong to the owner role, as the migrations made them (the dumps carry no
# ownership); a superuser connection may take any role.
if [[ "$owner" != "$POSTGRES_USER" ]]; then export PGOPTIONS="-c role=$owner"; fi
case "$kind" in
    plain_gz)
        gzip -dc "$file" | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$scratch" -f - >/dev/null \
            || die "loading $file failed; the live database '$POSTGRES_DB' was not touched"
        ;;
    plain)
        psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$scratch" -f "$file" >/dev/null \
            || die "loading $file failed; the live database '$POSTGRES_DB' was not touched"
        ;;
    custom)
        pg_restore --single-transaction --exit-on-error --no-owner --no-privileges -d "$scratch" "$file" \
            || die "loading $file failed; the live database '$POSTGRES_DB' was not touched"
        ;;
esac
# The service role's privileges (migration 0006, one function for the rule): dumps carry none.
psql -X -q -v ON_ERROR_STOP=1 -d "$scratch" -At >/dev/null <<'SQL' || die "granting the service role its privileges on the restored copy failed"
SELECT 'SELECT public.regassist_grant_service()' WHERE to_regproc('public.regassist_grant_service') IS NOT NULL
\gexec
SQL
unset PGOPTIONS
# pg_dump carries no planner statistics; without them the first queries after a restore plan badly.
psql -X -q -v ON_ERROR_STOP=1 -d "$scratch" -c 'ANALYZE' || die "ANALYZE of the restored data failed"

# ---------------------------------------------------------------------------------------------
# 3. Swap: the only destructive step.
# ---------------------------------------------------------------------------------------------
log "replacing database $POSTGRES_DB; the current one is kept as $aside"
# From here on the scratch copy is the only copy of the restored data: never drop it on the way out.
swapped=1
# Two restores within one second: the later one's aside name gets a counter.
n=1 base="$aside"
while [[ "$(admin_sql -Atc "SELECT count(*) FROM pg_database WHERE datname = '$aside'")" != 0 ]]; do
    n=$((n + 1)); aside="${base}_$n"
done
exists="$(admin_sql -Atc "SELECT count(*) FROM pg_database WHERE datname = '$POSTGRES_DB'")" \
    || die "cannot look up '$POSTGRES_DB'; nothing was changed, the restored copy is kept as '$scratch'"
if [[ "$exists" == 1 ]]; then
    # Closed to new connections first, so that a pool reconnecting between the terminate and the
    # rename cannot hold it open; the rename keeps every byte. Reopened under its dated name.
    admin_sql >/dev/null <<'SQL' || die "could not move '$POSTGRES_DB' aside; it is unchanged (or already named '$aside'), the restored copy is kept as '$scratch'"
ALTER DATABASE :"db" ALLOW_CONNECTIONS false;
SELECT count(pg_terminate_backend(pid)) AS terminated
  FROM pg_stat_activity
 WHERE datname = :'db' AND pid <> pg_backend_pid();
ALTER DATABASE :"db" RENAME TO :"aside";
ALTER DATABASE :"aside" ALLOW_CONNECTIONS true;
SQL
fi
admin_sql >/dev/null <<'SQL' || die "could not rename '$scratch' to '$POSTGRES_DB'; the old database is kept as '$aside' (rename it back: docs/RUNBOOK.md)"
ALTER DATABASE :"scratch" RENAME TO :"db";
SQL

log "restored '$POSTGRES_DB' from $(basename "$file")"
# The runbook's post-restore counts (tables that this schema version lacks are skipped).
row_counts() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$POSTGRES_DB" -At -F ' ' <<'SQL'
SELECT format('SELECT %L, count(*) FROM %I', t, t)
  FROM unnest(ARRAY['users', 'projects', 'agent_interactions', 'audit_events']) AS t
 WHERE to_regclass(t) IS NOT NULL
\gexec
SQL
}
row_counts | while read -r table rows; do log "  $table: $rows rows"; done || log "warning: could not count the rows"
if [[ "$exists" == 1 ]]; then
    log "the previous database is kept as '$aside' until you drop it; to go back: docs/RUNBOOK.md \"Going back after a restore\""
fi
log "next: start the backend and run 'regassist audit verify' (see docs/RUNBOOK.md)"
