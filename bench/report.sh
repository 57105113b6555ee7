#!/usr/bin/env bash
# Runs the start-up benchmarks (bench/startup.sh) and writes their figures as a markdown
# table with ratios, bench/REPORT.md, and a chart of start time against module size and
# against the number of containers kept, bench/startup.svg. As root. Not a test.
#   bench/report.sh          (RUNS=N, IDLE=N as for startup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /var/tmp/wharf-report.XXXXXX)
trap 'rm -rf "$out"' EXIT
OUT="$out" bash "$here/startup.sh"
python3 "$here/render.py" "$out" "$here/REPORT.md" "$here/startup.svg" >/dev/null
echo "wrote $here/REPORT.md and $here/startup.svg"
