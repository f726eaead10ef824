#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (Debian packages), builds
# with meson, runs every test (unit tests and integration tests against a real
# PostgreSQL 15 + wal2json, nats-server and librdkafka's mock Kafka cluster,
# all started by the tests on loopback) and ends with "N passed, N failed".
#   scripts/test.sh                 everything
#   scripts/test.sh <meson test names...>   a subset, e.g. scripts/test.sh config delivery
# BUILD_DIR (default: build) selects the build folder.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

finish() {  # $1 passed, $2 failed, $3 skipped
  echo "$1 passed, $2 failed, $3 skipped"
  [ "$2" -eq 0 ]
  exit $?
}

scripts/install-deps.sh || { echo "installing dependencies failed" >&2; finish 0 1 0; }
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" --buildtype=debugoptimized || finish 0 1 0
fi
meson compile -C "$BUILD_DIR" -j2 || { echo "build failed" >&2; finish 0 1 0; }

rm -f "$BUILD_DIR/meson-logs/testlog.json"
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes 2 "$@"
read -r passed failed skipped < <(python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
try:
    for line in open(sys.argv[1]):
        result = json.loads(line)["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif result == "SKIP":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
except FileNotFoundError:
    counts["failed"] += 1
print(counts["passed"], counts["failed"], counts["skipped"])
PY
)
finish "$passed" "$failed" "$skipped"
