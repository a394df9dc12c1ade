#!/usr/bin/env bash
# Load benchmark: builds the release binary, runs it embedded (SQLite, no Redis) and then with
# PostgreSQL + Redis, seeds data, and drives each endpoint with wrk (Debian package). Writes
# bench/RESULTS.md. Not a test: numbers are reported, never asserted.
#
#   bench/run.sh                 # full run: 5 s warm-up, 20 s measured, 16 and 64 connections
#   WARMUP=1 DURATION=5 bench/run.sh   # a quick look
#   MODES=embedded bench/run.sh  # one mode only (embedded | postgres)
#   BIN=/path/to/regassist bench/run.sh  # skip the build
#   RESULTS=/tmp/a.md bench/run.sh     # write elsewhere (A/B runs of two builds)
#   ROWS="project-list audit-trail" bench/run.sh  # only these rows (and the ceiling, health-live)
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-5}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-"16 64"}
MODES=${MODES:-"embedded postgres"}
REDIS=${REDIS:-redis://127.0.0.1:6379/14}
OUT=bench/out
RESULTS=${RESULTS:-bench/RESULTS.md}
# shellcheck source=bench/lib.sh
. bench/lib.sh

JWT=$(mint_jwt bench)
# Writes go through another user, so the read rows keep measuring 20 projects and 20 audit rows.
WRITER_JWT=$(mint_jwt bench-writer)
GET_LUA=$(lua_script GET "$JWT")
POST_LUA=$(lua_script POST "$WRITER_JWT" '{"name":"bench project","device_type":"pump","product_code":"FRN"}')
MISS_LUA=$(miss_lua "$JWT")
trap stop_server EXIT

start_with_mirror() { # env assignments...: imports the bundled 510(k) files, then starts the server
  [ ${#MIRROR_FILES[@]} -gt 0 ] && import_files "$OUT/import.log" "$@" -- "${MIRROR_FILES[@]}"
  start_server "$@"
}

bench_mode() {
  # 20 projects; the first has 20 audit rows (its create plus 19 updates).
  PROJECT_ID=$(python3 bench/seed.py "$BASE" "$JWT" 20)
  local search_q="$BASE/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=20"
  local cached_ok suggest_ok
  cached_ok=$(curl -s -o /dev/null -w '%{http_code}' "$search_q" -H "Authorization: Bearer $JWT")
  suggest_ok=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/classification/suggest?q=infusion%20pump" -H "Authorization: Bearer $JWT")
  # The first suggestion waits for the classification index, so this is the memory with it built.
  local warm_rss_kb
  warm_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
  for c in $CONNECTIONS; do
    run_wrk health-live "$c" "$BASE/health/live" "$GET_LUA"
    run_wrk health-database "$c" "$BASE/health/database" "$GET_LUA"
    run_wrk project-get "$c" "$BASE/api/projects/$PROJECT_ID" "$GET_LUA"
    run_wrk project-list "$c" "$BASE/api/projects?limit=20" "$GET_LUA"
    run_wrk audit-trail "$c" "$BASE/api/audit/trail/$PROJECT_ID?limit=20" "$GET_LUA"
    run_wrk project-create "$c" "$BASE/api/projects" "$POST_LUA"
    [ "$cached_ok" = 200 ] && run_wrk search-cached "$c" "$search_q" "$GET_LUA"
    # One connection: the latency of a cached search itself, without queueing behind the others.
    [ "$cached_ok" = 200 ] && [ "$c" = "$(echo $CONNECTIONS | cut -d' ' -f1)" ] && run_wrk search-cached 1 "$search_q" "$GET_LUA"
    [ "$cached_ok" = 200 ] && run_wrk search-mirror-uncached "$c" "$BASE/" "$MISS_LUA"
    [ "$cached_ok" = 200 ] && [ "$c" = "$(echo $CONNECTIONS | cut -d' ' -f1)" ] && run_wrk search-mirror-uncached 1 "$BASE/" "$MISS_LUA"
    [ "$suggest_ok" = 200 ] && run_wrk classification-suggest "$c" "$BASE/api/classification/suggest?q=blood%20glucose%20meter&limit=5" "$GET_LUA"
  done
  echo "$MODE	startup_ms=$STARTUP_MS	idle_rss_mib=$(( IDLE_RSS_KB / 1024 ))	warm_rss_mib=$(( warm_rss_kb / 1024 )) (classification index built)" >>"$OUT/modes.tsv"
}

: >"$OUT/rows.tsv"
: >"$OUT/modes.tsv"
for MODE in $MODES; do
  echo "mode $MODE..." >&2
  case $MODE in
    embedded)
      dir=$(mktemp -d)
      start_with_mirror DATABASE_URL="sqlite://$dir/bench.db" REGASSIST_AUDIT_CHECKPOINT_FILE="$dir/cp.json"
      bench_mode; stop_server; rm -rf "$dir" ;;
    postgres)
      db=regassist_bench
      reset_postgres "$db" "$REDIS"
      start_with_mirror DATABASE_URL="$(pg_url "$db")" REDIS_URL="$REDIS"
      bench_mode; stop_server ;;
  esac
done

{
  echo "# Benchmark results"
  echo
  machine_line
  echo "Load: wrk -t2 on the same cores, warm-up then a measured run per row; inbound rate limit off; one JWT."
  echo "Re-run with \`bench/run.sh\` (see the script's header for shorter runs)."
  echo
  awk -F'\t' '{print "- " $1 ": " $2 ", " $3 ", " $4}' "$OUT/modes.tsv"
  echo
  md_table "mode|endpoint|conns|req/s|p50 ms|p90 ms|p99 ms|non-2xx|socket errors|peak RSS MiB" 1,2,4,5,6,7,8,9,10,11
  echo
  echo "## Against our own ceiling (issue 19)"
  echo
  echo "Each row's req/s over \`/health/live\`'s in the same mode and run (no I/O: the ceiling), so the"
  echo "machine's drift cancels out; goals are ten times the old backend measured side by side."
  echo
  python3 bench/shares.py "$OUT/rows.tsv"
} >"$RESULTS"
cat "$RESULTS"
