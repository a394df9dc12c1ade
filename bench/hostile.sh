#!/usr/bin/env bash
# Hostile-input benchmark (issue 15): sends the largest body each write route allows (and a few
# over the limits) to the release binary and reports the server's CPU time per request, read
# from /proc/<pid>/stat before and after a batch; then the p99 of ordinary reads (wrk) while 8
# connections send those hostile requests without pause. Writes bench/HOSTILE.md. Numbers are
# reported, never asserted. Targets (bench/TARGETS.md): < 50 ms CPU per request at the limits,
# ordinary p99 < 50 ms meanwhile.
#
#   BIN=/work/target-15b/release/regassist bench/hostile.sh
#   MODES="embedded postgres" N=20 DURATION=20 bench/hostile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-15}
MODES=${MODES:-"embedded postgres"}
REDIS=${REDIS:-redis://127.0.0.1:6379/13}
OUT=bench/out-hostile
if [ -z "${BIN:-}" ]; then
  echo "building release binary..." >&2
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target} flock /work/cargo.lock cargo build --release --locked -q
  BIN="${CARGO_TARGET_DIR:-/work/target}/release/regassist"
fi
# shellcheck source=bench/lib.sh
. bench/lib.sh
trap stop_server EXIT
JWT=$(mint_jwt hostile)
READER_JWT=$(mint_jwt reader)

# The largest allowed bodies, and some past the limits: one JSON file per case, written by
# Python so every text is made of distinct words (the worst case for tokenising and ranking).
python3 - "$OUT" <<'PY'
import json, random, sys
out = sys.argv[1]
random.seed(15)
def words(chars):
    # Distinct pseudo-words until `chars` characters: every one a new ranking term.
    parts, n, i = [], 0, 0
    while True:
        w = "w%x%s" % (i, "".join(random.choice("aeioubcdfgklmnprstv") for _ in range(5)))
        if n + len(w) + 1 > chars:
            break
        parts.append(w); n += len(w) + 1; i += 1
    return " ".join(parts)
project = {"name": words(255), "description": words(1000), "device_type": words(255),
           "intended_use": words(2000), "product_code": "FRN", "priority": "high",
           "tags": [words(50) for _ in range(10)]}
cases = {
    "project-create-max": ("POST", "/api/projects", project),
    "project-create-60k-tags": ("POST", "/api/projects", {"name": "x", "tags": ["t%d" % i for i in range(60000)]}),
    "project-update-max": ("PATCH", "/api/projects/{id}", {k: v for k, v in project.items()}),
    "project-search-max": ("POST", "/api/projects/{id}/predicates/search", {"q": "infusion pump " + words(1980), "limit": 100}),
    "agent-search-max": ("POST", "/api/agent/execute", {"task_type": "predicate_search",
        "device_description": "infusion pump " + words(4980), "intended_use": words(2000),
        "device_type": words(255), "parameters": {"q": "infusion pump " + words(1980), "limit": 100, "session_id": words(100)}}),
    "agent-classify-max": ("POST", "/api/agent/execute", {"task_type": "device_classification",
        "device_description": "infusion pump " + words(4980), "intended_use": words(2000), "device_type": words(255)}),
    "agent-q-900k": ("POST", "/api/agent/execute", {"task_type": "predicate_search",
        "device_description": "pump", "parameters": {"q": words(900_000)}}),
    "api-key-max": ("POST", "/api/users/me/api-keys", {"name": words(100)}),
    "audit-export-project": ("POST", "/api/audit/export", {"project_id": "{id}", "format": "csv"}),
}
for name, (method, path, body) in cases.items():
    with open("%s/case-%s.json" % (out, name), "w") as f:
        json.dump({"method": method, "path": path, "body": body}, f)
PY

measure_cases() { # prints one TSV row per case: mode, case, status, bytes, cpu ms/request
  python3 - "$BASE" "$JWT" "$PID" "$N" "$OUT" "$PROJECT_ID" "$MODE" <<'PY'
import glob, http.client, json, os, sys, urllib.parse
base, jwt, pid, n, out, project_id, mode = sys.argv[1:8]
n = int(n)
tick = os.sysconf("SC_CLK_TCK")
def cpu_ms():
    fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / tick  # utime + stime
url = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
headers = {"Authorization": "Bearer " + jwt, "Content-Type": "application/json"}
for path in sorted(glob.glob(out + "/case-*.json")):
    case = json.load(open(path))
    name = os.path.basename(path)[5:-5]
    body = json.dumps(case["body"]).replace('"{id}"', project_id).encode()
    target = case["path"].replace("{id}", project_id)
    statuses = set()
    before = cpu_ms()
    for _ in range(n):
        conn.request(case["method"], target, body=body, headers=headers)
        r = conn.getresponse(); r.read(); statuses.add(r.status)
        if r.getheader("connection", "").lower() == "close":
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    per = (cpu_ms() - before) / n
    print("\t".join([mode, name, ",".join(map(str, sorted(statuses))), str(len(body)), "%.1f" % per]))
PY
}

