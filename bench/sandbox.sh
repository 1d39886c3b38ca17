#!/usr/bin/env bash
# Measures what the sandbox costs, against the same worker image entered
# with a plain chroot (no isolation) in the same run:
#   startup: python3 -c pass   (target: overhead under 30 ms)
#   pandas:  a pandas-heavy script of merges and group-bys (target: slowdown under 5 %)
# for bubblewrap, and the same for gVisor (gvisor-startup, gvisor-pandas).
# Builds the Python worker image first if this machine lacks it
# (CLEANROOM_IMAGES chooses the cache). Needs root, for chroot.
# CLEANROOM_BENCH_RUNS sets the runs of each (default 20 and 5).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench/sandbox.sh: chroot needs root; run it as root" >&2
	exit 1
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/cleanroom" ./cmd/cleanroom
go build -o "$bin/cleanroom-worker" ./cmd/cleanroom-worker
"$bin/cleanroom" images build >&2
dir=$("$bin/cleanroom" images list | awk '$1 == "python" && $2 == "current" { print $NF }')
if [ -z "$dir" ] || [ ! -x "$dir/root/usr/bin/python3" ]; then
	echo "bench/sandbox.sh: no current python worker image; \`cleanroom images list\` shows:" >&2
	"$bin/cleanroom" images list >&2
	exit 1
fi
export CLEANROOM_BENCH_IMAGE="$dir/root"
go test ./sandbox -run '^$' -bench 'Overhead/startup' -benchtime "${CLEANROOM_BENCH_RUNS:-20}x"
go test ./sandbox -run '^$' -bench 'Overhead/pandas' -benchtime "${CLEANROOM_BENCH_RUNS:-5}x"
