#!/usr/bin/env bash
# Load benchmark: builds the release binary, runs it embedded (SQLite, no Redis) and then with
# PostgreSQL + Redis, seeds data, and drives each endpoint with wrk (Debian package). Writes
# bench/RESULTS.md. Not a test: numbers are reported, never asserted.
#
#   bench/run.sh                 # full run: 5 s warm-up, 20 s measured, 16 and 64 connections
#   WARMUP=1 DURATION=5 bench/run.sh   # a quick look
#   MODES=embedded bench/run.sh  # one mode only (embedded | postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP=${WARMUP:-5}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-"16 64"}
MODES=${MODES:-"embedded postgres"}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${REDIS:-redis://127.0.0.1:6379/14}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }

echo "building release binary..." >&2
cargo build --release --locked -q
BIN="$CARGO_TARGET_DIR/release/regassist"
OUT=bench/out
mkdir -p "$OUT"
SECRET="bench-secret-bench-secret-bench-secret-0123"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
mint_jwt() { # subject
  local header payload sig
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '{"sub":"%s","email":"%s@example.com","name":"Bench","exp":%d}' "$1" "$1" $(( $(date +%s) + 86400 )) | b64url)
  sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
  printf '%s.%s.%s' "$header" "$payload" "$sig"
}
JWT=$(mint_jwt bench)
# Writes go through another user, so the read rows keep measuring 20 projects and 20 audit rows.
WRITER_JWT=$(mint_jwt bench-writer)

lua_script() { # method, token, body -> path of a wrk script setting the JWT (and a body)
  local f="$OUT/$1.lua"
  {
    echo "wrk.method = \"$1\""
    echo "wrk.headers[\"Authorization\"] = \"Bearer $2\""
    echo "wrk.headers[\"Content-Type\"] = \"application/json\""
    [ -n "${3:-}" ] && echo "wrk.body = '$3'"
  } >"$f"
  echo "$f"
}
GET_LUA=$(lua_script GET "$JWT")
POST_LUA=$(lua_script POST "$WRITER_JWT" '{"name":"bench project","device_type":"pump","product_code":"FRN"}')
# A different query on every request, so each one misses the cache and searches the mirror.
MISS_LUA="$OUT/miss.lua"
cat >"$MISS_LUA" <<LUA
local words = {"catheter","pump","infusion","glucose","monitor","syringe","needle","stent","laser","implant",
  "electrode","balloon","wound","dressing","catheter","suture","orthopedic","screw","dental","lens","ultrasound",
  "oxygen","mask","glove","thermometer","bandage","valve","tube","sensor","ventilator"}
