#!/usr/bin/env bash
# Upload throughput of the Python SDK against the Go CLI on the same file:
# builds cleanroom, starts a server on a free port with temporary
# directories, then uploads one file ROUNDS times with each client,
# alternating, and prints MB/s (10^6 bytes per second of plaintext, whole
# process wall time: start-up, encryption, upload, key sealing, publishing)
# and the Python/Go ratio. The target is a ratio of at least 0.5.
#
#   bench/python_upload.sh            # 512 MiB, 3 rounds
#   SIZE_MB=1024 ROUNDS=5 bench/python_upload.sh
set -euo pipefail

SIZE_MB=${SIZE_MB:-512}
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."
ROOT=$PWD

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cleanroom-bench-py.XXXXXX")
# Jobs run as unprivileged users, so the scratch directory is not under $TMP (0700).
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/cleanroom-bench-py-scratch.XXXXXX")
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$TMP" "$SCRATCH"
}
trap cleanup EXIT

go build -o "$TMP/cleanroom" ./cmd/cleanroom
go build -o "$TMP/cleanroom-worker" ./cmd/cleanroom-worker
BIN=$TMP/cleanroom
mkdir -p "$TMP/data"
"$BIN" serve --addr 127.0.0.1:0 --data "$TMP/data" --scratch "$SCRATCH" >"$TMP/server.out" 2>"$TMP/server.log" &
SERVER_PID=$!
# The first start on a machine builds the worker image before listening.
for _ in $(seq 3000); do
	grep -q 'listening on' "$TMP/server.out" 2>/dev/null && break
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.1
done
export CLEANROOM_URL=$(grep -o 'http://[^ ]*' "$TMP/server.out" | head -1)
if [ -z "$CLEANROOM_URL" ]; then
	echo "the server did not start; its log:" >&2
	cat "$TMP/server.log" >&2
	exit 1
fi
export CLEANROOM_EMAIL=bench@example.com
export CLEANROOM_TOKEN=$("$BIN" users add "$CLEANROOM_EMAIL" --data "$TMP/data" 2>/dev/null | tail -1)

cat >"$TMP/dcr.json" <<JSON
{"name": "upload benchmark", "owner": "$CLEANROOM_EMAIL",
 "nodes": [{"name": "data", "kind": "raw"}],
 "participants": [{"email": "$CLEANROOM_EMAIL", "data_owner_of": ["data"]}]}
JSON
DCR=$("$BIN" publish "$TMP/dcr.json")

FILE=$TMP/data.bin
head -c "$((SIZE_MB << 20))" /dev/urandom >"$FILE"
BYTES=$(stat -c %s "$FILE")

py_upload() {
	PYTHONPATH="$ROOT/sdk/python" "$PYTHON" -W ignore -c '
import os, sys, cleanroom
c = cleanroom.create_client(os.environ["CLEANROOM_EMAIL"], os.environ["CLEANROOM_TOKEN"])
with open(sys.argv[2], "rb") as f:
    c.retrieve_analytics_dcr(sys.argv[1]).get_node("data").upload_and_publish_dataset(f, cleanroom.Key(), "data.bin")
' "$DCR" "$FILE"
}
go_upload() {
	"$BIN" upload --dcr "$DCR" --node data "$FILE" >/dev/null 2>&1
}
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
seconds() { # runs "$@", prints its wall time in seconds
	local start end
	start=$(date +%s.%N)
	"$@"
	end=$(date +%s.%N)
	calc "$end - $start"
}
mbps() { calc "$BYTES / 1000000 / $1"; }

echo "file: $SIZE_MB MiB ($BYTES bytes), $ROUNDS rounds, $(nproc) CPUs"
go_total=0 py_total=0
for i in $(seq "$ROUNDS"); do
	g=$(seconds go_upload)
	p=$(seconds py_upload)
	go_total=$(calc "$go_total + $g")
	py_total=$(calc "$py_total + $p")
	printf 'round %d: go %6.1f MB/s   python %6.1f MB/s\n' "$i" "$(mbps "$g")" "$(mbps "$p")"
done
go_rate=$(calc "$BYTES * $ROUNDS / 1000000 / $go_total")
py_rate=$(calc "$BYTES * $ROUNDS / 1000000 / $py_total")
printf 'go CLI      %6.1f MB/s\n' "$go_rate"
printf 'python SDK  %6.1f MB/s\n' "$py_rate"
printf 'ratio       %6.2f (python / go; target >= 0.50)\n' "$(calc "$py_rate / $go_rate")"
