# shellcheck shell=bash
# Helpers shared by bench/run.sh and bench/growth.sh; sourced, not run. The caller sets OUT (its
# output folder) and MODE (the mode being measured, for run_wrk) and runs from the repo root.
#
# BIN=/path/to/regassist skips the build; otherwise the release binary is built here.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  echo "building release binary..." >&2
  cargo build --release --locked -q
  BIN="$CARGO_TARGET_DIR/release/regassist"
fi
[ -x "$BIN" ] || { echo "BIN=$BIN is not an executable" >&2; exit 1; }
mkdir -p "$OUT"
SECRET="bench-secret-bench-secret-bench-secret-0123"
# PostgreSQL mode refuses to start without a checkpoint key (embedded mode makes its own file).
CHECKPOINT_KEY="bench-checkpoint-key-bench-checkpoint-key-0123"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
# The database is on this host, as in the compose deployment (where PostgreSQL offers no TLS);
# Debian's server offers TLS, which sqlx takes by default and which costs CPU on both sides
# (see bench/TARGETS.md). PG_OPTS= measures with it.
PG_OPTS=${PG_OPTS-?sslmode=disable}
pg_url() { echo "${PG_ADMIN%/*}/$1$PG_OPTS"; }

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
mint_jwt() { # subject
  local header payload sig
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '{"sub":"%s","email":"%s@example.com","name":"Bench","exp":%d}' "$1" "$1" $(( $(date +%s) + 86400 )) | b64url)
  sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
  printf '%s.%s.%s' "$header" "$payload" "$sig"
}

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

miss_lua() { # token -> path of a wrk script asking a different query on every request, so each
  # one misses the cache and searches the mirror
  local f="$OUT/miss.lua"
  cat >"$f" <<LUA
local words = {"catheter","pump","infusion","glucose","monitor","syringe","needle","stent","laser","implant",
  "electrode","balloon","wound","dressing","catheter","suture","orthopedic","screw","dental","lens","ultrasound",
  "oxygen","mask","glove","thermometer","bandage","valve","tube","sensor","ventilator"}
local n = 0
request = function()
  n = n + 1
  local q = words[math.random(#words)] .. "%20" .. words[math.random(#words)] .. "%20v" .. n .. "x" .. math.random(1000000)
  return wrk.format("GET", "/api/predicates/search?limit=20&q=" .. q, {["Authorization"] = "Bearer $1"})
end
LUA
  echo "$f"
}

# The bundled real 510(k) files (~56k rows), the same ones the service seeds its mirror from.
MIRROR_FILES=(data-fda/510k/pmn7680_2026-08.txt data-fda/510k/pmn8185_2026-08.txt
              data-fda/510k/pmn8690_2026-08.txt data-fda/510k/510k_2015-2026_sample.csv)
for f in "${MIRROR_FILES[@]}"; do
  [ -f "$f" ] || { echo "missing $f (run from the repository root)" >&2; exit 1; }
done

import_files() { # log file, env assignments..., --, files...
  local log=$1 envs=()
  shift
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$BIN" import "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "import failed" >&2; exit 1; }
}

reset_postgres() { # database, redis url: an empty database and Redis db
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1" >/dev/null
  redis-cli -u "$2" flushdb >/dev/null
}

PID=""
stop_server() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi; PID=""; }

start_server() { # env assignments...; sets PID, STARTUP_MS, IDLE_RSS_KB
  local t0 t1
  t0=$(date +%s%N)
  env "$@" PORT="$PORT" REGASSIST_HOST=127.0.0.1 JWT_SECRET="$SECRET" AUDIT_CHECKPOINT_KEY="$CHECKPOINT_KEY" API_RATE_PER_MINUTE=0 \
    RUST_LOG=warn "$BIN" serve >"$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 400); do curl -sf "$BASE/health/ready" >/dev/null && break; sleep 0.025; done
  curl -sf "$BASE/health/ready" >/dev/null || { cat "$OUT/server.log" >&2; echo "the server did not start" >&2; exit 1; }
  t1=$(date +%s%N)
  # shellcheck disable=SC2034 # read by the scripts that source this file
  STARTUP_MS=$(( (t1 - t0) / 1000000 ))
  # shellcheck disable=SC2034
  IDLE_RSS_KB=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
}

# Appends to $OUT/rows.tsv: mode, label, rows, conns, req/s, p50, p90, p99 (ms), non-2xx, socket
# errors, peak RSS MiB, mean latency (ms). rows is empty where the caller does not vary the data.
run_wrk() { # label, connections, url, script[, rows]
  local label=$1 conns=$2 url=$3 script=$4 rows=${5:-}
  local threads=2 out file
  # ROWS="project-list audit-trail" runs only those rows (health-live always: the shares need it).
  if [ -n "${ROWS:-}" ] && [ "$label" != health-live ] && [[ " $ROWS " != *" $label "* ]]; then return 0; fi
  [ "$conns" -lt 2 ] && threads=1
  wrk -t$threads -c"$conns" -d"${WARMUP}s" -s "$script" "$url" >/dev/null 2>&1 || true
  out=$(wrk -t$threads -c"$conns" -d"${DURATION}s" --latency -s "$script" "$url" 2>&1)
  file="$OUT/$MODE-$label${rows:+-$rows}-$conns.txt"
  echo "$out" >"$file"
  python3 - "$file" "$MODE" "$label" "$rows" "$conns" "$PID" <<'PY' >>"$OUT/rows.tsv"
import re, sys
file, mode, label, rows, conns, pid = sys.argv[1:7]
text = open(file).read()
def lat(p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, text)
    if not m: return ""
    v, u = float(m.group(1)), m.group(2)
    return "%.2f" % (v / 1000 if u == "us" else v * 1000 if u == "s" else v)
def mean():
    m = re.search(r"Latency\s+([\d.]+)(us|ms|s)", text)
    if not m: return ""
    v, u = float(m.group(1)), m.group(2)
    return "%.2f" % (v / 1000 if u == "us" else v * 1000 if u == "s" else v)
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = sum(int(x) for x in sock.groups()) if sock else 0
hwm = [l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith("VmHWM")][0]
print("\t".join([mode, label, rows, conns, rps.group(1) if rps else "", lat(50), lat(90), lat(99),
                 non2xx.group(1) if non2xx else "0", str(errors), "%.1f" % (int(hwm) / 1024), mean()]))
PY
}

machine_line() { # the date and machine line of a results file
  local cpu mem
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  mem=$(free -g | awk '/Mem/ {print $2}')
  echo "Date: $(date -u '+%Y-%m-%d %H:%M') UTC. Machine: $cpu, $(nproc) cores, $mem GiB, $(uname -s) $(uname -r)."
}

md_table() { # "head|ers", comma-separated rows.tsv columns -> a Markdown table of $OUT/rows.tsv
  awk -F'\t' -v head="$1" -v cols="$2" 'BEGIN {
      n = split(head, h, "|"); line = "|"; rule = "|"
      for (i = 1; i <= n; i++) { line = line " " h[i] " |"; rule = rule "---|" }
      print line; print rule; split(cols, c, ",") }
    NF { line = "|"; for (i = 1; i in c; i++) line = line " " $(c[i]) " |"; print line }' "$OUT/rows.tsv"
}
