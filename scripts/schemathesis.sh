#!/usr/bin/env bash
# Fuzzes the running API against its own /openapi.json with schemathesis (pip install schemathesis).
# Starts a throwaway embedded server, makes an admin key, and runs every check.
# The key-revocation route is left out: the fuzzer would revoke its own key and test nothing after.
# The server has no network, so predicate searches answer 503 (declared in schemathesis.toml).
# FUZZ_ROLE=user fuzzes as a plain user (default admin).
# FUZZ_IMPORT="file ..." imports FDA files into its mirror first, so searches, stored
# candidates and comparisons are reached, e.g.
#   FUZZ_IMPORT=data-fda/last_month/pmnlstmn_2026-08.txt
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/regassist}"
examples="${2:-50}"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
imports=()
for f in ${FUZZ_IMPORT:-}; do imports+=("$(realpath "$f")"); done
cd "$work"
if [ ${#imports[@]} -gt 0 ]; then "$bin" import "${imports[@]}" >/dev/null; fi
key=$("$bin" users create --email fuzz@example.com --name Fuzz --role "${FUZZ_ROLE:-admin}" --api-key | tail -n1)
PORT=$port REGASSIST_HOST=127.0.0.1 API_RATE_PER_MINUTE=0 "$bin" serve >server.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
cd - >/dev/null
schemathesis run "http://127.0.0.1:$port/openapi.json" -H "Authorization: Bearer $key" \
  --max-examples "$examples" --workers 2 --exclude-path '/api/users/me/api-keys/{id}'
