#!/usr/bin/env bash
# The write tail over a run long enough to span several audit checkpoints (one every 10 s):
# POST /api/projects for DURATION seconds (default 35), embedded and/or PostgreSQL + Redis.
# The server does not load the bundled 510(k) files at start (that would compete with the writes
# during the first seconds). Prints rows.tsv lines (req/s, p50, p90, p99, mean in the last
# column). Not a test.
#
#   BIN=/path/to/regassist MODES=embedded bench/post_tail.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-35}
CONNECTIONS=${CONNECTIONS:-"16 64"}
MODES=${MODES:-"embedded postgres"}
REDIS=${REDIS:-redis://127.0.0.1:6379/14}
OUT=bench/out/post_tail
# shellcheck source=bench/lib.sh
. bench/lib.sh
POST_LUA=$(lua_script POST "$(mint_jwt bench-writer)" '{"name":"bench project","device_type":"pump","product_code":"FRN"}')
trap stop_server EXIT
: >"$OUT/rows.tsv"
for MODE in $MODES; do
  case $MODE in
    embedded)
      dir=$(mktemp -d)
      start_server REGASSIST_SEED_510K=false DATABASE_URL="sqlite://$dir/bench.db" \
        REGASSIST_AUDIT_CHECKPOINT_FILE="$dir/cp.json" ;;
    postgres)
      reset_postgres regassist_bench "$REDIS"
      start_server REGASSIST_SEED_510K=false DATABASE_URL="$(pg_url regassist_bench)" REDIS_URL="$REDIS" ;;
  esac
  for c in $CONNECTIONS; do run_wrk project-create "$c" "$BASE/api/projects" "$POST_LUA"; done
  stop_server
  [ "$MODE" = embedded ] && rm -rf "$dir"
done
cat "$OUT/rows.tsv"
