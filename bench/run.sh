#!/usr/bin/env bash
# Runs cleanroom's benchmarks, each against its baseline in the same run:
#   TrivialRun: a whole run of a no-op script vs bare python3 (overhead target: < 100 ms)
#   Upload:     `cleanroom upload` (encrypting) vs a plain HTTP upload of the same file
#               to the same server (target: >= 80 %), with peak memory of CLI and server
#   sandbox Startup: python3 -c pass through bubblewrap vs directly
#   crypt: encryption and decryption throughput
# CLEANROOM_BENCH_MIB sets the upload size (default 256).
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./cmd/cleanroom -run '^$' -bench 'TrivialRun' -benchtime 30x
go test ./cmd/cleanroom -run '^$' -bench 'Upload' -benchtime 6x
go test ./sandbox -run '^$' -bench 'Startup' -benchtime 30x
go test ./crypt -run '^$' -bench . -benchtime 20x
