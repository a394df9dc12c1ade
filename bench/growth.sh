#!/usr/bin/env bash
# Growth benchmark: how throughput changes with the amount of data, so that a complexity
# regression (a lost index, a count that scans) shows as a curve rather than hiding in one number.
# Builds the release binary (or takes BIN), then per mode:
#   - imports the bundled 510(k) files (~56k rows) into an empty database and starts the server;
#   - tops the benchmark user up to 20, 200 and 2,000 projects, one of them with as many audit rows
#     (its create plus updates, through the HTTP API; bench/seed.py checks the totals), and drives
#     GET /api/projects?limit=20 and GET /api/audit/trail/{id}?limit=20 at each size (PostgreSQL:
#     VACUUM ANALYZE after each seeding and import, as autovacuum would, so plans are repeatable);
#   - drives the mirror search with a different query per request (cache miss) at 16 and 1
#     connections;
#   - stops the server, imports synthetic 510(k) rows (bench/gen_510k.py, written to a temp dir)
#     up to MIRROR_ROWS in all, timing the import, restarts and drives the mirror search again.
# Writes bench/GROWTH.md (raw wrk output and logs in bench/out/growth/). Not a test: numbers are
# reported, never asserted; but seeding and imports that do not reach their exact row counts fail.
#
#   bench/growth.sh                            # embedded (SQLite): 3 s warm-up, 10 s measured
#   WARMUP=1 DURATION=3 bench/growth.sh        # a quick look
#   MODES="embedded postgres" bench/growth.sh  # PostgreSQL too (database regassist_growth, Redis db 13)
#   BIN=/path/to/regassist bench/growth.sh     # skip the build
#   ROWS="20 200 2000" MIRROR_ROWS=500000 CONNECTIONS=16 bench/growth.sh   # the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
MODES=${MODES:-embedded}
ROWS=${ROWS:-"20 200 2000"}
MIRROR_ROWS=${MIRROR_ROWS:-500000}
REDIS=${REDIS:-redis://127.0.0.1:6379/13}
PG_DB=regassist_growth
OUT=bench/out/growth
rm -rf "$OUT"
# shellcheck source=bench/lib.sh
. bench/lib.sh

JWT=$(mint_jwt growth)
GET_LUA=$(lua_script GET "$JWT")
MISS_LUA=$(miss_lua "$JWT")
TMP=$(mktemp -d)
cleanup() { stop_server; rm -rf "$TMP"; }
trap cleanup EXIT

mirror_count() { # rows in fda_510k of the current mode's database
  case $MODE in
    embedded) python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM fda_510k").fetchone()[0])' "$TMP/growth.db" ;;
    postgres) psql "${PG_ADMIN%/*}/$PG_DB" -tAc "SELECT COUNT(*) FROM fda_510k" ;;
  esac
}

