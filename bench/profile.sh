#!/usr/bin/env bash
# Profiles one benchmark row: builds the `profiling` profile (release with symbols), starts it
# (embedded, or PostgreSQL + Redis), seeds like run.sh, drives the row with wrk and records the
# whole machine with perf (Debian linux-perf; needs root or perf_event_paranoid <= 0). Writes
# bench/profiles/<mode>-<row>-<conns>.txt: how the cores were shared between processes, then the
# server's hottest functions. Not a test.
#
#   bench/profile.sh postgres project-create
#   CONNECTIONS=16 DURATION=5 bench/profile.sh embedded search-cached
#   BIN=/path/to/regassist bench/profile.sh postgres project-get   # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?mode: embedded | postgres}
ROW=${2:?row: health-live | health-database | project-get | project-list | audit-trail | project-create | search-cached | classification-suggest}
WARMUP=${WARMUP:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
REDIS=${REDIS:-redis://127.0.0.1:6379/14}
OUT=bench/out
command -v perf >/dev/null || { echo "perf is required: apt-get install -y linux-perf" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  echo "building the profiling binary..." >&2
  cargo build --profile profiling --locked -q
  BIN="${CARGO_TARGET_DIR:-/work/target}/profiling/regassist"
fi
# shellcheck source=bench/lib.sh
. bench/lib.sh
trap stop_server EXIT

JWT=$(mint_jwt bench)
case $MODE in
  embedded)
    dir=$(mktemp -d)
    trap 'stop_server; rm -rf "$dir"' EXIT
    envs=(DATABASE_URL="sqlite://$dir/bench.db" REGASSIST_AUDIT_CHECKPOINT_FILE="$dir/cp.json") ;;
  postgres)
    reset_postgres regassist_profile "$REDIS"
    envs=(DATABASE_URL="$(pg_url regassist_profile)" REDIS_URL="$REDIS") ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
[ ${#MIRROR_FILES[@]} -gt 0 ] && import_files "$OUT/import.log" "${envs[@]}" -- "${MIRROR_FILES[@]}"
start_server "${envs[@]}"
PROJECT_ID=$(python3 bench/seed.py "$BASE" "$JWT" 20)

script=$(lua_script GET "$JWT")
case $ROW in
  health-live) url="$BASE/health/live" ;;
  health-database) url="$BASE/health/database" ;;
  project-get) url="$BASE/api/projects/$PROJECT_ID" ;;
  project-list) url="$BASE/api/projects?limit=20" ;;
  audit-trail) url="$BASE/api/audit/trail/$PROJECT_ID?limit=20" ;;
  project-create)
    url="$BASE/api/projects"
    script=$(lua_script POST "$(mint_jwt bench-writer)" '{"name":"bench project","device_type":"pump","product_code":"FRN"}') ;;
  search-cached) url="$BASE/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=20" ;;
  classification-suggest) url="$BASE/api/classification/suggest?q=blood%20glucose%20meter&limit=5" ;;
  *) echo "unknown row $ROW" >&2; exit 2 ;;
esac
curl -sf -o /dev/null "$url" -H "Authorization: Bearer $JWT" || [ "$ROW" = project-create ]

# The reports below are cut with head; perf's broken pipe is expected there.
set +o pipefail
tidy() { sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | cut -c1-220; }
mkdir -p bench/profiles
report="bench/profiles/$MODE-$ROW-$CONNECTIONS.txt"
data="$OUT/perf-$MODE-$ROW.data"
wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$script" "$url" >/dev/null 2>&1 || true
wrk -t2 -c"$CONNECTIONS" -d"$((DURATION + 2))s" --latency -s "$script" "$url" >"$OUT/profile-wrk.txt" 2>&1 &
wrk_pid=$!
sleep 1
perf record -q -a -g -F 499 -o "$data" -- sleep "$DURATION" 2>/dev/null
wait "$wrk_pid"
{
  echo "# $MODE $ROW, $CONNECTIONS connections: $(grep -E 'Requests/sec' "$OUT/profile-wrk.txt")"
  echo "$(machine_line) perf record -a -g -F 499 for ${DURATION}s during wrk."
  echo
  echo "## CPU by process (share of all samples on both cores)"
  perf report -i "$data" --no-children --sort comm --stdio -g none 2>/dev/null | { grep -E "^ +[0-9]" || true; } | head -12
  echo
  echo "## Server: hottest functions (self time, share of all samples)"
  perf report -i "$data" --no-children --pid "$PID" --sort dso,symbol --stdio -g none 2>/dev/null \
    | { grep -E '^ +[0-9]' || true; } | tidy | head -40
  echo
  echo "## Server: where time is spent including callees (top entries)"
  perf report -i "$data" --children --pid "$PID" --sort symbol --stdio -g none 2>/dev/null \
    | { grep -E '^ +[0-9]' || true; } | grep -v '\[k\]' | tidy | head -40
} >"$report"
rm -f "$data"
cat "$report"
