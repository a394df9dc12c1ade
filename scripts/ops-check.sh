#!/usr/bin/env bash
# Checks of the deployment files that need no regassist binary:
#   - shell syntax of every script in scripts/
#   - nginx -t of the loopback test config and of the production config (TLS and Docker names
#     swapped for a throwaway certificate and 127.0.0.1)
#   - docker-compose config -q of docker-compose.prod.yml (Debian's docker-compose validates
#     without a Docker engine), with and without the monitoring profile
#   - promtool check config / check rules / test rules of monitoring/
#   - backup-script.sh and restore-script.sh for real on a scratch PostgreSQL database: both dump
#     formats, drop and restore, and refusal of missing, corrupt, truncated and failing files
#
# usage: scripts/ops-check.sh            (scripts/ops-test.sh runs it as its first step)
#        OPS_VERBOSE=1 scripts/ops-check.sh   also shows the output of checks that pass
# Needs: nginx, docker-compose, promtool (Debian package prometheus), openssl, psql/pg_dump, and
# a PostgreSQL server on OPS_PGHOST:OPS_PGPORT (127.0.0.1:5432) where OPS_PGUSER (postgres) may
# create databases. A missing tool fails the check: CI must install it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OPS_PGHOST="${OPS_PGHOST:-127.0.0.1}"
OPS_PGPORT="${OPS_PGPORT:-5432}"
OPS_PGUSER="${OPS_PGUSER:-postgres}"
SCRATCH_DB="${OPS_CHECK_DB:-regassist_opscheck}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/regassist-ops-check.XXXXXX")"
declare -a NAMES=() RESULTS=()

cleanup() {
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -h "$OPS_PGHOST" -p "$OPS_PGPORT" -U "$OPS_PGUSER" -d postgres \
        -c "DROP DATABASE IF EXISTS \"$SCRATCH_DB\"" -c "DROP DATABASE IF EXISTS \"${SCRATCH_DB}_restoring\"" \
        >/dev/null 2>&1 || true
    # The databases the restore script kept aside (it never drops one itself).
    local aside
    for aside in $(psql -X -q -h "$OPS_PGHOST" -p "$OPS_PGPORT" -U "$OPS_PGUSER" -d postgres -Atc \
        "select datname from pg_database where datname like '${SCRATCH_DB}\_pre\_restore\_%'" 2>/dev/null); do
        psql -X -q -h "$OPS_PGHOST" -p "$OPS_PGPORT" -U "$OPS_PGUSER" -d postgres -c "DROP DATABASE IF EXISTS \"$aside\"" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[ops-check] %s\n' "$*" >&2; }

# Runs one named check in a subshell (so `exit`/errexit inside it end only that check), logs its
# output to a file, and records PASS or FAIL. The subshell must not run inside `if`, `||` or `&&`:
# bash ignores errexit in those contexts, even when set again inside.
check() {
    local name="$1"; shift
    local out="$WORK/check-${#NAMES[@]}.log" rc
    log "--- $name"
    set +e
    ( set -euo pipefail; "$@" ) >"$out" 2>&1
    rc=$?
    set -e
    if [[ "$rc" == 0 ]]; then
        NAMES+=("$name"); RESULTS+=(PASS)
        if [[ "${OPS_VERBOSE:-0}" == 1 ]]; then sed 's/^/    /' "$out" >&2; fi
    else
        NAMES+=("$name"); RESULTS+=(FAIL)
        log "FAIL: $name; its output:"
        sed 's/^/    /' "$out" >&2
    fi
}

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool (install it in .ci/run)"; return 1; }
    done
}

