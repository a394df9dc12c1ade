#!/usr/bin/env bash
# Back up the regassist PostgreSQL database.
#
# Writes two dumps of POSTGRES_DB into BACKUP_DIR:
#   backup_YYYYMMDD_HHMMSS.sql.gz   plain SQL (pg_dump | gzip), restorable with psql anywhere
#   backup_YYYYMMDD_HHMMSS.dump     custom format, restorable with pg_restore (selective restores)
# each with a `<file>.sha256` sidecar, checks each new file end to end, then deletes backups older
# than BACKUP_RETENTION_DAYS. Timestamps are UTC.
#
# Works inside the postgres container (`docker-compose exec -T postgres /backups/backup-script.sh`,
# where the image's POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB are already set) and from a host
# with the PostgreSQL client tools (set POSTGRES_HOST/POSTGRES_PORT). Restore with restore-script.sh.
#
# Environment (defaults in brackets):
#   POSTGRES_HOST [localhost]  POSTGRES_PORT [5432]  POSTGRES_USER [postgres]
#   POSTGRES_PASSWORD [unset: .pgpass, trust or peer auth]  POSTGRES_DB [medical_device_assistant]
#   BACKUP_DIR [/backups]  BACKUP_RETENTION_DAYS [30; 0 keeps everything]
#
# Exit status: 0 when both dumps were written and verified; non-zero with a message otherwise
# (a failed run leaves no backup_* file behind, only what earlier runs wrote).
set -euo pipefail

POSTGRES_HOST="${POSTGRES_HOST:-localhost}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-medical_device_assistant}"
BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_RETENTION_DAYS="${BACKUP_RETENTION_DAYS:-30}"

# The completion marker pg_dump writes at the very end of a plain dump; its absence means the
# dump stopped part-way (the restore script refuses such a file).
readonly DUMP_COMPLETE_MARKER='-- PostgreSQL database dump complete'

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$BACKUP_RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number of days, got '$BACKUP_RETENTION_DAYS'"
for tool in pg_dump pg_restore psql gzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found in PATH (install the PostgreSQL client tools)"
done

if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then
    export PGPASSWORD="$POSTGRES_PASSWORD"
fi
# Keep the connection parameters in one place; every client below reads them.
export PGHOST="$POSTGRES_HOST" PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_USER"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

mkdir -p "$BACKUP_DIR" || die "cannot create BACKUP_DIR $BACKUP_DIR"
[[ -w "$BACKUP_DIR" ]] || die "BACKUP_DIR $BACKUP_DIR is not writable"

# One backup at a time: two runs in the same second would otherwise race on the same names.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$BACKUP_DIR/.backup.lock"
    flock -n 9 || die "another backup is running (lock $BACKUP_DIR/.backup.lock)"
fi

psql -X -q -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 -Atc 'select 1' >/dev/null \
    || die "cannot connect to database '$POSTGRES_DB' at $POSTGRES_HOST:$POSTGRES_PORT as $POSTGRES_USER"

# The runbook compares these counts after a restore; logging them here puts them beside the file
# names in the backup log. (Tables that this schema version lacks are skipped; a failure to count
# is only a warning: it must never cost the backup.)
row_counts() {
    psql -X -q -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 -At -F ' ' <<'SQL'
SELECT format('SELECT %L, count(*) FROM %I', t, t)
  FROM unnest(ARRAY['users', 'projects', 'agent_interactions', 'audit_events']) AS t
 WHERE to_regclass(t) IS NOT NULL
\gexec
SQL
}
row_counts | while read -r table rows; do log "  $table: $rows rows"; done || log "warning: could not count the rows"

stamp="$(date -u +%Y%m%d_%H%M%S)"
sql_name="backup_${stamp}.sql.gz"
dump_name="backup_${stamp}.dump"
sql_file="$BACKUP_DIR/$sql_name"
dump_file="$BACKUP_DIR/$dump_name"
[[ ! -e "$sql_file" && ! -e "$dump_file" ]] || die "$sql_name or $dump_name already exists; run again in a second"