# Imports files, times it and checks the log's counts against the table; appends to imports.tsv.
timed_import() { # label, expected inserted rows ("" = any), env assignments..., --, files...
  local label=$1 expected=$2 log="$OUT/$MODE-import-$1.log" before=$MIRROR_TOTAL t0 t1 counts inserted rejected after
  shift 2
  t0=$(date +%s%N)
  import_files "$log" "$@"
  t1=$(date +%s%N)
  # "<file>: 510k <read> rows read, <inserted> inserted, <updated> updated, <rejected> rejected in <s>s"
  counts=$(awk '/ rows read, / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^inserted/) ins += $i; if ($(i+1) ~ /^rejected/) rej += $i } }
                END { print ins + 0, rej + 0 }' "$log")
  read -r inserted rejected <<<"$counts"
  after=$(mirror_count)
  if [ -n "$expected" ] && { [ "$inserted" != "$expected" ] || [ "$rejected" != 0 ]; }; then
    cat "$log" >&2; echo "$label import: expected $expected rows inserted and none rejected, the log says $inserted and $rejected" >&2; exit 1
  fi
  if [ $(( after - before )) != "$inserted" ]; then
    echo "$label import: the log says $inserted rows inserted, fda_510k grew by $(( after - before ))" >&2; exit 1
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$MODE" "$label" "$inserted" "$rejected" "$(( (t1 - t0) / 1000000 ))" "$after" >>"$OUT/imports.tsv"
  MIRROR_TOTAL=$after
}

settle() { # postgres: VACUUM ANALYZE, as autovacuum would do sooner or later, so the plans do not
  # depend on when it last ran; and an empty Redis, whose cached searches outlive the server
  [ "$MODE" = postgres ] || return 0
  psql "${PG_ADMIN%/*}/$PG_DB" -qc "VACUUM ANALYZE"
  redis-cli -u "$REDIS" flushdb >/dev/null
}

bench_search() { # mirror rows: a sanity check that the mirror answers, then the cache-miss runs
  local meta
  meta=$(curl -sf "$BASE/api/predicates/search?q=infusion%20pump&limit=20" -H "Authorization: Bearer $JWT" |
    python3 -c 'import json, sys; m = json.load(sys.stdin)["meta"]; print(m["source"], m["source_total"])')
  if [ "${meta% *}" != mirror ] || [ "${meta#* }" -le 0 ]; then
    echo "mirror search not answered by the mirror: $meta" >&2; exit 1
  fi
  echo "$MODE	$1	${meta#* }" >>"$OUT/matches.tsv"
  for c in $CONNECTIONS 1; do
    run_wrk search-mirror-uncached "$c" "$BASE/" "$MISS_LUA" "$1"
  done
}

bench_mode() { # env assignments of the mode's database
  local project="" n synth pmn=()
  MIRROR_TOTAL=0
  timed_import real "" "$@" -- "${MIRROR_FILES[@]}"
  settle
  start_server "$@"
  echo "$MODE	startup_ms=$STARTUP_MS at $MIRROR_TOTAL 510(k) rows" >>"$OUT/modes.tsv"
  for n in $ROWS; do
    project=$(python3 bench/seed.py "$BASE" "$JWT" "$n" ${project:+"$project"})
    settle
    for c in $CONNECTIONS; do
      run_wrk project-list "$c" "$BASE/api/projects?limit=20" "$GET_LUA" "$n"
      run_wrk audit-trail "$c" "$BASE/api/audit/trail/$project?limit=20" "$GET_LUA" "$n"
    done
  done
  bench_search "$MIRROR_TOTAL"
  stop_server

  n=$(( MIRROR_ROWS - MIRROR_TOTAL ))
  [ "$n" -gt 0 ] || { echo "MIRROR_ROWS=$MIRROR_ROWS: the real files alone have $MIRROR_TOTAL rows" >&2; exit 1; }
  synth="$TMP/synth-$n"
  if [ ! -d "$synth" ]; then
    echo "generating $n synthetic 510(k) rows..." >&2
    for f in "${MIRROR_FILES[@]}"; do [[ $f == *.txt ]] && pmn+=("$f"); done
    python3 bench/gen_510k.py --rows "$n" --out "$synth" "${pmn[@]}" >/dev/null
  fi
  echo "importing $n synthetic rows ($MODE)..." >&2
  timed_import synthetic "$n" "$@" -- "$synth"/*.txt
  settle
  start_server "$@"
  echo "$MODE	startup_ms=$STARTUP_MS at $MIRROR_TOTAL 510(k) rows" >>"$OUT/modes.tsv"
  bench_search "$MIRROR_TOTAL"
  stop_server
}

: >"$OUT/rows.tsv"
: >"$OUT/modes.tsv"
: >"$OUT/imports.tsv"
: >"$OUT/matches.tsv"
for MODE in $MODES; do
  echo "mode $MODE..." >&2
  case $MODE in
    embedded)
      rm -f "$TMP"/growth.db*
      bench_mode DATABASE_URL="sqlite://$TMP/growth.db" REGASSIST_AUDIT_CHECKPOINT_FILE="$TMP/cp.json" OPENFDA_MODE=mirror ;;
    postgres)
      reset_postgres "$PG_DB" "$REDIS"
      bench_mode DATABASE_URL="$(pg_url "$PG_DB")" REDIS_URL="$REDIS" OPENFDA_MODE=mirror ;;
    *) echo "unknown mode $MODE (embedded | postgres)" >&2; exit 1 ;;
  esac
done

{
  echo "# Growth benchmark"
  echo
  machine_line
  echo "Load: wrk -t2 (-t1 at 1 connection) on the same cores, ${WARMUP} s warm-up then ${DURATION} s measured per row;"
  echo "inbound rate limit off; one JWT. Rows: the user's projects (list), the project's audit rows (trail),"
  echo "the 510(k) rows in the mirror (search: a different query per request, so every one misses the cache)."
  case " $MODES " in *" postgres "*) echo "PostgreSQL: VACUUM ANALYZE and an empty Redis after each seeding and import." ;; esac
  echo "Re-run with \`bench/growth.sh\` (see the script's header for shorter runs and PostgreSQL)."
  echo
  awk -F'\t' '{print "- " $1 ": " $2}' "$OUT/modes.tsv"
  awk -F'\t' '{printf "- %s: imported %s %s 510(k) rows (%s rejected) in %.1f s, %d rows/s; %s rows in all\n",
                 $1, $3, $2, $4, $5 / 1000, $5 ? $3 * 1000 / $5 : 0, $6}' "$OUT/imports.tsv"
  awk -F'\t' '{print "- " $1 ": \"infusion pump\" matches " $3 " of " $2 " mirror rows"}' "$OUT/matches.tsv"
  echo
  md_table "mode|endpoint|rows|conns|req/s|p50 ms|p90 ms|p99 ms|non-2xx" 1,2,3,4,5,6,7,8,9
  awk -F'\t' '$10 > 0 {print "\nwrk socket errors (timeouts included): " $1 " " $2 " at " $3 " rows, " $4 " conns: " $10}' "$OUT/rows.tsv"
} >bench/GROWTH.md
cat bench/GROWTH.md
