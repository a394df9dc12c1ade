#!/usr/bin/env bash
# The clients' test, against a real server: lint the OpenAPI snapshot (Redocly, recommended
# rules), type-check the TypeScript client with `tsc --strict`, run its smoke program (project,
# search, select, compare, classify, export, audit) and the frontend token test (a token minted
# by the NextAuth example with `jose` is accepted; wrong audience/issuer/secret/expiry refused).
# Also checks the CLI people expect: --version names a commit, `/` leads to the docs, completions
# and man page render, /metrics follows the Prometheus naming.
#
# Usage: scripts/client-test.sh path/to/regassist
# Needs node >= 20 and npm (the npm registry for `npm ci`). Uses SQLite in a temporary
# directory and the repository's FDA sample (OPENFDA_MODE=mirror: no network).
set -euo pipefail

[[ $# -eq 1 && -x "$1" ]] || { echo "usage: $0 path/to/regassist" >&2; exit 2; }
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CLIENT="$REPO/clients/typescript"
WORK="$(mktemp -d)"
SERVER_PID=""

log() { printf '  %s\n' "$*"; }
fail() { printf '\nclient test FAILED: %s\n' "$*" >&2; [[ -f "$WORK/server.log" ]] && tail -n 20 "$WORK/server.log" >&2; exit 1; }
is_running() { [[ -e "/proc/$1" ]] && [[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
cleanup() {
    if [[ -n "$SERVER_PID" ]] && is_running "$SERVER_PID"; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do is_running "$SERVER_PID" || break; sleep 0.1; done
        is_running "$SERVER_PID" && kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"
FRONTEND_ORIGIN="http://localhost:3000"
JWT_SECRET="client-test-secret-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
export JWT_SECRET
export JWT_ISSUER="$FRONTEND_ORIGIN"
export JWT_AUDIENCE="regassist"
ENV=(
    "DATABASE_URL=sqlite://$WORK/regassist.db"
    "JWT_SECRET=$JWT_SECRET" "JWT_ISSUER=$JWT_ISSUER" "JWT_AUDIENCE=$JWT_AUDIENCE"
    "CORS_ORIGINS=$FRONTEND_ORIGIN"
    "OPENFDA_MODE=mirror" "OPENFDA_BASE_URL=http://127.0.0.1:9"
    "API_RATE_PER_MINUTE=0" "REGASSIST_HOST=127.0.0.1" "PORT=$PORT"
    "REGASSIST_AUDIT_CHECKPOINT_FILE=$WORK/checkpoint.json"
    "LOG_FORMAT=json" "RUST_LOG=warn"
)
regassist() { env "${ENV[@]}" "$BIN" "$@"; }

echo "==> the CLI"
version="$("$BIN" --version)"
[[ "$version" =~ \(commit\ [0-9a-f]{7,}|\(commit\ unknown ]] || fail "--version names no commit: $version"
log "$version"
bash_completion="$("$BIN" completions bash)"
grep -q 'complete -F' <<<"$bash_completion" || fail "no bash completion script"
[[ "$("$BIN" completions zsh | head -n1)" == "#compdef regassist" ]] || fail "no zsh completion script"
grep -q '^\.TH regassist 1' <<<"$("$BIN" man)" || fail "no man page"
log "completions (bash, zsh) and man page render"

echo "==> a server on $BASE (SQLite, the FDA sample in the mirror)"
regassist migrate >/dev/null
regassist import "$REPO/data-fda/510k/510k_2015-2026_sample.csv" </dev/null >/dev/null 2>"$WORK/import.err" \
    || { cat "$WORK/import.err" >&2; fail "import failed"; }
# A non-terminal stderr gets no progress bar (no carriage returns in logs).
if grep -q $'\r' "$WORK/import.err"; then fail "import drew a progress bar on a non-terminal"; fi
REGASSIST_TOKEN="$(regassist users create --email smoke@example.com --name "Smoke Admin" --role admin --api-key | tail -n1)"
[[ "$REGASSIST_TOKEN" == rk_* ]] || fail "no API key from users create"
export REGASSIST_TOKEN REGASSIST_URL="$BASE" FRONTEND_ORIGIN
env "${ENV[@]}" "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/health/ready")" == 200 ]] && break
    is_running "$SERVER_PID" || fail "the server exited during start-up"
    sleep 0.2
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/health/ready")" == 200 ]] || fail "the server is not ready after 60 s"

root="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$BASE/")"
[[ "$root" == "307 $BASE/docs/" ]] || fail "/ answers $root, not a redirect to /docs/"
metrics="$(curl -s "$BASE/metrics")"
for family in regassist_build_info regassist_http_requests_total process_cpu_seconds_total process_resident_memory_bytes process_start_time_seconds; do
    grep -q "^$family" <<<"$metrics" || fail "/metrics lacks $family"
done
if grep -E '^[a-z]' <<<"$metrics" | grep -vqE '^(regassist_|process_)'; then
    fail "/metrics has families outside regassist_ and process_: $(grep -E '^[a-z]' <<<"$metrics" | grep -vE '^(regassist_|process_)' | head -3)"
fi
log "/ redirects to /docs/; /metrics: regassist_* and process_* only, with build_info"

cd "$CLIENT"
echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "==> the spec: the served document is the snapshot, and Redocly's recommended rules pass"
curl -s "$BASE/openapi.json" | python3 -c 'import json,sys; a=json.load(sys.stdin); b=json.load(open(sys.argv[1])); sys.exit(0 if a == b else "the served /openapi.json differs from tests/snapshots/openapi.json")' "$REPO/tests/snapshots/openapi.json"
npm run -s lint:spec
echo "==> the generated types are the snapshot's (npm run generate)"
npx openapi-typescript "$REPO/tests/snapshots/openapi.json" -o "$WORK/schema.ts" >/dev/null 2>&1
diff -q "$WORK/schema.ts" src/schema.ts >/dev/null || fail "clients/typescript/src/schema.ts is stale: run npm run generate in clients/typescript"
echo "==> tsc --strict"
npm run -s build
echo "==> the smoke program"
node --test dist/examples/smoke.js
echo "==> the frontend token test"
node --test dist/examples/token-test.js
echo "client test passed"