# Partial files carry a dot prefix and a .partial suffix: retention and restores never mistake
# them for backups, and the trap removes them when anything fails.
sql_tmp="$BACKUP_DIR/.${sql_name}.partial"
dump_tmp="$BACKUP_DIR/.${dump_name}.partial"
finished=0
cleanup() {
    rm -f "$sql_tmp" "$dump_tmp"
    if [[ "$finished" != 1 ]]; then
        rm -f "$sql_file" "$sql_file.sha256" "$dump_file" "$dump_file.sha256"
    fi
}
trap cleanup EXIT

# --no-owner/--no-privileges: the dump restores into a fresh cluster (disaster recovery) where
# the original roles may not exist; objects end up owned by the restoring user, which is the
# application's database owner in this deployment.
log "dumping '$POSTGRES_DB' from $POSTGRES_HOST:$POSTGRES_PORT (plain SQL, gzip)"
pg_dump --format=plain --no-owner --no-privileges --dbname="$POSTGRES_DB" | gzip -6 -c >"$sql_tmp" \
    || die "pg_dump (plain) failed"

log "dumping '$POSTGRES_DB' (custom format)"
pg_dump --format=custom --no-owner --no-privileges --dbname="$POSTGRES_DB" --file="$dump_tmp" \
    || die "pg_dump (custom) failed"

# Integrity: read every byte back before calling the backup good.
gzip -t "$sql_tmp" || die "gzip integrity check of $sql_name failed"
# (The tail is captured before grep so an early-exiting grep cannot SIGPIPE the pipeline.)
dump_tail="$(gzip -dc "$sql_tmp" | tail -n 20)" || die "cannot decompress $sql_name"
grep -qxF -- "$DUMP_COMPLETE_MARKER" <<<"$dump_tail" \
    || die "$sql_name lacks pg_dump's completion marker (dump incomplete)"
# --list only reads the table of contents; a full conversion to SQL reads every data block, so a
# short or damaged file fails here rather than at restore time.
pg_restore --list "$dump_tmp" >/dev/null || die "pg_restore cannot read the table of contents of $dump_name"
pg_restore --file=/dev/null "$dump_tmp" || die "pg_restore cannot read $dump_name to the end"

mv -f "$sql_tmp" "$sql_file"
mv -f "$dump_tmp" "$dump_file"
# Sidecars name the file relatively so `cd BACKUP_DIR && sha256sum -c backup_*.sha256` works
# wherever the directory is mounted.
(cd "$BACKUP_DIR" && sha256sum "$sql_name" >"$sql_name.sha256" && sha256sum "$dump_name" >"$dump_name.sha256")
finished=1

if [[ "$BACKUP_RETENTION_DAYS" -gt 0 ]]; then
    # Only files this script names; anything else in BACKUP_DIR (the scripts themselves when
    # mounted there, operator notes) is left alone.
    while IFS= read -r old; do
        log "retention: removed $(basename "$old") (older than $BACKUP_RETENTION_DAYS days)"
    done < <(find "$BACKUP_DIR" -maxdepth 1 -type f \
        \( -name 'backup_*.sql.gz' -o -name 'backup_*.dump' -o -name 'backup_*.sha256' \) \
        -mtime +"$BACKUP_RETENTION_DAYS" -print -delete)
    # Leftovers of a run that was killed (the trap cannot run on SIGKILL).
    find "$BACKUP_DIR" -maxdepth 1 -type f -name '.backup_*.partial' -mmin +1440 -delete
fi

log "backup complete: $(du -h "$sql_file" | cut -f1) $sql_name, $(du -h "$dump_file" | cut -f1) $dump_name"
# stdout carries only the file names, one per line, for scripts that chain on this one.
printf '%s\n' "$sql_file" "$dump_file"