local n = 0
request = function()
  n = n + 1
  local q = words[math.random(#words)] .. "%20" .. words[math.random(#words)] .. "%20v" .. n .. "x" .. math.random(1000000)
  return wrk.format("GET", "/api/predicates/search?limit=20&q=" .. q, {["Authorization"] = "Bearer $JWT"})
end
LUA
MIRROR_FILES=()
for f in ../shared/data/openfda/releasable_510k/pmn7680_2026-08.txt ../shared/data/openfda/releasable_510k/pmn8185_2026-08.txt \
         ../shared/data/openfda/releasable_510k/pmn8690_2026-08.txt ../shared/data/openfda/api_csv/510k_2015-2026_sample.csv; do
  [ -f "$f" ] && MIRROR_FILES+=("$f")
done

PID=""
stop_server() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop_server EXIT

start_server() { # env assignments...
  local t0 t1
  if [ ${#MIRROR_FILES[@]} -gt 0 ]; then
    env "$@" "$BIN" import "${MIRROR_FILES[@]}" >"$OUT/import.log" 2>&1
  fi
  t0=$(date +%s%N)
  env "$@" PORT="$PORT" REGASSIST_HOST=127.0.0.1 JWT_SECRET="$SECRET" API_RATE_PER_MINUTE=0 \
    RUST_LOG=warn "$BIN" serve >"$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 400); do curl -sf "$BASE/health/ready" >/dev/null && break; sleep 0.025; done
  t1=$(date +%s%N)
  STARTUP_MS=$(( (t1 - t0) / 1000000 ))
  IDLE_RSS_KB=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
}

seed() {
  curl -sf "$BASE/api/users/me" -H "Authorization: Bearer $JWT" >/dev/null
  PROJECT_ID=""
  for i in $(seq 1 20); do
    id=$(curl -sf -X POST "$BASE/api/projects" -H "Authorization: Bearer $JWT" -H 'Content-Type: application/json' \
      -d "{\"name\":\"seed $i\",\"description\":\"infusion pump for hospital use\",\"intended_use\":\"deliver fluids\",\"device_type\":\"pump\"}" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    PROJECT_ID=${PROJECT_ID:-$id}
  done
  # 20 audit rows for the first project: its create plus 19 updates.
  for i in $(seq 1 19); do
    curl -sf -X PATCH "$BASE/api/projects/$PROJECT_ID" -H "Authorization: Bearer $JWT" -H 'Content-Type: application/json' \
      -d "{\"description\":\"revision $i\"}" >/dev/null
  done
}

run_wrk() { # label, connections, url, script
  local label=$1 conns=$2 url=$3 script=$4
  local threads=2
  [ "$conns" -lt 2 ] && threads=1
  wrk -t$threads -c"$conns" -d"${WARMUP}s" -s "$script" "$url" >/dev/null 2>&1 || true
  local rss_before out
  out=$(wrk -t$threads -c"$conns" -d"${DURATION}s" --latency -s "$script" "$url" 2>&1)
  echo "$out" >"$OUT/$MODE-$label-$conns.txt"
  python3 - "$MODE" "$label" "$conns" "$PID" <<PY >>"$OUT/rows.tsv"
import re, sys
mode, label, conns, pid = sys.argv[1:5]
text = open("$OUT/$MODE-$label-$conns.txt").read()
def lat(p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, text)
    if not m: return ""
    v, u = float(m.group(1)), m.group(2)
    return "%.2f" % (v / 1000 if u == "us" else v * 1000 if u == "s" else v)
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = sum(int(x) for x in sock.groups()) if sock else 0
hwm = [l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith("VmHWM")][0]
print("\t".join([mode, label, conns, rps.group(1) if rps else "", lat(50), lat(90), lat(99),
                 non2xx.group(1) if non2xx else "0", str(errors), "%.1f" % (int(hwm) / 1024)]))
PY
}

bench_mode() {
  seed
  local search_q="$BASE/api/predicates/search?q=infusion%20pump&product_code=FRN&limit=20"
  local cached_ok suggest_ok mirror_ok
  cached_ok=$(curl -s -o /dev/null -w '%{http_code}' "$search_q" -H "Authorization: Bearer $JWT")
  suggest_ok=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/classification/suggest?q=infusion%20pump" -H "Authorization: Bearer $JWT")
  for c in $CONNECTIONS; do
    run_wrk health-live "$c" "$BASE/health/live" "$GET_LUA"
    run_wrk health-database "$c" "$BASE/health/database" "$GET_LUA"
    run_wrk project-get "$c" "$BASE/api/projects/$PROJECT_ID" "$GET_LUA"
    run_wrk project-list "$c" "$BASE/api/projects?limit=20" "$GET_LUA"
    run_wrk audit-trail "$c" "$BASE/api/audit/trail/$PROJECT_ID?limit=20" "$GET_LUA"
    run_wrk project-create "$c" "$BASE/api/projects" "$POST_LUA"
    [ "$cached_ok" = 200 ] && run_wrk search-cached "$c" "$search_q" "$GET_LUA"
    [ "$cached_ok" = 200 ] && run_wrk search-mirror-uncached "$c" "$BASE/" "$MISS_LUA"
    [ "$cached_ok" = 200 ] && [ "$c" = "$(echo $CONNECTIONS | cut -d' ' -f1)" ] && run_wrk search-mirror-uncached 1 "$BASE/" "$MISS_LUA"
    [ "$suggest_ok" = 200 ] && run_wrk classification-suggest "$c" "$BASE/api/classification/suggest?q=blood%20glucose%20meter&limit=5" "$GET_LUA"
  done
  echo "$MODE	startup_ms=$STARTUP_MS	idle_rss_mib=$(( IDLE_RSS_KB / 1024 ))" >>"$OUT/modes.tsv"
}

: >"$OUT/rows.tsv"
: >"$OUT/modes.tsv"
for MODE in $MODES; do
  echo "mode $MODE..." >&2
  case $MODE in
    embedded)
      dir=$(mktemp -d)
      start_server DATABASE_URL="sqlite://$dir/bench.db" REGASSIST_AUDIT_CHECKPOINT_FILE="$dir/cp.json"
      bench_mode; stop_server; rm -rf "$dir" ;;
    postgres)
      db=regassist_bench
      psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -qc "CREATE DATABASE $db" >/dev/null
      redis-cli -u "$REDIS" flushdb >/dev/null
      start_server DATABASE_URL="${PG_ADMIN%/*}/$db" REDIS_URL="$REDIS" REGASSIST_DB_MAX_CONNECTIONS=32
      bench_mode; stop_server ;;
  esac
done

python3 - "$OUT" <<'PY' >bench/RESULTS.md
import sys, subprocess, datetime, platform
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/rows.tsv") if l.strip()]
modes = [l.rstrip("\n").split("\t") for l in open(f"{out}/modes.tsv") if l.strip()]
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
mem = subprocess.run(["sh", "-c", "free -g | awk '/Mem/ {print $2}'"], capture_output=True, text=True).stdout.strip()
print("# Benchmark results\n")
print(f"Date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC. Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, {mem} GiB, {platform.system()} {platform.release()}.")
print("Load: wrk -t2 on the same cores, warm-up then a measured run per row; inbound rate limit off; one JWT.")
print("Re-run with `bench/run.sh` (see the script's header for shorter runs).\n")
for m in modes:
    print(f"- {m[0]}: {m[1]}, {m[2]}")
print("\n| mode | endpoint | conns | req/s | p50 ms | p90 ms | p99 ms | non-2xx | socket errors | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
cat bench/RESULTS.md
