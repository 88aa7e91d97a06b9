#!/usr/bin/env bash
# Runs every test program of one or more build directories, each as its own
# process under a timeout, and ends with "N passed, N failed" summed over all.
# Usage: tests/run.sh BUILD_DIR [BUILD_DIR...]
set -u
cd "$(dirname "$0")/.."
export CORDON_VECTORS="$PWD/tests/vectors"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
timeout_s="${CORDON_TEST_TIMEOUT:-600}"
passed=0
failed=0
for build in "$@"; do
    export CORDON_BIN="$PWD/$build/cordon"
    echo "== $build"
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        log=$(mktemp)
        start=$EPOCHREALTIME
        timeout -k 10 "$timeout_s" "$t" >"$log" 2>&1
        rc=$?
        secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
        line=$(grep -E "^# $name: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
        if [ -n "$line" ]; then
            p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
            f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
        else
            p=0
            f=0
        fi
        # A crash, timeout or sanitizer report after the summary still fails.
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1
        fi
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
            echo "FAIL $name (exit $rc, ${secs}s)"
            sed 's/^/    /' "$log" | tail -n 60
        else
            printf 'ok   %-28s %3d passed  %6ss\n' "$name" "$p" "$secs"
        fi
        rm -f "$log"
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
