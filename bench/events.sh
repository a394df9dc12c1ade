#!/usr/bin/env bash
# Adverse-event import benchmark: time and peak memory of `regassist import` on synthetic
# openFDA device/event bulk files in the real format (bench/gen_events.py), at two sizes, so that
# memory that grows with the file shows as a difference. Each size is imported into a fresh
# SQLite database, then imported again (a re-import replaces the file's counts and changes
# nothing). Figures come from /usr/bin/time -v; they are reported, never asserted.
# Writes bench/EVENTS.md (raw output in bench/out/events/).
#
#   bench/events.sh                          # 100 MiB and 1 GiB
#   SIZES="104857600" bench/events.sh        # one size, in bytes
#   BIN=/path/to/regassist bench/events.sh   # skip the build
#   KEEP=1 bench/events.sh                   # keep the generated files in bench/out/events/
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"104857600 1073741824"}
OUT=bench/out/events
mkdir -p "$OUT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
if [ -z "${BIN:-}" ]; then
  echo "building release binary..." >&2
  cargo build --release --locked -q
  BIN="$CARGO_TARGET_DIR/release/regassist"
fi
[ -x "$BIN" ] || { echo "BIN=$BIN is not an executable" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required: apt-get install -y time" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
field() { grep -F "$1" "$2" | sed 's/.*: //'; }
{
  echo "# Adverse-event import (device/event bulk files)"
  echo
  echo "\`bench/events.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, SQLite, release build; files from"
  echo "\`bench/gen_events.py\` (openFDA's envelope around copies of the docs' example report)."
  echo
  echo "| file | reports | run | wall time | MB/s | peak RSS | summary |"
  echo "|---|---|---|---|---|---|---|"
} > "$OUT/table.md"
for size in $SIZES; do
  file="$WORK/device-event-$size.json"
  python3 bench/gen_events.py "$file" "$size" 2> "$OUT/gen-$size.txt"
  reports=$(sed 's/.*: \([0-9]*\) reports.*/\1/' "$OUT/gen-$size.txt")
  bytes=$(stat -c %s "$file")
  db="sqlite://$WORK/events-$size.db"
  for run in first again; do
    /usr/bin/time -v env DATABASE_URL="$db" JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 \
      "$BIN" import "$file" > "$OUT/import-$size-$run.txt" 2> "$OUT/time-$size-$run.txt"
    wall=$(field "Elapsed (wall clock)" "$OUT/time-$size-$run.txt")
    rss=$(field "Maximum resident set size" "$OUT/time-$size-$run.txt")
    secs=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
    mbs=$(python3 -c "print(f'{$bytes/1048576/$secs:.0f}')")
    summary=$(tail -1 "$OUT/import-$size-$run.txt" | sed 's/^[^:]*: //')
    echo "| $(( bytes / 1048576 )) MiB | $reports | $run | $wall | $mbs | $(( rss / 1024 )) MiB | $summary |" >> "$OUT/table.md"
  done
  [ -n "${KEEP:-}" ] && cp "$file" "$OUT/" || rm -f "$file"
done
cp "$OUT/table.md" bench/EVENTS.md
cat bench/EVENTS.md
