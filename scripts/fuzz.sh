#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for SECONDS_PER_TARGET (default 60) and prints, per target,
# executions, exec/s and the crash/timeout/leak files found. Configures and builds the fuzz build
# (clang, -Dfuzz=true) if needed. Seeds in fuzz/corpus/<target>/ are copied to a work dir, so
# the committed corpus never changes.
# Needs clang and its runtime (Debian: clang pulls libclang-rt-14-dev, which holds libFuzzer).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#   env: FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_WORK_DIR (default a new temp dir),
#        FUZZ_TARGETS (default: all five), FUZZ_JOBS (ninja -j, default 2)
# Besides the printed summary, <work dir>/results.tsv gets one line per target:
# target, seconds ran, executions, exec/s, files found ("?" when the fuzzer printed no stats).
# Exit status: 0 when every target ran and found nothing, 1 otherwise.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
work="${FUZZ_WORK_DIR:-$(mktemp -d /tmp/topicbridge-fuzz.XXXXXX)}"
targets=(${FUZZ_TARGETS:-fuzz_wal2json_decoder fuzz_fhirpath_parser fuzz_fhirpath_evaluator
  fuzz_config_loader fuzz_aidbox_to_fhir})

if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ meson setup "$build" "$root" -Dfuzz=true -Dbuildtype=debugoptimized
fi
meson compile -C "$build" -j "${FUZZ_JOBS:-2}" "${targets[@]/#/fuzz/}" >/dev/null

# UB is a finding too: stop on the first report instead of printing and going on.
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1}"

found_any=0
summary=()
mkdir -p "$work"
: >"$work/results.tsv"
for target in "${targets[@]}"; do
  corpus="$work/$target/corpus"
  artifacts="$work/$target/artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$root/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null || true
  log="$work/$target/fuzz.log"
  echo "fuzz: $target for ${seconds}s (log $log)"
  started=$SECONDS
  "$build/fuzz/$target" "$corpus" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || true
  ran=$((SECONDS - started))
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  mapfile -t crashes < <(find "$artifacts" -type f | sort)
  printf '%s\t%s\t%s\t%s\t%s\n' "$target" "$ran" "${execs:-?}" "${rate:-?}" "${#crashes[@]}" \
    >>"$work/results.tsv"
  summary+=("$(printf '%-24s ran %3ss  execs %-10s exec/s %-7s found %d' \
    "$target" "$ran" "${execs:-?}" "${rate:-?}" "${#crashes[@]}")")
  if [[ -z "$execs" ]]; then
    found_any=1
    summary+=("    no statistics: the fuzzer did not finish; see $log")
  fi
  for crash in "${crashes[@]}"; do
    found_any=1
    summary+=("    $crash")
    summary+=("    $(grep -m1 -E '^(SUMMARY|==[0-9]+==ERROR)' "$log" || echo 'see log')")
  done
done

echo
echo "fuzz results (work dir $work):"
printf '%s\n' "${summary[@]}"
exit "$found_any"
