#!/usr/bin/env bash
# Start-up CPU time of two builds of the command line, compared on one command: runs A and B alternately (A, B, A, B, …,
# so that a change in the machine's load falls on both), N times each, and prints for each the median user + system CPU
# time from /usr/bin/time -f "%U %S" and the ratio B / A of the medians. CPU time rather than wall time: on a shared,
# loaded machine the wall clock mostly measures the other processes, CPU time what the command itself did.
#
# Usage: bash tools/startup-cpu.sh [-n N] A B [ARGS...]
#   A, B   the two executables (e.g. src/MicroExpr.Cli/bin/Release/net10.0/microexpr of two checkouts)
#   ARGS   the command line given to both (default: devices --json)
#   -n N   runs of each (default 11)
# Output: one line per executable, "median U+S s (min–max)", then "ratio B/A". Stdout and stderr of the runs are dropped;
# a run's exit code is not checked (an unknown command, exit 2, is a fair start-up probe too).
set -euo pipefail

n=11
if [ "${1:-}" = "-n" ]; then n="$2"; shift 2; fi
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then usage; exit 0; fi
if [ $# -lt 2 ]; then usage >&2; exit 2; fi
a="$1"; b="$2"; shift 2
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(devices --json)
for exe in "$a" "$b"; do
    [ -x "$exe" ] || { echo "startup-cpu: '$exe' is not an executable file" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "startup-cpu: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One untimed run each first: the files are then in the page cache for every timed run.
"$a" "${args[@]}" >/dev/null 2>&1 || true
"$b" "${args[@]}" >/dev/null 2>&1 || true
for ((i = 0; i < n; i++)); do
    for side in a b; do
        exe="$a"; [ "$side" = b ] && exe="$b"
        /usr/bin/time -f "%U %S" -o "$tmp/one" "$exe" "${args[@]}" >/dev/null 2>&1 || true
        # GNU time writes "Command exited with non-zero status N" first when the exit code is not 0: the last line.
        tail -n 1 "$tmp/one" | awk '{ printf "%.3f\n", $1 + $2 }' >> "$tmp/$side"
    done
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'; }
range() { sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f–%.3f", lo, hi }'; }
ma=$(median "$tmp/a"); mb=$(median "$tmp/b")
echo "command: ${args[*]}   runs: $n each, alternating"
echo "A $a: median U+S $ma s ($(range "$tmp/a"))"
echo "B $b: median U+S $mb s ($(range "$tmp/b"))"
awk -v a="$ma" -v b="$mb" 'BEGIN { if (a > 0) printf "ratio B/A: %.2f\n", b / a; else print "ratio B/A: (A took 0 s)" }'
