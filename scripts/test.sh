#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (Debian packages), builds
# with meson, runs every test (unit tests and integration tests against a real
# PostgreSQL 15 + wal2json, nats-server and librdkafka's mock Kafka cluster,
# all started by the tests on loopback). A full run then has two more phases:
#   sanitizers  the same suite again, built with -Dsanitize_all=true (ASan+UBSan,
#               leaks reported) in ${BUILD_DIR}-asan; any sanitizer report anywhere
#               (a test program or the topicbridge the integration tests start)
#               counts as the failed test "sanitizer_reports"
#   fuzz        every libFuzzer target in fuzz/ (clang) for FUZZ_SECONDS (default 20)
#               each, in ${BUILD_DIR}-fuzz; each target is one passed/failed test
# It ends with exactly one line "N passed, N failed, N skipped" summing all phases.
#   scripts/test.sh                 everything
#   scripts/test.sh <meson test names...>   a subset of the first phase only,
#                                   e.g. scripts/test.sh config delivery
# BUILD_DIR (default: build) selects the build folder; TOPICBRIDGE_SKIP_SANITIZERS=1
# skips the sanitizer and fuzz phases of a full run.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SANITIZE_DIR="${BUILD_DIR}-asan"
FUZZ_DIR="${BUILD_DIR}-fuzz"
total_passed=0 total_failed=0 total_skipped=0

count() {  # $1 passed, $2 failed, $3 skipped: adds to the totals
  total_passed=$((total_passed + $1))
  total_failed=$((total_failed + $2))
  total_skipped=$((total_skipped + $3))
}

finish() {  # prints the one closing line for everything counted
  echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
  [ "$total_failed" -eq 0 ]
  exit $?
}

# "passed failed skipped" of the meson test run whose log is $1 (a missing log is one failure).
meson_counts() {
  python3 - "$1" <<'PY'
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
}

# Builds $1 (configured with the remaining arguments when new) and runs meson test in it;
# adds its counts. Test names come from the caller's TEST_NAMES array.
build_and_test() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" || { echo "meson setup $dir failed" >&2; count 0 1 0; return 1; }
  fi
  meson compile -C "$dir" -j2 || { echo "build in $dir failed" >&2; count 0 1 0; return 1; }
  rm -f "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog.txt"
  meson test -C "$dir" --print-errorlogs --num-processes 2 "${MESON_TEST_ARGS[@]}" "${TEST_NAMES[@]}"
  local passed failed skipped
  read -r passed failed skipped < <(meson_counts "$dir/meson-logs/testlog.json")
  count "$passed" "$failed" "$skipped"
}

# The suite again under ASan+UBSan. ASan and LeakSanitizer reports go to files (log_path), so one
# from a process no test looks at (a topicbridge an integration test kills) is still seen. UBSan
# (GCC's libubsan) ignores log_path: halt_on_error makes undefined behaviour end the process, which
# fails its test, and its "runtime error:" lines in the test log count as a report too.
sanitizer_phase() {
  local reports
  reports="$(mktemp -d /tmp/topicbridge-sanitizers.XXXXXX)"
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:print_summary=1:log_path=$reports/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0"
  # ASan's shadow memory and quarantine triple topicbridge's peak RSS in the 50 000-row transaction.
  export TB_ALO_PEAK_RSS_LIMIT_KB=$((1024 * 1024))
  MESON_TEST_ARGS=(--timeout-multiplier 3)
  echo "== sanitizers: the suite built with -Dsanitize_all=true in $SANITIZE_DIR"
  # debug (-O0): compiles about twice as fast as -O2 with ASan, and the suite waits on servers
  # far more than it computes.
  if [ ! -f "$SANITIZE_DIR/build.ninja" ]; then
    meson setup "$SANITIZE_DIR" --buildtype=debug -Dsanitize_all=true \
      || { echo "meson setup $SANITIZE_DIR failed" >&2; count 0 1 0; return; }
  fi
  # Built before its test list is read: a build brings that list up to date.
  meson compile -C "$SANITIZE_DIR" -j2 || { echo "build in $SANITIZE_DIR failed" >&2; count 0 1 0; return; }
  TEST_NAMES=()  # every suite
  build_and_test "$SANITIZE_DIR"
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TB_ALO_PEAK_RSS_LIMIT_KB
  mapfile -t found < <(find "$reports" -type f | sort)
  local ubsan_lines=0
  if [ -f "$SANITIZE_DIR/meson-logs/testlog.txt" ]; then
    ubsan_lines=$(grep -c "runtime error:" "$SANITIZE_DIR/meson-logs/testlog.txt")
  fi
  if [ "${#found[@]}" -eq 0 ] && [ "$ubsan_lines" -eq 0 ]; then
    echo "sanitizer_reports: none"
    count 1 0 0
  else
    echo "sanitizer_reports: ${#found[@]} report file(s) in $reports, $ubsan_lines UBSan line(s)"
    for report in "${found[@]}"; do
      echo "---- $report"
      head -n 60 "$report"
    done
    grep -A 8 "runtime error:" "$SANITIZE_DIR/meson-logs/testlog.txt" | head -n 60
    count 0 1 0
  fi
}

# Each fuzz target for FUZZ_SECONDS; the corpora are copied to a temp dir by scripts/fuzz.sh.
fuzz_phase() {
  local work results targets=5
  work="$(mktemp -d /tmp/topicbridge-fuzz.XXXXXX)"
  results="$work/results.tsv"
  echo "== fuzz: every target for ${FUZZ_SECONDS:-20}s in $FUZZ_DIR"
  FUZZ_BUILD_DIR="$FUZZ_DIR" FUZZ_WORK_DIR="$work" scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
  if [ ! -s "$results" ]; then
    echo "fuzz: no results (build failed?); counting all $targets targets as failed" >&2
    count 0 "$targets" 0
    return
  fi
  local target ran execs rate found
  while IFS=$'\t' read -r target ran execs rate found; do
    if [ "$found" -eq 0 ] && [ "$execs" != "?" ]; then
      count 1 0 0
    else
      count 0 1 0
      echo "---- $target: the end of $work/$target/fuzz.log"
      tail -n 40 "$work/$target/fuzz.log"
    fi
  done < "$results"
}

scripts/install-deps.sh || { echo "installing dependencies failed" >&2; count 0 1 0; finish; }

TEST_NAMES=("$@")
MESON_TEST_ARGS=()
build_and_test "$BUILD_DIR" --buildtype=debugoptimized || finish

if [ "$#" -eq 0 ] && [ "${TOPICBRIDGE_SKIP_SANITIZERS:-0}" != 1 ]; then
  sanitizer_phase
  fuzz_phase
fi
finish