check_shell_syntax() {
    local f
    for f in "$REPO"/scripts/*.sh "$REPO"/bench/*.sh; do
        bash -n "$f"
        echo "ok $(basename "$f")"
    done
    for f in "$REPO/scripts/ops_load.py" "$REPO"/bench/*.py; do
        python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$f"
    done
    if command -v shellcheck >/dev/null 2>&1; then
        shellcheck -S warning "$REPO"/scripts/*.sh "$REPO"/bench/*.sh
    fi
}

check_nginx_test_conf() {
    need nginx
    local p="$WORK/nginx-test"
    mkdir -p "$p"
    bash "$REPO/scripts/render-nginx-test-conf.sh" "$p" 18080 check 18081 18082
    nginx -t -p "$p" -c "$p/nginx.conf" -e "$p/error.log"
}

check_nginx_prod_conf() {
    need nginx openssl
    local p="$WORK/nginx-prod"
    mkdir -p "$p/certs" "$p/logs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
        -keyout "$p/certs/privkey.pem" -out "$p/certs/fullchain.pem" 2>/dev/null
    cp "$REPO"/nginx/regassist-*.conf "$p/"
    if [[ -f /etc/nginx/mime.types ]]; then cp /etc/nginx/mime.types "$p/"; else echo 'types {}' >"$p/mime.types"; fi
    # Only what exists inside the nginx container changes: the user, file locations, the
    # certificate, and the Docker service name `backend` (resolved by Docker's DNS there).
    sed -e 's/^user nginx;/# user nginx;/' \
        -e "s#/var/log/nginx/#$p/logs/#g" \
        -e "s#/var/run/nginx.pid#$p/nginx.pid#" \
        -e "s#/etc/nginx/#$p/#g" \
        -e 's#server backend:8000#server 127.0.0.1:8000#' \
        "$REPO/nginx/nginx.conf" >"$p/nginx.conf"
    grep -q 'ssl_protocols TLSv1.2 TLSv1.3;' "$p/nginx.conf"
    grep -q 'Strict-Transport-Security' "$p/nginx.conf"
    nginx -t -p "$p" -c "$p/nginx.conf" -e "$p/logs/error.log"
}

check_compose() {
    need docker-compose
    cd "$REPO"
    REGASSIST_ENV_FILE=.env.prod.example docker-compose -f docker-compose.prod.yml config -q
    # The operator's command, exactly as the runbook gives it, once .env.prod exists: run in a
    # copy so that no .env.prod is ever created in the repository.
    local c="$WORK/compose"
    mkdir -p "$c"
    cp docker-compose.prod.yml "$c/"
    cp .env.prod.example "$c/.env.prod"
    (cd "$c" && docker-compose -f docker-compose.prod.yml config -q)
    local services profiles
    services="$(REGASSIST_ENV_FILE=.env.prod.example docker-compose -f docker-compose.prod.yml config --services | sort | tr '\n' ' ')"
    profiles="$(REGASSIST_ENV_FILE=.env.prod.example docker-compose -f docker-compose.prod.yml config --profiles | tr '\n' ' ')"
    echo "services: $services; profiles: $profiles"
    [[ "$services" == "backend migrate nginx postgres prometheus redis " ]]
    [[ "$profiles" == "monitoring " ]]
    # The facts the runbook relies on, read back from the resolved file.
    local resolved
    resolved="$(REGASSIST_ENV_FILE=.env.prod.example docker-compose -f docker-compose.prod.yml --profile monitoring config)"
    grep -q 'replicas: 2' <<<"$resolved"
    # Prometheus only starts with --profile monitoring.
    awk '/^  prometheus:$/{p=1} p && /^    profiles:$/{getline; print; exit}' <<<"$resolved" | grep -q -- '- monitoring'

    grep -q 'shared_preload_libraries=pg_stat_statements' <<<"$resolved"
    grep -q 'allkeys-lru' <<<"$resolved"
    grep -q 'POSTGRES_DB: medical_device_assistant' <<<"$resolved"
    grep -q 'target: /backups/backup-script.sh' <<<"$resolved" || grep -q '/backups/backup-script.sh' <<<"$resolved"
}

check_prometheus_config() {
    need promtool
    promtool check config "$REPO/monitoring/prometheus.yml"
}

check_alert_rules() {
    need promtool
    promtool check rules "$REPO/monitoring/alerts.yml"
    local n
    n="$(grep -c '^      - alert: ' "$REPO/monitoring/alerts.yml")"
    echo "$n alerts"
}

check_alert_tests() {
    need promtool
    cd "$REPO/monitoring"
    promtool test rules alerts.test.yml
    # Every alert has at least one test case that expects it to fire.
    local a
    for a in $(awk '/^      - alert: /{print $3}' alerts.yml); do
        grep -q "alertname: $a\$" alerts.test.yml || { echo "no test for alert $a"; return 1; }
    done
}

# ---------------------------------------------------------------------------------------------
# backup-script.sh / restore-script.sh on a scratch database
# ---------------------------------------------------------------------------------------------
q() { psql -X -q -h "$OPS_PGHOST" -p "$OPS_PGPORT" -U "$OPS_PGUSER" -v ON_ERROR_STOP=1 "$@"; }
db_oid() { q -d postgres -Atc "select oid from pg_database where datname = '$SCRATCH_DB'"; }
# A digest of every row of the tables the runbook counts, plus the audit table.
fingerprint() {
    q -d "$SCRATCH_DB" -At <<'SQL'
select string_agg(t || '=' || n || ':' || h, ' ' order by t) from (
  select 'users' t, count(*) n, md5(coalesce(string_agg(x::text, '|' order by x.id), '')) h from users x
  union all select 'projects', count(*), md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from projects x
  union all select 'agent_interactions', count(*), md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from agent_interactions x
  union all select 'audit_events', count(*), md5(coalesce(string_agg(x::text, '|' order by x.seq), '')) from audit_events x
) s
SQL
}

check_backup_restore() {
    need psql pg_dump pg_restore gzip sha256sum
    export POSTGRES_HOST="$OPS_PGHOST" POSTGRES_PORT="$OPS_PGPORT" POSTGRES_USER="$OPS_PGUSER" POSTGRES_DB="$SCRATCH_DB"
    export BACKUP_DIR="$WORK/backups"
    local backup="$REPO/scripts/backup-script.sh" restore="$REPO/scripts/restore-script.sh"
    unset POSTGRES_PASSWORD

    q -d postgres -c "DROP DATABASE IF EXISTS \"$SCRATCH_DB\"" -c "CREATE DATABASE \"$SCRATCH_DB\""
    # The shape of the real schema that matters to dump and restore: identity keys, foreign keys,
    # JSONB, and an append-only audit table whose triggers refuse UPDATE/DELETE/TRUNCATE.
    q -d "$SCRATCH_DB" <<'SQL'
CREATE TABLE users (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email TEXT UNIQUE NOT NULL);
CREATE TABLE projects (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       user_id BIGINT NOT NULL REFERENCES users (id), name TEXT NOT NULL, tags JSONB NOT NULL DEFAULT '[]');
CREATE TABLE agent_interactions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                 project_id BIGINT REFERENCES projects (id), output JSONB NOT NULL);
CREATE TABLE audit_events (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL);
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 3) g;
INSERT INTO projects (user_id, name, tags) SELECT 1 + g % 3, 'project ' || g, '["ops"]' FROM generate_series(1, 25) g;
INSERT INTO agent_interactions (project_id, output) SELECT 1 + g % 25, jsonb_build_object('n', g) FROM generate_series(1, 40) g;
INSERT INTO audit_events SELECT g, md5(g::text) FROM generate_series(1, 68) g;
SQL
    local before oid_before
    before="$(fingerprint)"
    echo "before: $before"

    # Retention must remove old backups and nothing else.
    mkdir -p "$BACKUP_DIR"
    touch -d '40 days ago' "$BACKUP_DIR/backup_20000101_000000.sql.gz" "$BACKUP_DIR/backup_20000101_000000.sql.gz.sha256" \
        "$BACKUP_DIR/backup_20000101_000000.dump" "$BACKUP_DIR/operator-notes.txt"
    cp "$backup" "$BACKUP_DIR/backup-script.sh" && touch -d '40 days ago' "$BACKUP_DIR/backup-script.sh"

    local files sql dump
    files="$(BACKUP_RETENTION_DAYS=30 bash "$backup")"
    sql="$(sed -n 1p <<<"$files")"; dump="$(sed -n 2p <<<"$files")"
    echo "backup wrote: $sql $dump"
    [[ "$(basename "$sql")" =~ ^backup_[0-9]{8}_[0-9]{6}\.sql\.gz$ ]]
    [[ "$(basename "$dump")" =~ ^backup_[0-9]{8}_[0-9]{6}\.dump$ ]]
    (cd "$BACKUP_DIR" && sha256sum -c "$(basename "$sql").sha256" "$(basename "$dump").sha256")
    [[ ! -e "$BACKUP_DIR/backup_20000101_000000.sql.gz" && ! -e "$BACKUP_DIR/backup_20000101_000000.dump" ]]
    [[ ! -e "$BACKUP_DIR/backup_20000101_000000.sql.gz.sha256" ]]
    [[ -e "$BACKUP_DIR/operator-notes.txt" && -e "$BACKUP_DIR/backup-script.sh" ]]
    if ls "$BACKUP_DIR"/.backup_*.partial >/dev/null 2>&1; then echo "partial files left behind"; return 1; fi

    # A failed backup leaves no backup file behind.
    local n_before n_after
    n_before="$(ls "$BACKUP_DIR" | wc -l)"
    if POSTGRES_DB=regassist_no_such_db bash "$backup" >/dev/null; then echo "backup of a missing database succeeded"; return 1; fi
    n_after="$(ls "$BACKUP_DIR" | wc -l)"
    [[ "$n_before" == "$n_after" ]]

    # Validation only.
    bash "$restore" --check-only "$sql"
    bash "$restore" --check-only "$dump"

    # Disaster: the database is gone. Restore each format and compare every row.
    q -d postgres -c "DROP DATABASE \"$SCRATCH_DB\""
    bash "$restore" --yes "$sql" </dev/null
    [[ "$(fingerprint)" == "$before" ]] || { echo "after .sql.gz restore: $(fingerprint)"; return 1; }
    bash "$restore" --yes "$dump" </dev/null
    [[ "$(fingerprint)" == "$before" ]] || { echo "after .dump restore: $(fingerprint)"; return 1; }
    # The append-only triggers came back with the data.
    if q -d "$SCRATCH_DB" -c "DELETE FROM audit_events WHERE seq = 1" 2>/dev/null; then
        echo "audit_events accepted a DELETE after the restore"; return 1
    fi

    # Refusals: each must exit non-zero before touching the database.
    oid_before="$(db_oid)"
    local bad="$WORK/bad"
    mkdir -p "$bad"
    python3 - "$sql" "$bad/corrupt.sql.gz" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
mid = len(data) // 2
for i in range(mid, min(mid + 16, len(data) - 8)):
    data[i] ^= 0xFF
open(sys.argv[2], "wb").write(data)
PY
    cp "$bad/corrupt.sql.gz" "$bad/corrupt-sidecar.sql.gz"
    sed "s/$(basename "$sql")/corrupt-sidecar.sql.gz/" "$sql.sha256" >"$bad/corrupt-sidecar.sql.gz.sha256"
    head -c "$(($(stat -c %s "$sql") / 2))" "$sql" >"$bad/truncated-bytes.sql.gz"
    gzip -dc "$sql" | head -n -30 | gzip -c >"$bad/truncated-lines.sql.gz"
    head -c "$(($(stat -c %s "$dump") * 9 / 10))" "$dump" >"$bad/truncated.dump"
    printf 'not a dump\n' | gzip -c >"$bad/garbage.sql.gz"
    cp "$sql" "$bad/wrong-extension.txt"
    : >"$bad/empty.sql.gz"
    local f rc
    for f in "$bad/corrupt.sql.gz" "$bad/corrupt-sidecar.sql.gz" "$bad/truncated-bytes.sql.gz" \
             "$bad/truncated-lines.sql.gz" "$bad/truncated.dump" "$bad/garbage.sql.gz" \
             "$bad/wrong-extension.txt" "$bad/empty.sql.gz" "$bad/missing.sql.gz"; do
        rc=0
        bash "$restore" --yes "$f" </dev/null >"$WORK/refusal.log" 2>&1 || rc=$?
        if [[ "$rc" != 2 ]] || ! grep -q 'REFUSED' "$WORK/refusal.log"; then
            echo "$(basename "$f"): expected a refusal (exit 2), got exit $rc:"; cat "$WORK/refusal.log"; return 1
        fi
        echo "refused $(basename "$f"): $(grep -o 'REFUSED.*' "$WORK/refusal.log")"
    done
    # A complete-looking file whose SQL fails mid-way: the load fails, the live database stays.
    { echo 'CREATE TABLE restore_probe (x int);'; echo 'SELECT no_such_function();';
      echo '--'; echo '-- PostgreSQL database dump complete'; echo '--'; } | gzip -c >"$bad/failing.sql.gz"
    rc=0
    bash "$restore" --yes "$bad/failing.sql.gz" </dev/null >"$WORK/refusal.log" 2>&1 || rc=$?
    [[ "$rc" != 0 ]] || { echo "a failing load reported success"; cat "$WORK/refusal.log"; return 1; }
    echo "failing load stopped with exit $rc, live database kept"
    [[ "$(db_oid)" == "$oid_before" ]] || { echo "the database was replaced by a refused restore"; return 1; }
    [[ "$(fingerprint)" == "$before" ]] || { echo "the data changed after refused restores"; return 1; }
    [[ -z "$(q -d postgres -Atc "select 1 from pg_database where datname = '${SCRATCH_DB}_restoring'")" ]] \
        || { echo "a scratch database was left behind"; return 1; }
    echo "database untouched: oid $oid_before, $before"
}

check "shell and python scripts parse" check_shell_syntax
check "nginx -t: loopback test config" check_nginx_test_conf
check "nginx -t: production config (TLS, upstream)" check_nginx_prod_conf
check "docker-compose -f docker-compose.prod.yml config -q" check_compose
check "promtool check config monitoring/prometheus.yml" check_prometheus_config
check "promtool check rules monitoring/alerts.yml" check_alert_rules
check "promtool test rules monitoring/alerts.test.yml" check_alert_tests
check "backup + drop + restore + refusals (scratch database)" check_backup_restore

passed=0 failed=0
printf '\n%-58s %s\n' "ops-check" "result"
for i in "${!NAMES[@]}"; do
    printf '%-58s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
    if [[ "${RESULTS[$i]}" == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "ops-check: $passed passed, $failed failed"
[[ "$failed" == 0 ]]