hostile_lua() { # a wrk script cycling through the allowed hostile cases
  python3 - "$OUT" "$JWT" "$PROJECT_ID" <<'PY' >"$OUT/hostile.lua"
import glob, json, sys
out, jwt, project_id = sys.argv[1:4]
print("local reqs = {}")
for path in sorted(glob.glob(out + "/case-*.json")):
    if "60k" in path or "900k" in path:
        continue  # refused at parse: cheap; the allowed maxima are the load
    case = json.load(open(path))
    body = json.dumps(case["body"]).replace('"{id}"', project_id)
    target = case["path"].replace("{id}", project_id)
    print("reqs[#reqs+1] = wrk.format(%s, %s, {[\"Authorization\"]=%s, [\"Content-Type\"]=\"application/json\"}, %s)"
          % tuple(json.dumps(x) for x in (case["method"], target, "Bearer " + jwt, body)))
print("local i = 0")
print("request = function() i = i + 1; return reqs[(i % #reqs) + 1] end")
PY
  echo "$OUT/hostile.lua"
}

bench_mode() {
  PROJECT_ID=$(curl -sf -X POST "$BASE/api/projects" -H "Authorization: Bearer $JWT" \
    -H 'Content-Type: application/json' \
    -d '{"name":"Hostile","device_type":"infusion pump","product_code":"FRN"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  READ_ID=$(curl -sf -X POST "$BASE/api/projects" -H "Authorization: Bearer $READER_JWT" \
    -H 'Content-Type: application/json' -d '{"name":"Reader"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # Warm the classification index and the caches before counting CPU.
  curl -s -o /dev/null "$BASE/api/classification/suggest?q=infusion%20pump" -H "Authorization: Bearer $JWT"
  measure_cases >>"$OUT/cases.tsv"
  local read_lua hostile
  read_lua=$(lua_script GET "$READER_JWT")
  hostile=$(hostile_lua)
  # Ordinary reads alone, then beside 8 connections of hostile requests.
  run_wrk read-alone 8 "$BASE/api/projects/$READ_ID" "$read_lua"
  wrk -t1 -c8 -d"$((WARMUP + DURATION + 2))s" -s "$hostile" "$BASE/" >"$OUT/$MODE-hostile-load.txt" 2>&1 &
  local hostile_pid=$!
  local c0; c0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  run_wrk read-beside-8-hostile 8 "$BASE/api/projects/$READ_ID" "$read_lua"
  wait "$hostile_pid" || true
  local c1; c1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  local done_hostile
  done_hostile=$(awk '/requests in/ {print $1}' "$OUT/$MODE-hostile-load.txt")
  echo "$MODE	hostile requests served during the run: ${done_hostile:-?}; server CPU $(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) ms" >>"$OUT/modes.tsv"
}

mkdir -p "$OUT"
: >"$OUT/rows.tsv"; : >"$OUT/cases.tsv"; : >"$OUT/modes.tsv"
for MODE in $MODES; do
  echo "mode $MODE..." >&2
  case $MODE in
    embedded)
      dir=$(mktemp -d)
      import_files "$OUT/import.log" DATABASE_URL="sqlite://$dir/bench.db" -- "${MIRROR_FILES[@]}"
      start_server DATABASE_URL="sqlite://$dir/bench.db" REGASSIST_AUDIT_CHECKPOINT_FILE="$dir/cp.json"
      bench_mode; stop_server; rm -rf "$dir" ;;
    postgres)
      db=regassist_hostile
      reset_postgres "$db" "$REDIS"
      import_files "$OUT/import.log" DATABASE_URL="$(pg_url "$db")" -- "${MIRROR_FILES[@]}"
      start_server DATABASE_URL="$(pg_url "$db")" REDIS_URL="$REDIS"
      bench_mode; stop_server ;;
  esac
done

{
  echo "# Hostile input: CPU per request at the limits, ordinary p99 beside 8 hostile connections"
  echo
  machine_line
  echo "Binary: release build of $(git rev-parse --short HEAD). Command: \`bench/hostile.sh\` (N=$N requests per case, wrk ${DURATION} s)."
  echo
  echo "## Server CPU per request (utime + stime of the server process over N sequential requests)"
  echo
  echo "| mode | case | status | body bytes | CPU ms / request |"
  echo "|---|---|---|---|---|"
  awk -F'\t' '{print "| " $1 " | " $2 " | " $3 " | " $4 " | " $5 " |"}' "$OUT/cases.tsv"
  echo
  echo "## Ordinary reads (\`GET /api/projects/{id}\`, 8 connections), alone and beside 8 hostile connections"
  echo
  md_table "mode|run|conns|req/s|p50 ms|p90 ms|p99 ms|non-2xx|socket errors" "1,2,4,5,6,7,8,9,10"
  echo
  sed 's/^/- /' "$OUT/modes.tsv"
} >bench/HOSTILE.md
cat bench/HOSTILE.md
