#!/usr/bin/env bash
# Runs every cleanroom benchmark, each against its baseline in the same run
# (these machines are noisy: only ratios measured together mean anything).
#
#   TrivialRun    a whole run of a no-op script vs bare python3 (overhead target: < 100 ms)
#   Upload        `cleanroom upload` (encrypting) vs a plain HTTP upload of the same file
#                 to the same server (target: >= 80 %), with the peak memory of CLI and server
#   BrowserUpload a 1 GiB upload through the web UI in headless Chromium vs `cleanroom upload`
#                 (target: >= 50 %), with the page's JS heap and the browser's memory
#   SQLvsPandas   one aggregation as SQL (DuckDB) vs pandas in a Python node on a
#                 10-million-row table (target: SQL >= 3x faster), and table validation MB/s
#   sandbox.sh    bubblewrap and gVisor start-up and pandas slowdown vs plain chroot
#   python_upload.sh  the Python SDK's upload vs the Go CLI (target: >= 50 %)
#   crypt         encryption and decryption throughput
#
# CLEANROOM_BENCH_MIB sets the Upload size (default 256), CLEANROOM_BENCH_ROWS
# the SQLvsPandas rows (default 10 million). Needs root (chroot, job users).
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./cmd/cleanroom -run '^$' -bench 'TrivialRun' -benchtime 30x
go test ./cmd/cleanroom -run '^$' -bench '^BenchmarkUpload$' -benchtime 6x
go test ./cmd/cleanroom -run '^$' -bench 'BrowserUpload' -benchtime 2x
go test ./cmd/cleanroom -run '^$' -bench 'SQLvsPandas' -benchtime 2x -timeout 30m
bench/sandbox.sh
bench/python_upload.sh
go test ./crypt -run '^$' -bench . -benchtime 20x
